#!/usr/bin/env bash
# Make sure the test suite finds a redis-server binary and Azurite.
# redis-server: the machine's, else Debian's package. Azurite: the npm package, in .tools/.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v redis-server >/dev/null 2>&1; then
    echo "ensure-tools: installing redis-server"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server
fi

if ! command -v npm >/dev/null 2>&1; then
    echo "ensure-tools: installing Node.js and npm"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm
fi

if [ ! -x .tools/node_modules/.bin/azurite-blob ]; then
    echo "ensure-tools: installing Azurite"
    mkdir -p .tools
    npm install --prefix .tools --no-audit --no-fund --loglevel=error azurite@3 >/dev/null
fi
