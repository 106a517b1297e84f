# Two commands do everything on a fresh machine (see README):
#   make demo   the main job on the embedded default (SQLite file, no server)
#   make test   lint, types and the whole test suite (SQLite and PostgreSQL)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint system-packages bench bench-ingest bench-delivery bench-api bench-sync bench-scale fuzz screenshots clean

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
	$(BIN)/pytest -n 2 --dist loadgroup

bench: bench-ingest bench-delivery bench-api bench-sync

# The portal's browser tests write every page at 1280 and 360 px to var/screenshots/;
# the README shows these copies in docs/img/.
README_SHOTS := portal-unggah-desktop portal-hasil-desktop portal-persetujuan-phone portal-statistik-desktop

screenshots: $(STAMP) system-packages
	$(BIN)/pytest -q -n 0 -m browser tests/portal
	mkdir -p docs/img
	for shot in $(README_SHOTS); do cp var/screenshots/$$shot.png docs/img/$$shot.png; done

bench-ingest: $(STAMP)
	$(BIN)/python -m bench.ingest

bench-delivery: $(STAMP)
	$(BIN)/python -m bench.delivery

bench-api: $(STAMP)
	$(BIN)/python -m bench.api

bench-scale: $(STAMP)  # PostgreSQL and Redis on this machine; not part of `bench`
	$(BIN)/python -m bench.scale

fuzz: $(STAMP)  # the reader fuzz of tests/hostile with 3,000 examples per format
	HUB_FUZZ_EXAMPLES=3000 $(BIN)/pytest -q -p no:randomly -n 0 tests/hostile/test_reader_fuzz.py

bench-sync: $(STAMP) system-packages
	$(BIN)/python -m bench.sync

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
