#!/bin/sh
# Start a hub for `make up`: `docker compose up -d` when a Docker engine
# answers, else `chatbus server` in the background. PORT and BIN come from make.
set -eu
url="redis://localhost:$PORT/0"
state="${XDG_STATE_HOME:-$HOME/.local/state}/chatbus"
pid_file="$state/hub-$PORT.pid"   # one per port: each `make up PORT=...` has its own
answers() {
    "$BIN/python" -c "import redis; redis.Redis(port=$PORT, socket_connect_timeout=1).ping()" 2>/dev/null
}

if docker info >/dev/null 2>&1; then
    CHATBUS_PORT="$PORT" docker compose up -d --wait
    echo "Hub: docker compose (Valkey, append-only file in a named volume) at $url"
elif answers; then
    if [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
        echo "Hub: already running (chatbus server, pid $(cat "$pid_file")) at $url"
    else
        echo "Hub: a Redis server already answers at $url; chatbus will use it."
        echo "     (For a hub of chatbus's own: make up PORT=6380, then export CHATBUS_URL=redis://localhost:6380/0)"
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
echo "then: chatbus login alice"
