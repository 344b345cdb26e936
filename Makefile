# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test check lint format bench clean-data

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "polis-api needs Python 3.11 or newer (set PYTHON=python3.11)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

## make run: serve on http://127.0.0.1:8000 (embedded PostgreSQL unless DATABASE_URL is set)
run: $(STAMP)
	$(BIN)/polis-api serve --migrate $(ARGS)

## make test: the whole suite against a real PostgreSQL (embedded unless TEST_DATABASE_URL)
test: $(STAMP)
	$(BIN)/pytest $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff format --check src tests migrations bench
	$(BIN)/ruff check src tests migrations bench
	$(BIN)/mypy src

format: $(STAMP)
	$(BIN)/ruff format src tests migrations bench
	$(BIN)/ruff check --fix src tests migrations bench

## make check: formatting, lint, types and the tests
check: lint test

clean-data:
	@echo "This deletes the local database in .polis/ (Ctrl-C to keep it)"; sleep 3
	rm -rf .polis
