# The few commands people type. Each bootstraps what it needs on a machine that has only
# python3 (3.11+), make, git, node/npm and the package registries.
SHELL := /bin/bash
PY_BOOT ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
UV_VERSION := 0.13.9
VENV := .venv
PY := $(VENV)/bin/python
ANVIL := node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
export UV_PYTHON_DOWNLOADS := never
# use the system trust store (machines here may sit behind a TLS-inspecting proxy with its own CA)
export UV_SYSTEM_CERTS := 1
# Bytecode is compiled once here (the dependencies as uv installs them, our packages at each
# bootstrap), so that no process compiles it as it starts: where PYTHONDONTWRITEBYTECODE is set,
# nothing else would write it, and every sequencer, watcher and test worker would compile its imports.
export UV_COMPILE_BYTECODE := 1

.PHONY: all bootstrap devnet demo test lint typecheck unit bench clean

all: test

$(UV):
	$(PY_BOOT) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PY_BOOT)
	touch $@

# `npm ci`: installs exactly what package-lock.json pins and never writes it. The lock lists every
# platform's optional anvil binary package, as `npm install` writes it; npm installs only this
# platform's. After changing package.json, run `npm install --package-lock-only` and commit the lock.
$(ANVIL): package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts
	touch $@

bootstrap: $(VENV)/.synced $(ANVIL)
	$(PY) -m compileall -q -j 0 sequencer prover contracts devnet

devnet: bootstrap
	$(VENV)/bin/rollup devnet

demo: bootstrap
	$(VENV)/bin/rollup demo

lint: bootstrap
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: bootstrap
	$(VENV)/bin/mypy sequencer/stf sequencer/matching sequencer/cluster prover

# Two workers (one a core), a test file to one worker; the end-to-end tests are handed out first, and
# the files that must not run side by side go to one worker together (tests/conftest.py); then the
# tests whose latency goals need the cores to themselves (marked `alone`), one at a time.
PYTEST_WORKERS ?= 2

unit: bootstrap
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder -m "not alone" --durations=25
	$(PY) -m pytest -q -m alone --durations=5

test: lint typecheck unit

bench: bootstrap
	$(VENV)/bin/rollup bench

clean:
	rm -rf $(TOOLS) $(VENV) .cache node_modules
