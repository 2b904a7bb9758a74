#!/usr/bin/env bash
# `make run`: the whole stack without Docker, in the foreground; Ctrl-C stops everything.
# Redis: the one at REDIS_URL if it answers, else a private redis-server started here
# (data kept in .run/). Then the proxy and the shipper, which read .env themselves.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
# The settings object resolves REDIS_URL exactly as the services will (environment, .env, default).
REDIS_URL="$("$PY" -c 'from shared.settings import CommonSettings; print(CommonSettings().redis_url)')"
export REDIS_URL

pids=()
stop() {
    trap - INT TERM EXIT
    echo "run: stopping"
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait
}
trap stop INT TERM EXIT

redis_up() { "$PY" -c 'import os, redis; redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=1).ping()' 2>/dev/null; }

if redis_up; then
    echo "run: using the Redis at $REDIS_URL"
else
    scripts/ensure-tools.sh redis
    port="$("$PY" -c 'import os, urllib.parse as u; print(u.urlparse(os.environ["REDIS_URL"]).port or 6379)')"
    mkdir -p .run
    echo "run: starting redis-server on port $port (data in .run/)"
    redis-server --port "$port" --bind 127.0.0.1 --dir "$PWD/.run" --appendonly yes --save "" &
    pids+=($!)
    for _ in $(seq 50); do redis_up && break; sleep 0.1; done
    redis_up || { echo "run: redis-server did not start" >&2; exit 1; }
fi

"$PY" -m proxy &
pids+=($!)
"$PY" -m shipper &
pids+=($!)

echo "run: proxy and shipper started (Ctrl-C stops everything)"
wait -n
