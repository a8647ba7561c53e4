#!/bin/sh
# Stop the hub `make up` started (by its PID), or the compose service.
set -eu
state="${XDG_STATE_HOME:-$HOME/.local/state}/chatbus"
if [ -f "$state/hub.pid" ]; then
    pid=$(cat "$state/hub.pid")
    if kill "$pid" 2>/dev/null; then
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
        echo "Hub stopped (pid $pid); its data stays for the next start."
    fi
    rm -f "$state/hub.pid"
elif docker info >/dev/null 2>&1; then
    docker compose down
else
    echo "No hub started by 'make up' is running."
fi
