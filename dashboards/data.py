"""Read-only data access for the dashboard: the published marts only.

Every figure a page shows is read from a mart's Parquet export (data/marts/*.parquet); pages
filter and lay out, they never compute statistics. Caches are keyed by the files' modification
times: a newly published version shows up on the next rerun, without restarting the app.
"""

from __future__ import annotations

import functools
import json
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import pandas as pd
import streamlit as st

from dashboards.presentation import class_colours, class_labels
from flows.settings import get_settings

# Streamlit's wide layout keeps 5rem on each side of the page: wide tables need that room.
NARROW_MARGINS = """<style>
[data-testid="stMainBlockContainer"] {padding-left: 2rem; padding-right: 2rem;}
</style>"""


def use_the_page_width() -> None:
    """Call once per page, after st.set_page_config."""
    st.html(NARROW_MARGINS)


def marts_dir() -> Path:
    return get_settings().marts_dir


def _mtime(path: Path) -> float:
    return path.stat().st_mtime if path.exists() else 0.0


@st.cache_data(show_spinner=False)
def _read_parquet(path: str, mtime: float) -> pd.DataFrame:
    con = duckdb.connect()
    try:
        frame = con.execute("select * from read_parquet(?)", [path]).df()
        kinds = con.execute("select column_name, column_type from "
                            "(describe select * from read_parquet(?))", [path]).fetchall()
    finally:
        con.close()
    return dates_as_dates(frame, [name for name, kind in kinds if kind == "DATE"])


def dates_as_dates(frame: pd.DataFrame, date_columns: list[str]) -> pd.DataFrame:
    """DATE columns arrive as midnight timestamps ('2010-08-01 00:00:00'): make them dates."""
    for column in date_columns:
        frame[column] = pd.to_datetime(frame[column]).dt.date.astype(object)
        frame[column] = frame[column].where(frame[column].notna(), None)
    return frame


def mart(name: str) -> pd.DataFrame:
    """A published mart (from its Parquet export)."""
    path = marts_dir() / f"{name}.parquet"
    if not path.exists():
        st.error(f"{path} is not published yet: run `make run` first.")
        st.stop()
    return _read_parquet(str(path), _mtime(path))


def column_config(frame: pd.DataFrame, **overrides) -> dict:
    """Streamlit column settings: timestamps to the minute in UTC, dates as dates; then the
    page's own settings."""
    config: dict = {}
    for column in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[column]):
            config[column] = st.column_config.DatetimeColumn(
                format="YYYY-MM-DD HH:mm [UTC]", timezone="UTC")
    return {**config, **overrides}


def therapy_class_colours() -> dict[str, str]:
    """The one class -> colour map of every page (seed therapy_classes via dim_therapies)."""
    return class_colours(mart("dim_therapies"))


def therapy_class_labels() -> dict[str, str]:
    return class_labels(mart("dim_therapies"))


def published_at() -> str | None:
    """When the marts on disk were published (their Parquet files' time)."""
    files = list(marts_dir().glob("*.parquet"))
    if not files:
        return None
    newest = max(p.stat().st_mtime for p in files)
    return pd.Timestamp(newest, unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M UTC")


def gate_reports() -> dict[str, dict]:
    quality = get_settings().quality_dir
    reports = {}
    for gate in ("raw", "mart"):
        path = quality / f"{gate}_gate_latest.json"
        if path.exists():
            reports[gate] = json.loads(path.read_text())
    return reports


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the stdlib's name
        pass


@st.cache_resource(show_spinner=False)
def _quality_server(directory: str) -> ThreadingHTTPServer:
    """One static HTTP server on 127.0.0.1 (a free port) for the quality directory, for the
    app's lifetime: browsers refuse file:// links from an http:// page."""
    handler = functools.partial(_QuietHandler, directory=directory)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True, name="data-docs").start()
    return server


def data_docs_url() -> str | None:
    """An http:// URL of the Great Expectations Data Docs, served by the app (None when the
    docs are not built yet)."""
    quality = get_settings().quality_dir
    if not (quality / "data_docs" / "index.html").exists():
        return None
    port = _quality_server(str(quality)).server_address[1]
    return f"http://127.0.0.1:{port}/data_docs/index.html"


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
