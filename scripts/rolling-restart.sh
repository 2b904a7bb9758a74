#!/usr/bin/env bash
# Replace the proxy replicas one at a time, with no failed call (CONTAINER.md, "Upgrade"):
# for each running replica, start one more from the current image, wait until it is healthy
# and the load balancer has picked it up, then stop the old one (SIGTERM: it finishes what
# it holds) and remove it. `docker compose up -d` would replace them all at once.
#
#   docker compose build proxy && scripts/rolling-restart.sh [compose options, e.g. -p NAME]
set -euo pipefail
compose=(docker compose "$@")
mapfile -t old < <("${compose[@]}" ps -q proxy)
count=${#old[@]}
((count > 0)) || { echo "rolling-restart: no proxy replica is running" >&2; exit 1; }
for id in "${old[@]}"; do
    mapfile -t before < <("${compose[@]}" ps -q proxy)
    "${compose[@]}" up -d --no-deps --no-recreate --scale "proxy=$((count + 1))" proxy
    new=$(comm -13 <(printf '%s\n' "${before[@]}" | sort) <("${compose[@]}" ps -q proxy | sort))
    [[ -n "$new" ]] || { echo "rolling-restart: no new replica started" >&2; exit 1; }
    for _ in $(seq 60); do
        [[ "$(docker inspect -f '{{.State.Health.Status}}' "$new")" == healthy ]] && break
        sleep 2
    done
    [[ "$(docker inspect -f '{{.State.Health.Status}}' "$new")" == healthy ]] \
        || { echo "rolling-restart: the new replica is not healthy; old ones kept" >&2; exit 1; }
    # lb re-resolves DNS and checks /ready every 2 s: let it send the new one calls first.
    sleep 5
    echo "rolling-restart: stopping ${id:0:12}"
    docker stop --time 45 "$id" >/dev/null
    docker rm "$id" >/dev/null
done
echo "rolling-restart: $count replica(s) replaced"
