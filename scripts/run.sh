#!/usr/bin/env bash
# `make run`: the whole stack without Docker, in the foreground.
#
# Redis: the one at REDIS_URL if it answers, else a private redis-server started here
# (AOF on, data kept in .run/). Then the proxy (on 127.0.0.1 unless PROXY_HOST is set)
# and the shipper, which read .env themselves.
#
# Ctrl-C stops the stack in order: the proxy first (it publishes or spools what it holds),
# then the shipper once the stream is shipped (or after RUN_SHIP_TIMEOUT_S), then Redis.
# A second Ctrl-C hurries that: each service still running gets a second SIGTERM (uvicorn
# then exits at once), still in the same order, and none outlives this script.
# The proxy or the shipper exiting on its own takes the stack down the same way, names
# itself, and makes this script exit non-zero. The private Redis exiting does not: the
# proxy spools and the shipper waits, as under compose, and it is started again.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
# The settings object resolves REDIS_URL exactly as the services will (environment, .env, default).
REDIS_URL="$("$PY" -c 'from shared.settings import CommonSettings; print(CommonSettings().redis_url)')"
export REDIS_URL
# A variable's value in .env (empty when unset or no .env): what the services would read.
env_file_value() {
    [[ -f .env ]] || return 0
    sed -n "s/^[[:space:]]*$1=\([^[:space:]#]*\).*/\1/p" .env | tail -n 1
}
# Local by default: exposing the proxy is a choice (PROXY_HOST in the environment or .env).
if [[ -z "${PROXY_HOST:-}" && -z "$(env_file_value PROXY_HOST)" ]]; then
    export PROXY_HOST=127.0.0.1
fi
SHIP_TIMEOUT_S="${RUN_SHIP_TIMEOUT_S:-$(env_file_value RUN_SHIP_TIMEOUT_S)}"
SHIP_TIMEOUT_S="${SHIP_TIMEOUT_S:-60}"

# Each service in its own process group (job control), so Ctrl-C reaches only this script
# and the services stop in the order below, not all at once.
set -m
declare -A name_of=()
declare -A pid_of=()
launch() {
    local name=$1
    shift
    "$@" &
    pid_of[$name]=$!
    name_of[$!]=$name
}

# Set by a second Ctrl-C while the stack stops.
hurry=""
stop_service() {
    local name=$1 pid=${pid_of[$1]:-} hurried
    [[ -n "$pid" ]] || return 0
    hurried=$hurry
    kill -TERM "$pid" 2>/dev/null || true
    # The pid stays in pid_of until it is gone, so the EXIT trap still reaches it.
    while kill -0 "$pid" 2>/dev/null; do
        wait "$pid" 2>/dev/null || true  # returns early when a signal is trapped
        if [[ -n "$hurry" && -z "$hurried" ]] && kill -0 "$pid" 2>/dev/null; then
            echo "run: stopping the $name now"
            kill -TERM "$pid" 2>/dev/null || true
            hurried=yes
        fi
    done
    unset "pid_of[$name]"
}

redis_up() { "$PY" -c 'import os, redis; redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=1).ping()' 2>/dev/null; }

# Stream entries not yet shipped (length + pending), or nothing when Redis does not answer.
backlog() {
    "$PY" - <<'EOF' 2>/dev/null
import redis
from shared.settings import CommonSettings
from shared.streams import CONSUMER_GROUP
settings = CommonSettings()
client = redis.Redis.from_url(settings.redis_url, socket_timeout=2)
length = int(client.xlen(settings.redis_stream))
try:
    pending = int(client.xpending(settings.redis_stream, CONSUMER_GROUP)["pending"])
except redis.ResponseError:
    pending = 0
print(length + pending)
EOF
}

shutdown_stack() {
    trap 'hurry=yes' INT TERM
    echo "run: stopping the proxy (it publishes or spools what it holds; Ctrl-C again hurries)"
    stop_service proxy
    if [[ -n "${pid_of[shipper]:-}" ]]; then
        local deadline=$((SECONDS + SHIP_TIMEOUT_S)) left
        while [[ -z "$hurry" ]] && left="$(backlog)" && [[ "$left" != 0 ]] \
            && ((SECONDS < deadline)); do
            echo "run: shipping what is left ($left records)"
            sleep 1
        done
        echo "run: stopping the shipper"
        stop_service shipper
    fi
    if [[ -n "${pid_of[redis]:-}" ]]; then
        echo "run: stopping redis-server"
        stop_service redis
    fi
}

# Whatever happens (an error in this script included), no service outlives it.
trap 'for pid in "${pid_of[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done' EXIT

start_redis() {
    echo "run: starting redis-server on port $redis_port (data in .run/)"
    launch redis redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$PWD/.run" \
        --appendonly yes --appendfsync everysec --maxmemory-policy noeviction --save ""
    for _ in $(seq 50); do redis_up && return 0; sleep 0.1; done
    return 1
}

if redis_up; then
    echo "run: using the Redis at $REDIS_URL"
else
    scripts/ensure-tools.sh redis
    redis_port="$("$PY" -c 'import os, urllib.parse as u; print(u.urlparse(os.environ["REDIS_URL"]).port or 6379)')"
    mkdir -p .run
    start_redis || { echo "run: redis-server did not start" >&2; exit 1; }
fi

launch proxy "$PY" -m proxy
launch shipper "$PY" -m shipper
echo "run: proxy and shipper started (Ctrl-C stops everything)"

interrupted=""
trap 'interrupted=yes' INT TERM
while true; do
    finished=""
    # Returns when a service exits, or early when a signal arrives (the trap notes which).
    wait -n -p finished "${pid_of[@]}" || true
    if [[ -n "$interrupted" ]]; then
        shutdown_stack
        exit 0
    fi
    [[ -n "$finished" ]] || continue
    name="${name_of[$finished]:-a service}"
    status=0
    wait "$finished" 2>/dev/null || status=$?
    unset "pid_of[$name]"
    if [[ "$name" != redis ]]; then
        break
    fi
    # As compose's `restart: unless-stopped`: the proxy spools meanwhile, the shipper waits.
    echo "run: redis-server exited (status $status); the proxy spools until it is back;" \
        "starting it again in 5 s" >&2
    sleep 5 &
    wait $! || true
    [[ -z "$interrupted" ]] || { shutdown_stack; exit 0; }
    start_redis || echo "run: redis-server did not start; trying again" >&2
done
echo "run: $name exited (status $status); stopping the rest" >&2
shutdown_stack
exit 1
