# The README's two commands: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format bench bench-quick worker clean

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	@touch $(STAMP)

## Serve the app on http://127.0.0.1:8000 with the embedded default (SQLite, in-memory
## cache/channels, in-process tasks) and fake_anthropic when ANTHROPIC_API_KEY is unset.
run: $(STAMP)
	$(BIN)/python scripts/run_dev.py

## The whole suite on real PostgreSQL and Redis (found, or started throwaway). ARGS go to pytest.
test: $(STAMP)
	$(BIN)/python scripts/run_tests.py $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## A Celery worker for both queues (needs REDIS_URL).
worker: $(STAMP)
	$(BIN)/celery -A llmapp worker -Q default,memory --loglevel INFO

bench: $(STAMP)
	$(BIN)/python -m bench $(ARGS)

bench-quick: $(STAMP)
	$(BIN)/python -m bench --quick $(ARGS)

clean:
	rm -rf var/ .pytest_cache .ruff_cache
