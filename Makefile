# Betacell: two commands on a fresh machine -> `make run`, `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Python versions the pinned dependencies install on (3.13: no wheels for several pins, and
# pyproject.toml's requires-python refuses it)
SUPPORTED_PYTHON := 3.11 3.12
PYTHON_VERSION_OF = $(1) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null

.PHONY: run test test-fast bench lint status clean distclean snapshot serve dashboard screenshots \
        query docs check-python

# A .venv whose Python is gone, does not start or is not a supported version is not reused:
# its stamp is dropped, so the install below recreates it.
VENV_PYTHON_VERSION := $(shell $(call PYTHON_VERSION_OF,$(BIN)/python))
ifeq ($(filter $(SUPPORTED_PYTHON),$(VENV_PYTHON_VERSION)),)
  $(shell rm -f $(STAMP))
endif

## check-python: is $(PYTHON) a supported version? (says what to do when it is not)
check-python:
	@version=$$($(call PYTHON_VERSION_OF,$(PYTHON))) || { \
	  echo "error: '$(PYTHON)' does not run. Install Python 3.11 or 3.12 and run e.g. 'make PYTHON=python3.12'." >&2; exit 1; }; \
	case " $(SUPPORTED_PYTHON) " in *" $$version "*) ;; *) \
	  echo "error: '$(PYTHON)' is Python $$version; Betacell supports Python $(SUPPORTED_PYTHON)." >&2; \
	  echo "       Install one of them and run e.g. 'make PYTHON=python3.12' (or PYTHON=/path/to/python3.11)." >&2; \
	  exit 1;; esac

# The stamp is written only after a complete install; a failed install leaves none, and the next
# make tries again (a .venv with the wrong Python is removed first).
$(STAMP): pyproject.toml
	@if [ -e $(VENV) ] && [ -z "$(filter $(SUPPORTED_PYTHON),$(VENV_PYTHON_VERSION))" ]; then \
	  echo "$(VENV) is broken or uses Python '$(VENV_PYTHON_VERSION)' (supported: $(SUPPORTED_PYTHON)): recreating it"; \
	  rm -rf $(VENV); fi
	@test -x $(BIN)/python || { $(MAKE) --no-print-directory check-python PYTHON="$(PYTHON)" && \
	  $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]" || { \
	  echo "error: installing into $(VENV) failed (see above); fix the cause and run make again." >&2; exit 1; }
	@# duckdb-cli's wheel ships the `duckdb` binary without its executable bit
	chmod +x $(BIN)/duckdb
	@touch $(STAMP)

## run: set up (if needed) and run the whole pipeline on the shipped snapshot; when this
## checkout's `make serve` runs its Prefect server, the run is recorded there and shows in its UI
## (another checkout's server on the same port is not used; an explicit PREFECT_API_URL is)
PREFECT_PORT ?= 4200
PREFECT_URL = http://127.0.0.1:$(PREFECT_PORT)/api
# this checkout's Prefect state; `make serve` writes its server's pid and URL here
PREFECT_DIR ?= $(CURDIR)/data/prefect
SERVER_PID_FILE = $(PREFECT_DIR)/server.pid
SERVER_URL_FILE = $(PREFECT_DIR)/server.url
# evaluated when a recipe uses it: the environment that points a run at this checkout's server,
# when its process is alive and its URL answers (else nothing: a temporary server, or the
# PREFECT_API_URL the environment sets)
PREFECT_RUN_ENV = $(shell [ -z "$$PREFECT_API_URL" ] && \
  pid=$$(cat $(SERVER_PID_FILE) 2>/dev/null) && url=$$(cat $(SERVER_URL_FILE) 2>/dev/null) && \
  [ -n "$$pid" ] && kill -0 "$$pid" 2>/dev/null && \
  curl -sf --max-time 2 "$$url/health" >/dev/null 2>&1 && \
  echo PREFECT_HOME=$(PREFECT_DIR) PREFECT_API_URL=$$url)
run: $(STAMP)
	$(PREFECT_RUN_ENV) $(BIN)/betacell run --source snapshot

## test: set up (if needed) and run the whole test suite (what CI runs), one worker per core;
## it ends with the 15 slowest tests (the budget: README "Development")
test: $(STAMP)
	$(BIN)/python -m pytest -n auto --durations=15

## test-fast: the inner loop: unit, HTTP-client and loader tests, no pipeline run (~30 s on
## two cores: one pytest-xdist worker per core)
test-fast: $(STAMP)
	$(BIN)/python -m pytest -n auto -m "not pipeline"

## bench: archive -> raw -> staging benchmark on synthetic studies (N=100000 by default)
N ?= 100000
bench: $(STAMP)
	$(BIN)/betacell bench --studies $(N)

status: $(STAMP)
	$(BIN)/betacell status

lint: $(STAMP)
	$(BIN)/ruff check flows tests dashboards tools

## snapshot: rebuild data/snapshot from ../shared/reference (maintainers only)
snapshot: $(STAMP)
	$(BIN)/python -m tools.snapshot_build ../shared/reference

## clean: remove what `make run` produced (build, raw landing, published warehouse and Parquet,
## quality reports, dbt docs). Keeps .venv, the shipped data/snapshot and data/outcomes, files
## you dropped into data/inbox, and the Prefect server state in data/prefect.
clean:
	rm -rf data/build data/raw data/marts data/quality data/docs data/warehouse.duckdb \
	  data/published data/current

## distclean: clean, and also remove .venv, data/prefect and dbt's leftovers (a fresh clone)
distclean: clean
	rm -rf $(VENV) data/prefect dbt_project/target dbt_project/logs

## serve: start a local Prefect server and serve the scheduled deployments (Ctrl-C stops both);
## the server's pid and URL go to $(PREFECT_DIR) so this checkout's `make run` finds it
serve: $(STAMP)
	@mkdir -p $(PREFECT_DIR)
	@if curl -sf --max-time 2 $(PREFECT_URL)/health >/dev/null 2>&1; then \
	  echo "error: a server already answers on port $(PREFECT_PORT) (another checkout's?); stop it or run 'make serve PREFECT_PORT=4300'." >&2; exit 1; fi
	PREFECT_HOME=$(PREFECT_DIR) PREFECT_SERVER_ANALYTICS_ENABLED=false \
	  $(BIN)/prefect server start --host 127.0.0.1 --port $(PREFECT_PORT) > $(PREFECT_DIR)/server.log 2>&1 & \
	  server=$$!; trap "kill $$server; rm -f $(SERVER_PID_FILE) $(SERVER_URL_FILE)" EXIT INT TERM; \
	  for i in $$(seq 1 90); do curl -sf $(PREFECT_URL)/health >/dev/null && break; sleep 1; done; \
	  echo $$server > $(SERVER_PID_FILE); echo $(PREFECT_URL) > $(SERVER_URL_FILE); \
	  PREFECT_HOME=$(PREFECT_DIR) PREFECT_API_URL=$(PREFECT_URL) $(BIN)/betacell serve

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
