# Everything a newcomer needs: `make run` starts the stack, `make test` checks it.
# Both work on a fresh machine: the targets create .venv and install what is missing.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TOOLS := .tools
# `make chaos ROUNDS=10 SCENARIOS="sentinel_primary_killed cluster_primary_killed"`: repeat (some) scenarios.
ROUNDS ?= 1
SCENARIOS ?=

.PHONY: install install-run tools test test-fast lint run bench chaos clean check-containers compose-check lock

# `make run` needs only the services' own dependencies; `make test` adds the test extras.
install-run: $(VENV)/.installed-run
install: $(VENV)/.installed

$(VENV)/.created:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	touch $@

$(VENV)/.installed-run: pyproject.toml $(VENV)/.created
	$(PY) -m pip install --quiet -e '.[run]'
	touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.created
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed-run

# redis-server and Azurite, installed only when the machine lacks them.
tools:
	scripts/ensure-tools.sh

test: install tools
	$(PY) -m ruff check proxy shipper shared explorer tests bench
	$(PY) -m mypy
	PATH="$(CURDIR)/$(TOOLS)/node_modules/.bin:$$PATH" $(PY) -m pytest

# The edit loop: everything but the slow, chaos and container tests, spread over the cores by
# pytest-xdist (`JOBS=0`: in one process); about 90 s on 2 cores (docs/testing.md).
JOBS ?= auto
test-fast: install tools
	$(PY) -m ruff check proxy shipper shared explorer tests bench
	PATH="$(CURDIR)/$(TOOLS)/node_modules/.bin:$$PATH" $(PY) -m pytest \
		-m "not slow and not chaos and not containers" -n $(JOBS) --dist worksteal

lint: install
	$(PY) -m ruff check proxy shipper shared explorer tests bench
	$(PY) -m mypy

# The container files without a Docker engine (CONTAINER.md, "How this is checked").
check-containers: install tools
	PATH="$(CURDIR)/$(TOOLS)/node_modules/.bin:$$PATH" $(PY) -m pytest tests/containers -q

run: install-run
	scripts/run.sh

# The compose stack on a real Docker engine, when one answers (CONTAINER.md, "Checked on a
# real engine"); without one it says so and exits 0. Not part of `make test`.
compose-check: install
	$(PY) -m tests.containers.compose_check

# The images' pinned dependencies (deploy/requirements-*.txt), from pyproject.toml's extras.
LOCK := $(PY) -m uv pip compile pyproject.toml --universal --python-version 3.11 \
	--generate-hashes --native-tls --quiet
lock: install
	$(PY) -m pip install --quiet -e '.[lock]'
	$(LOCK) --extra proxy -o deploy/requirements-proxy.txt
	$(LOCK) --extra shipper --extra explorer -o deploy/requirements-shipper.txt

bench: install tools
	$(PY) -m pip install --quiet -e '.[bench]'
	scripts/ensure-tools.sh bench
	PATH="$(CURDIR)/$(TOOLS)/node_modules/.bin:$$PATH" $(PY) -m bench

# The chaos scenarios (also part of `make test`), writing their results to RELIABILITY.md.
chaos: install tools
	PATH="$(CURDIR)/$(TOOLS)/node_modules/.bin:$$PATH" $(PY) -m tests.chaos --write RELIABILITY.md \
		--rounds $(ROUNDS) $(SCENARIOS)

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache
