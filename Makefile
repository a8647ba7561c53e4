# chatbus: `make up` installs chatbus and starts a hub; `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
PORT ?= 6379
BIN := $(VENV)/bin

.PHONY: up down test lint bench clean

# pip's output goes to a log, shown only when an install fails.
PIP := $(BIN)/python -m pip install --disable-pip-version-check
INSTALL_LOG := $(VENV)/install.log

$(BIN)/chatbus: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@echo "Installing chatbus into $(VENV) (log: $(INSTALL_LOG))"
	@$(PIP) -e . >$(INSTALL_LOG) 2>&1 || { cat $(INSTALL_LOG); exit 1; }
	@touch $@

$(VENV)/.test-deps: $(BIN)/chatbus
	@echo "Installing the test tools into $(VENV) (log: $(INSTALL_LOG))"
	@$(PIP) -e '.[test]' >>$(INSTALL_LOG) 2>&1 || { cat $(INSTALL_LOG); exit 1; }
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
	@sh scripts/ensure-tls-server.sh
	$(BIN)/pytest

bench: $(VENV)/.test-deps
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build *.egg-info
