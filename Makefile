# chatbus: `make up` installs chatbus and starts a hub; `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
PORT ?= 6379
BIN := $(VENV)/bin

.PHONY: up down test lint bench clean

$(BIN)/chatbus: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.test-deps: $(BIN)/chatbus
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

up: $(BIN)/chatbus
	@PORT=$(PORT) BIN=$(BIN) sh scripts/hub-up.sh

down:
	@PORT=$(PORT) BIN=$(BIN) sh scripts/hub-down.sh

lint: $(VENV)/.test-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

bench: $(VENV)/.test-deps
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build *.egg-info
