"""Build-copy preparation and atomic publish.

The pipeline never writes the published file. It copies the published warehouse (if any) into
``data/build/``, writes there, and only after every gate passed moves the build database over
``data/warehouse.duckdb`` with ``os.replace`` (atomic on one filesystem: a reader sees the old
file or the new one, never a mix). Marts are exported to Parquet aside and renamed into place.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from flows.errors import BetacellError
from flows.settings import Settings

MARTS_SCHEMA = "marts"


@contextmanager
def refresh_lock(settings: Settings) -> Iterator[None]:
    """One refresh at a time per data dir (DuckDB allows one writer per file)."""
    settings.build_dir.mkdir(parents=True, exist_ok=True)
    lock_path = settings.build_dir / ".refresh.lock"
    with lock_path.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise BetacellError(
                f"another refresh is running on {settings.data_path} (lock {lock_path}); "
                "wait for it to finish"
            ) from exc
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def prepare_build_database(settings: Settings) -> Path:
    """A fresh build copy of the published warehouse (or an empty one on the first run)."""
    build = settings.build_database
    build.parent.mkdir(parents=True, exist_ok=True)
    for leftover in (build, build.with_name(build.name + ".wal")):
        leftover.unlink(missing_ok=True)
    if settings.warehouse_path.exists():
        partial = build.with_name(build.name + ".part")
        shutil.copyfile(settings.warehouse_path, partial)
        os.replace(partial, build)
    return build


@dataclass
class PublishResult:
    warehouse: Path
    marts: list[Path] = field(default_factory=list)
    bytes: int = 0


def list_marts(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        "select table_name from information_schema.tables "
        "where table_schema = ? order by table_name",
        [MARTS_SCHEMA],
    ).fetchall()
    return [name for (name,) in rows]


def publish(settings: Settings, build: Path) -> PublishResult:
    """Checkpoint the build database, export marts aside, then move everything into place."""
    settings.marts_dir.mkdir(parents=True, exist_ok=True)
    staged: list[tuple[Path, Path]] = []
    con = duckdb.connect(str(build))
    try:
        _stamp_version(con)
        con.execute("checkpoint")
        for mart in list_marts(con):
            final = settings.marts_dir / f"{mart}.parquet"
            aside = settings.marts_dir / f".{mart}.parquet.part"
            con.execute(
                f"copy (select * from {MARTS_SCHEMA}.{mart}) to '{aside.as_posix()}' "
                "(format parquet, compression zstd)"
            )
            staged.append((aside, final))
    finally:
        con.close()
    wal = build.with_name(build.name + ".wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise BetacellError(f"{build} still has a write-ahead log after checkpoint; not publishing")
    size = build.stat().st_size
    os.replace(build, settings.warehouse_path)
    _fsync_dir(settings.warehouse_path.parent)
    for aside, final in staged:
        os.replace(aside, final)
    _fsync_dir(settings.marts_dir)
    return PublishResult(settings.warehouse_path, [final for _, final in staged], size)


def _stamp_version(con: duckdb.DuckDBPyConnection) -> None:
    """meta.published_version: one row naming this version and the row count of every mart, so
    a reader can check that what it reads belongs together."""
    counts = {m: con.execute(f"select count(*) from {MARTS_SCHEMA}.{m}").fetchone()[0]
              for m in list_marts(con)}
    con.execute("create schema if not exists meta")
    con.execute(
        "create or replace table meta.published_version as select "
        "cast(uuid() as varchar) as version_id, now() as published_at, "
        "cast(? as json) as mart_row_counts",
        [json.dumps(counts)],
    )


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
