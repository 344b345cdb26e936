# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test check lint format bench soak wrk clean-data

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

## make bench: polis-api against its floor and a naive app (bench/; ARGS="--quick" for a smoke run)
bench: $(STAMP) wrk
	$(BIN)/python bench/run.py $(ARGS)

## make soak: 10 minutes of mixed load on `serve --workers 2`, memory each minute (ARGS="--minutes 3")
soak: $(STAMP) wrk
	$(BIN)/python bench/soak.py $(ARGS)

# The load generator of bench and soak: installed with apt-get when root, else say how.
wrk:
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get install -y wrk || { apt-get update && apt-get install -y wrk; }; \
	  else \
	    echo "make $(MAKECMDGOALS) needs wrk: sudo apt-get install wrk (Debian/Ubuntu), brew install wrk (macOS)" >&2; exit 1; \
	  fi; }

clean-data:
	@echo "This deletes the local database in .polis/ (Ctrl-C to keep it)"; sleep 3
	rm -rf .polis
