#!/usr/bin/env bash
# Install what the tests and `make run` need when the machine lacks it.
#   ensure-tools.sh            redis-server and Azurite (what `make test` needs)
#   ensure-tools.sh redis      only redis-server (what `make run` needs)
# redis-server comes from Debian's package; Azurite from the npm package, into .tools/.
set -euo pipefail
cd "$(dirname "$0")/.."

want="${1:-all}"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

if ! command -v redis-server >/dev/null 2>&1; then
    echo "ensure-tools: installing redis-server"
    apt_install redis-server
fi

[ "$want" = redis ] && exit 0

if ! command -v npm >/dev/null 2>&1; then
    echo "ensure-tools: installing Node.js and npm"
    apt_install nodejs npm
fi

if [ ! -x .tools/node_modules/.bin/azurite-blob ]; then
    echo "ensure-tools: installing Azurite"
    mkdir -p .tools
    npm install --prefix .tools --no-audit --no-fund --loglevel=error azurite@3 >/dev/null
fi
