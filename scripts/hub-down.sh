#!/bin/sh
# Stop the hub `make up PORT=...` started on PORT (by its PID), or the compose service.
# PORT comes from make.
set -eu
state="${XDG_STATE_HOME:-$HOME/.local/state}/chatbus"
pid_file="$state/hub-$PORT.pid"   # one per port: each `make up PORT=...` has its own
if [ -f "$pid_file" ]; then
    pid=$(cat "$pid_file")
    if kill "$pid" 2>/dev/null; then
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
        echo "Hub stopped (pid $pid); its data stays for the next start."
    fi
    rm -f "$pid_file"
elif docker info >/dev/null 2>&1; then
    docker compose down
else
    echo "No hub started by 'make up' is running on port $PORT."
fi
