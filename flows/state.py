"""Run state read from the published warehouse: what the last runs left (watermarks, source data
timestamps, topic fingerprint), each source's freshness, and table counts. Shared by the
refresh flow and ``betacell status``; every query is read-only."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb

from flows.settings import Settings

COUNTED_SCHEMAS = ("raw", "staging", "intermediate", "marts")


@dataclass(frozen=True)
class PreviousState:
    """What the last published warehouse knows about ClinicalTrials.gov and PubMed."""

    data_timestamp: str | None = None
    watermark: date | None = None
    topic_fingerprint: str | None = None
    publications_watermark: date | None = None


@contextmanager
def published_connection(path: Path) -> Iterator[duckdb.DuckDBPyConnection | None]:
    """A short-lived read-only connection to the published warehouse (None if unpublished)."""
    if not path.exists():
        yield None
        return
    con = duckdb.connect(str(path), read_only=True)
    try:
        yield con
    finally:
        con.close()


def _columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> set[str]:
    return {name for (name,) in con.execute(
        "select column_name from information_schema.columns "
        "where table_schema = ? and table_name = ?", [schema, table]).fetchall()}


def read_previous_state(settings: Settings) -> PreviousState:
    with published_connection(settings.warehouse_path) as con:
        if con is None or not _columns(con, "raw", "ingest_runs"):
            return PreviousState()
        watermark = None
        if _columns(con, "raw", "ctgov_studies"):
            (watermark,) = con.execute(
                "select max(last_update_post_date) from raw.ctgov_studies").fetchone()
        fingerprint = ("topic_fingerprint" if "topic_fingerprint" in
                       _columns(con, "raw", "ingest_runs") else "null")
        row = con.execute(
            f"select data_timestamp, {fingerprint} from raw.ingest_runs where source = 'ctgov' "
            "and status = 'loaded' and data_timestamp is not null "
            "order by finished_at desc limit 1").fetchone()
        (publications,) = con.execute(
            "select max(finished_at)::date from raw.ingest_runs "
            "where source = 'pubmed' and status = 'loaded'").fetchone()
        return PreviousState(data_timestamp=row[0] if row else None, watermark=watermark,
                             topic_fingerprint=row[1] if row else None,
                             publications_watermark=publications)


def table_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    tables = con.execute(
        "select table_schema, table_name from information_schema.tables "
        f"where table_schema in {COUNTED_SCHEMAS} order by table_schema, table_name").fetchall()
    return {f"{schema}.{name}":
            con.execute(f'select count(*) from "{schema}"."{name}"').fetchone()[0]
            for schema, name in tables}


def published_table_counts(settings: Settings) -> dict[str, int]:
    with published_connection(settings.warehouse_path) as con:
        return table_counts(con) if con is not None else {}


def published_changes(settings: Settings) -> dict[str, int]:
    with published_connection(settings.warehouse_path) as con:
        if con is None or not _columns(con, "marts", "changes_since_last_run"):
            return {}
        return dict(con.execute("select change_type, count(*) from marts.changes_since_last_run "
                                "group by 1 order by 1").fetchall())


def as_jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value
