# `make run` and `make test` do all the set-up on a fresh Debian machine (as root).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/stopapp
export REDIS_URL ?= redis://127.0.0.1:6379/0
export FLASK_APP := wsgi
# Tests use their own database and Redis database; the suite drops and rebuilds them.
TEST_DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/stopapp_test
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: run test services venv migrate seed lint check-migrations unit clean bench screenshots

run: services venv migrate seed
	@scripts/run.sh

test: venv
	@scripts/services.sh --browser stopapp_test
	$(MAKE) lint
	$(MAKE) check-migrations
	$(MAKE) unit

services:
	@scripts/services.sh stopapp

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

migrate: venv
	$(BIN)/flask db upgrade

# The three London boroughs first, so that the demo reports' triage finds their areas.
seed: venv
	$(BIN)/flask areas import tests/data/geo/london_hf_kc_westminster.geojson \
	  --code-property LAD13CD --name-property LAD13NM
	$(BIN)/flask seed-demo
	$(BIN)/flask authorities seed-demo

lint: venv
	$(BIN)/ruff check .

# One Alembic head, and the models agree with what the migrations build.
check-migrations: venv
	@heads=$$($(BIN)/flask db heads | grep -c head); \
	  if [ "$$heads" != 1 ]; then echo "expected 1 Alembic head, found $$heads"; exit 1; fi
	DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/python -m scripts.check_migrations

unit: venv
	STOPAPP_TEST_DATABASE_URL=$(TEST_DATABASE_URL) STOPAPP_TEST_REDIS_URL=$(TEST_REDIS_URL) \
	  $(BIN)/pytest -q $(PYTEST_ARGS)

# Refresh the README's screenshots (docs/screenshots) from the browser tests.
screenshots: venv
	@scripts/services.sh --browser stopapp_test
	STOPAPP_SCREENSHOTS=docs/screenshots $(MAKE) unit PYTEST_ARGS="tests/test_triage_browser.py tests/test_triage_report_browser.py tests/test_triage_queue_browser.py tests/test_triage_admin_browser.py tests/test_triage_paging_browser.py"

bench: venv
	$(BIN)/python bench/photos.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache *.egg-info
