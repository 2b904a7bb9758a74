#!/usr/bin/env bash
# Install what the tests and `make run` need when the machine lacks it.
#   ensure-tools.sh            redis-server, Azurite and HAProxy (what `make test` needs)
#   ensure-tools.sh redis      only redis-server (what `make run` needs)
#   ensure-tools.sh bench      nginx, wrk and LiteLLM's proxy (what `make bench` adds)
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

if [ "$want" = bench ]; then
    # The proxy benchmark's upstream and floor (nginx), its load generator (wrk), and
    # LiteLLM's proxy, pinned, in a venv of its own (bench/.venvs is git-ignored).
    # nginx is installed without being started (RUNLEVEL=1 keeps invoke-rc.d quiet).
    if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ] \
        || ! command -v wrk >/dev/null 2>&1; then
        echo "ensure-tools: installing nginx and wrk"
        as_root apt-get update -qq
        as_root env RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends nginx wrk
    fi
    litellm_version=1.108.7
    if ! bench/.venvs/litellm/bin/python -c "import importlib.metadata as m, sys; \
            sys.exit(m.version('litellm') != '$litellm_version')" 2>/dev/null; then
        echo "ensure-tools: installing LiteLLM $litellm_version into bench/.venvs/litellm"
        python3 -m venv bench/.venvs/litellm
        bench/.venvs/litellm/bin/pip install --quiet "litellm[proxy]==$litellm_version" \
            || echo "ensure-tools: LiteLLM could not be installed; the bench leaves it out"
    fi
    exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
    echo "ensure-tools: installing Node.js and npm"
    apt_install nodejs npm
fi

if [ ! -x .tools/node_modules/.bin/azurite-blob ]; then
    echo "ensure-tools: installing Azurite"
    mkdir -p .tools
    npm install --prefix .tools --no-audit --no-fund --loglevel=error azurite@3 >/dev/null
fi

# Debian's chromium for the explorer's browser test (Playwright drives it; it never
# downloads a browser of its own).
if ! command -v chromium >/dev/null 2>&1; then
    echo "ensure-tools: installing chromium"
    apt_install chromium
fi

# HAProxy: tests/containers runs the compose entry point's config (deploy/haproxy.cfg) for real.
if ! command -v haproxy >/dev/null 2>&1 && [ ! -x /usr/sbin/haproxy ]; then
    echo "ensure-tools: installing haproxy"
    apt_install haproxy
fi
