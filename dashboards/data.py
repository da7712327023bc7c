"""Read-only data access for the dashboard.

Marts come from the published Parquet files (data/marts/*.parquet); anything else from the
published warehouse through a short-lived read-only connection. Nothing here ever opens the
build database, and no connection outlives a query, so a refresh is never blocked. Caches are
keyed by the files' modification times: a newly published version shows up on the next rerun,
without restarting the app.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import streamlit as st

from flows.settings import get_settings


def marts_dir() -> Path:
    return get_settings().marts_dir


def warehouse() -> Path:
    return get_settings().warehouse_path


def _mtime(path: Path) -> float:
    return path.stat().st_mtime if path.exists() else 0.0


@st.cache_data(show_spinner=False)
def _read_parquet(path: str, mtime: float) -> pd.DataFrame:
    con = duckdb.connect()
    try:
        return con.execute("select * from read_parquet(?)", [path]).df()
    finally:
        con.close()


def mart(name: str) -> pd.DataFrame:
    """A published mart (from its Parquet export)."""
    path = marts_dir() / f"{name}.parquet"
    if not path.exists():
        st.error(f"{path} is not published yet: run `make run` first.")
        st.stop()
    return _read_parquet(str(path), _mtime(path))


@st.cache_data(show_spinner=False)
def _query(sql: str, path: str, mtime: float) -> pd.DataFrame:
    con = duckdb.connect(path, read_only=True)
    try:
        return con.execute(sql).df()
    finally:
        con.close()


def query(sql: str) -> pd.DataFrame:
    """A query on the published warehouse (read-only, connection closed right after)."""
    path = warehouse()
    if not path.exists():
        st.error(f"{path} is not published yet: run `make run` first.")
        st.stop()
    return _query(sql, str(path), _mtime(path))


@st.cache_data(show_spinner=False)
def _source_freshness(path: str, mtime: float) -> pd.DataFrame:
    from flows.sources.catalog import SOURCES
    from flows.state import source_freshness

    labels = {spec.name: spec.label for spec in SOURCES}
    con = duckdb.connect(path, read_only=True)
    try:
        items = source_freshness(con, tuple(labels))
    finally:
        con.close()
    return pd.DataFrame([{"source": i.source, "label": labels[i.source], "is_stale": i.is_stale,
                          "last_loaded_at": i.last_loaded_at, "last_attempt_at": i.last_attempt_at,
                          "last_status": i.last_status, "records_loaded": i.records,
                          "source_data_timestamp": i.data_timestamp, "last_error": i.last_error}
                         for i in items],
                        columns=["source", "label", "is_stale", "last_loaded_at",
                                 "last_attempt_at", "last_status", "records_loaded",
                                 "source_data_timestamp", "last_error"])


def source_freshness() -> pd.DataFrame:
    """Per source: last load, last attempt, and whether it is stale (latest attempt failed)."""
    path = warehouse()
    if not path.exists():
        st.error(f"{path} is not published yet: run `make run` first.")
        st.stop()
    return _source_freshness(str(path), _mtime(path))


def gate_reports() -> dict[str, dict]:
    quality = get_settings().quality_dir
    reports = {}
    for gate in ("raw", "mart"):
        path = quality / f"{gate}_gate_latest.json"
        if path.exists():
            reports[gate] = json.loads(path.read_text())
    return reports


def nct_link(trial_id: str | None) -> str | None:
    if not trial_id:
        return None
    if trial_id.startswith("NCT"):
        return f"https://clinicaltrials.gov/study/{trial_id}"
    return None


def publication_link(publication_id: str | None) -> str | None:
    if not publication_id:
        return None
    if publication_id.startswith("pmid:"):
        return f"https://pubmed.ncbi.nlm.nih.gov/{publication_id[5:]}/"
    if publication_id.startswith("doi:"):
        return f"https://doi.org/{publication_id[4:]}"
    return None
