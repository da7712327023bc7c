"""Run state read from the published warehouse: what the last runs left per source (its
watermark, its last loaded search, the runs it loaded), and table counts. Shared by the
refresh flow and ``betacell status``; every query is read-only."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb

from flows import sources
from flows.settings import Settings
from flows.sources.base import Resource, SourceState

COUNTED_SCHEMAS = ("raw", "staging", "intermediate", "marts")


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


def read_source_states(settings: Settings) -> dict[str, SourceState]:
    """Per source, what the published warehouse knows: its cursor's watermark (as the source's
    resource declares it), the ledger row of its last loaded search (not a fetch by id) and the
    landing runs it has loaded."""
    with published_connection(settings.warehouse_path) as con:
        if con is None or not _columns(con, "raw", "ingest_runs"):
            return {}
        states = {}
        for resource in sources.resources():
            states[resource.name] = SourceState(
                watermark=_watermark(con, resource),
                last_run=_last_run(con, resource.name),
                loaded_runs=frozenset(run_id for (run_id,) in con.execute(
                    "select run_id from raw.ingest_runs where source = ? and status = 'loaded'",
                    [resource.name]).fetchall()))
        return states


def _watermark(con: duckdb.DuckDBPyConnection, resource: Resource) -> date | None:
    cursor = resource.cursor
    if cursor is None:
        return None
    if cursor.in_ledger:
        (value,) = con.execute(f"select max({cursor.field})::date from raw.ingest_runs "
                               "where source = ? and status = 'loaded'", [resource.name]).fetchone()
        return value
    if cursor.field not in _columns(con, "raw", resource.table):
        return None
    (value,) = con.execute(f"select max({cursor.field}) from raw.{resource.table}").fetchone()
    return value


def _last_run(con: duckdb.DuckDBPyConnection, source: str) -> dict[str, Any]:
    row = con.execute(
        "select * from raw.ingest_runs where source = ? and status = 'loaded' "
        "and mode <> 'by_id' order by finished_at desc limit 1", [source])
    names = [d[0] for d in row.description]
    found = row.fetchone()
    return dict(zip(names, found, strict=True)) if found else {}


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
