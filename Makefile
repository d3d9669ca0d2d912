# DocGate: `make run` starts the service in development mode, `make test` runs the suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test bench lint dev-init clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.run-deps: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.test-deps: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(VENV)/.run-deps

run: $(VENV)/.run-deps
	$(BIN)/docgate dev-init > /dev/null
	$(BIN)/docgate serve

dev-init: $(VENV)/.run-deps
	$(BIN)/docgate dev-init

test: $(VENV)/.test-deps
	$(BIN)/python -m pytest

$(VENV)/.bench-deps: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test,bench]'
	touch $@ $(VENV)/.test-deps $(VENV)/.run-deps

# The whole suite (under 10 minutes on 2 cores); each script prints its figures next to
# its baseline and writes bench/results/<name>.json. wrk (Debian) drives the HTTP load.
bench: $(VENV)/.bench-deps
	@command -v wrk >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk)
	$(BIN)/python bench/sign.py
	$(BIN)/python bench/verify.py
	$(BIN)/python bench/load.py
	$(BIN)/python bench/large.py
	$(BIN)/python bench/exchange.py
	$(BIN)/python bench/report.py

lint: $(VENV)/.test-deps
	$(BIN)/ruff check gateway signing exchange tests bench

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
