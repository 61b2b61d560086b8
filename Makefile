# Deskstream: two commands a newcomer needs, `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint fmt unit integration e2e bench install clean docs-lifecycle

## run: the product on one machine (embedded PostgreSQL, demo data) on http://127.0.0.1:8000
run: $(STAMP)
	$(BIN)/python -m config.launcher

## test: install, start the servers the tests need, lint, then every test tier
test: $(STAMP)
	$(BIN)/python scripts/with_services.py -- $(MAKE) --no-print-directory lint pytest

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DESKSTREAM_DEBUG=1 $(BIN)/mypy .
	$(BIN)/lint-imports

# Small event-store pools: the suite runs the test process, live servers and projector
# processes against one PostgreSQL at once, and each pool opens its connections up front.
pytest: $(STAMP)
	DESKSTREAM_EVENTSTORE_POOL_SIZE=$${DESKSTREAM_EVENTSTORE_POOL_SIZE:-3} $(BIN)/pytest -q

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

docs-lifecycle: $(STAMP)
	$(BIN)/python -m domain.lifecycle > docs/lifecycle.md

bench: $(STAMP)
	$(BIN)/python bench/commands.py

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache
