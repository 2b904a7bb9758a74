# Everything a newcomer needs: `make run` starts the stack, `make test` checks it.
# Both work on a fresh machine: the targets create .venv and install what is missing.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TOOLS := .tools

.PHONY: install tools test test-fast lint run bench chaos clean check-containers

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

# redis-server and Azurite, installed only when the machine lacks them.
tools:
	scripts/ensure-tools.sh

test: install tools
	$(PY) -m ruff check proxy shipper shared explorer tests bench
	$(PY) -m mypy
	PATH="$(CURDIR)/$(TOOLS)/node_modules/.bin:$$PATH" $(PY) -m pytest

# The edit loop: everything but the slow, chaos and container tests (about a minute).
test-fast: install tools
	$(PY) -m ruff check proxy shipper shared explorer tests bench
	PATH="$(CURDIR)/$(TOOLS)/node_modules/.bin:$$PATH" $(PY) -m pytest -m "not slow and not chaos and not containers"

lint: install
	$(PY) -m ruff check proxy shipper shared explorer tests bench
	$(PY) -m mypy

# The container files without a Docker engine (CONTAINER.md, "How this is checked").
check-containers: install tools
	PATH="$(CURDIR)/$(TOOLS)/node_modules/.bin:$$PATH" $(PY) -m pytest tests/containers -q

run: install
	scripts/run.sh

bench: install tools
	$(PY) -m pip install --quiet -e '.[bench]'
	scripts/ensure-tools.sh bench
	PATH="$(CURDIR)/$(TOOLS)/node_modules/.bin:$$PATH" $(PY) -m bench

# The chaos scenarios (also part of `make test`), writing their results to RELIABILITY.md.
chaos: install tools
	PATH="$(CURDIR)/$(TOOLS)/node_modules/.bin:$$PATH" $(PY) -m tests.chaos --write RELIABILITY.md

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache
