# Two commands do everything on a fresh machine (see README):
#   make demo   the main job on the embedded default (SQLite file, no server)
#   make test   lint, types and the whole test suite (SQLite and PostgreSQL)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint system-packages bench bench-ingest bench-delivery bench-api clean

$(STAMP): requirements.lock requirements-dev.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/hub demo

lint: $(STAMP)
	$(BIN)/ruff check hub adapters tests bench
	$(BIN)/ruff format --check hub adapters tests bench
	$(BIN)/mypy

system-packages:
	tools/debian-packages

test: lint system-packages
	$(BIN)/pytest -n 2

bench: bench-ingest bench-delivery bench-api

bench-ingest: $(STAMP)
	$(BIN)/python -m bench.ingest

bench-delivery: $(STAMP)
	$(BIN)/python -m bench.delivery

bench-api: $(STAMP)
	$(BIN)/python -m bench.api

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
