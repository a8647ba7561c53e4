#!/bin/sh
# Start a hub for `make up`: `docker compose up -d` when a Docker engine
# answers, else `chatbus server` in the background. PORT and BIN come from make.
set -eu
url="redis://localhost:$PORT/0"
state="${XDG_STATE_HOME:-$HOME/.local/state}/chatbus"
pid_file="$state/hub-$PORT.pid"   # one per port: each `make up PORT=...` has its own
probe="$(dirname "$0")/hub_probe.py"
answers() {
    "$BIN/python" "$probe" "$PORT" >/dev/null 2>&1 || [ $? -eq 2 ]
}

if docker info >/dev/null 2>&1; then
    CHATBUS_PORT="$PORT" docker compose up -d --wait
    echo "Hub: docker compose (Valkey, append-only file in a named volume) at $url"
elif answers; then
    if [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
        echo "Hub: already running (chatbus server, pid $(cat "$pid_file")) at $url"
    else
        # Someone else's server: say what it is before chatbus writes to it.
        status=0
        found=$("$BIN/python" "$probe" "$PORT" 2>&1) || status=$?
        other=$((PORT + 1))
        echo "Hub: a server already answers at $url: $found."
        if [ "$status" -eq 0 ]; then
            echo "     chatbus will use it."
        else
            echo "     chatbus cannot use it."
        fi
        echo "     For a hub of chatbus's own: make up PORT=$other, then export CHATBUS_URL=redis://localhost:$other/0"
    fi
else
    mkdir -p "$state"
    nohup "$BIN/chatbus" server --port "$PORT" >"$state/hub-$PORT.out" 2>&1 &
    echo $! >"$pid_file"
    tries=0
    until answers; do
        tries=$((tries + 1))
        if [ "$tries" -gt 100 ] || ! kill -0 "$(cat "$pid_file")" 2>/dev/null; then
            echo "The hub did not start; its output:" >&2
            cat "$state/hub-$PORT.out" >&2
            exit 1
        fi
        sleep 0.2
    done
    echo "Hub: chatbus server (pid $(cat "$pid_file")) at $url; output in $state/hub-$PORT.out; stop it with: make down$( [ "$PORT" = 6379 ] || echo " PORT=$PORT")"
fi
echo
echo "chatbus is installed in $(dirname "$BIN"). Put it on your PATH with:"
echo "    source $(dirname "$BIN")/bin/activate"
if [ "$PORT" != 6379 ]; then
    # chatbus's default hub is port 6379: without this, it would go there.
    echo "and point chatbus at this hub (port $PORT; chatbus's default is 6379) with:"
    echo "    export CHATBUS_URL=$url"
fi
echo "then: chatbus login alice"
