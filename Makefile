# Betacell: two commands on a fresh machine -> `make run`, `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test bench lint status clean snapshot

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	@touch $(STAMP)

## run: set up (if needed) and run the whole pipeline on the shipped snapshot
run: $(STAMP)
	$(BIN)/betacell run --source snapshot

## test: set up (if needed) and run the whole test suite
test: $(STAMP)
	$(BIN)/python -m pytest

## bench: archive -> raw -> staging benchmark on synthetic studies (N=100000 by default)
N ?= 100000
bench: $(STAMP)
	$(BIN)/betacell bench --studies $(N)

status: $(STAMP)
	$(BIN)/betacell status

lint: $(STAMP)
	$(BIN)/ruff check flows tests

## snapshot: rebuild data/snapshot from ../shared/reference (maintainers only)
snapshot: $(STAMP)
	$(BIN)/python -m flows.snapshot_build ../shared/reference

clean:
	rm -rf data/build data/raw data/marts data/quality data/warehouse.duckdb
