# Betacell: two commands on a fresh machine -> `make run`, `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test test-fast bench lint status clean snapshot serve dashboard screenshots query docs

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	@# duckdb-cli's wheel ships the `duckdb` binary without its executable bit
	chmod +x $(BIN)/duckdb
	@touch $(STAMP)

## run: set up (if needed) and run the whole pipeline on the shipped snapshot
run: $(STAMP)
	$(BIN)/betacell run --source snapshot

## test: set up (if needed) and run the whole test suite (what CI runs), one worker per core
test: $(STAMP)
	$(BIN)/python -m pytest -n auto

## test-fast: the inner loop: unit, HTTP-client and loader tests, no pipeline run (< 1 minute)
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not pipeline"

## bench: archive -> raw -> staging benchmark on synthetic studies (N=100000 by default)
N ?= 100000
bench: $(STAMP)
	$(BIN)/betacell bench --studies $(N)

status: $(STAMP)
	$(BIN)/betacell status

lint: $(STAMP)
	$(BIN)/ruff check flows tests dashboards

## snapshot: rebuild data/snapshot from ../shared/reference (maintainers only)
snapshot: $(STAMP)
	$(BIN)/python -m flows.snapshot_build ../shared/reference

clean:
	rm -rf data/build data/raw data/marts data/quality data/docs data/warehouse.duckdb

## serve: start a local Prefect server and serve the scheduled deployments (Ctrl-C stops both)
PREFECT_PORT ?= 4200
serve: $(STAMP)
	@mkdir -p data/prefect
	PREFECT_HOME=$(CURDIR)/data/prefect PREFECT_SERVER_ANALYTICS_ENABLED=false \
	  $(BIN)/prefect server start --host 127.0.0.1 --port $(PREFECT_PORT) > data/prefect/server.log 2>&1 & \
	  server=$$!; trap "kill $$server" EXIT INT TERM; \
	  for i in $$(seq 1 90); do curl -sf http://127.0.0.1:$(PREFECT_PORT)/api/health >/dev/null && break; sleep 1; done; \
	  PREFECT_HOME=$(CURDIR)/data/prefect PREFECT_API_URL=http://127.0.0.1:$(PREFECT_PORT)/api $(BIN)/betacell serve

## query: the DuckDB CLI on the published warehouse, read-only (SQL=... runs one statement)
query: $(STAMP)
	@test -f data/warehouse.duckdb || { echo "Nothing published yet: run 'make run' first." >&2; exit 1; }
	$(BIN)/duckdb -readonly data/warehouse.duckdb $(if $(SQL),"$(SQL)",)

## docs: dbt docs of the published warehouse, served on http://127.0.0.1:$(DOCS_PORT) (Ctrl-C stops)
DOCS_PORT ?= 8080
docs: $(STAMP)
	@test -f data/warehouse.duckdb || $(BIN)/betacell run --source snapshot
	$(BIN)/betacell docs --port $(DOCS_PORT)

## dashboard: serve the Streamlit dashboard on the published warehouse (http://127.0.0.1:8501)
dashboard: $(STAMP)
	@test -f data/warehouse.duckdb || $(BIN)/betacell run --source snapshot
	$(BIN)/python -m streamlit run dashboards/Overview.py --server.headless true --server.address 127.0.0.1 --browser.gatherUsageStats false

## screenshots: headless Chromium screenshots of every page into dashboards/screenshots/
screenshots: $(STAMP)
	@test -f data/warehouse.duckdb || $(BIN)/betacell run --source snapshot
	$(BIN)/python -m pip install --quiet -e ".[screenshots]"
	$(BIN)/python dashboards/screenshots.py
