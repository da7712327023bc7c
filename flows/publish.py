"""Build-copy preparation and publishing as one switch.

The pipeline never writes the published files. It copies the published warehouse (if any) into
``data/build/``, writes there, and only after every gate passed publishes a new *version*::

    data/published/<version>/warehouse.duckdb      the database
    data/published/<version>/marts/*.parquet       its marts, exported from that database
    data/current -> published/<version>            THE switch: one atomic symlink replace
    data/warehouse.duckdb -> current/warehouse.duckdb   stable paths for every reader
    data/marts -> current/marts

A version is complete on disk before ``current`` points at it, so a reader sees the old pair or
the new pair, never a mix, and a run killed at any point leaves the last good version in place.
Everything after the switch (pruning old versions) is best-effort: its failure is a warning,
because the new version is already live. Every switch is recorded in ``published/.switches.jsonl``;
pruning keeps the versions that were live last (never judged by age), so a version folder a kill
left behind before its switch is removed, not the version that was live before. Each Parquet file carries the version id in its
key-value metadata (``betacell_version``), the database in ``meta.published_version``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from flows.db import sql_literal
from flows.errors import BetacellError
from flows.settings import Settings

MARTS_SCHEMA = "marts"
KEEP_VERSIONS = 2  # the live one and the one before it (readers may still hold it open)
SWITCH_HISTORY = ".switches.jsonl"  # one line per switch of data/current: what was live, in order
MAX_HISTORY = 200


def published_root(settings: Settings) -> Path:
    return settings.data_path / "published"


def current_link(settings: Settings) -> Path:
    return settings.data_path / "current"


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


def remove_build_copy(settings: Settings) -> int:
    """Delete the build database (and its WAL, temp files and unfinished versions); returns
    the bytes freed."""
    build = settings.build_database
    freed = 0
    for path in (build, build.with_name(build.name + ".wal"), build.with_name(build.name + ".part")):
        with suppress(OSError):
            freed += path.stat().st_size
            path.unlink()
    for folder in [settings.build_dir / "duckdb_tmp",
                   *published_root(settings).glob(".*.part")]:
        if folder.is_dir():
            freed += sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
            shutil.rmtree(folder, ignore_errors=True)
    return freed


@dataclass
class PublishResult:
    warehouse: Path
    marts: list[Path] = field(default_factory=list)
    bytes: int = 0
    version: str = ""
    warnings: list[str] = field(default_factory=list)


def list_marts(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        "select table_name from information_schema.tables "
        "where table_schema = ? order by table_name",
        [MARTS_SCHEMA],
    ).fetchall()
    return [name for (name,) in rows]


def new_version_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}"


def publish(settings: Settings, build: Path) -> PublishResult:
    """Make ``build`` and its Parquet exports the published version, in one switch."""
    version = new_version_id()
    root = published_root(settings)
    staging = root / f".{version}.part"
    final = root / version
    try:
        root.mkdir(parents=True, exist_ok=True)
        _migrate_single_file_layout(settings)
        (staging / "marts").mkdir(parents=True)
        exported = _export(settings, build, staging / "marts", version)
        size = build.stat().st_size
        os.replace(build, staging / "warehouse.duckdb")
        _fsync_tree(staging)
        os.replace(staging, final)
        _fsync_dir(root)
        _switch(settings, final)
    except BaseException as exc:
        if published_version(settings) == version:  # the switch happened: the version is live
            raise BetacellError(
                f"version {version} is published and live, but finishing the publish failed "
                f"({type(exc).__name__}: {exc})") from exc
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(final, ignore_errors=True)
        if isinstance(exc, OSError):
            raise BetacellError(
                f"publishing failed before the switch ({type(exc).__name__}: {exc}); nothing was "
                f"published and the last good version stays live") from exc
        raise
    result = PublishResult(settings.warehouse_path,
                           [settings.marts_dir / f"{m}.parquet" for m in exported], size, version)
    result.warnings += _prune_old_versions(settings, keep=final)
    return result


def _export(settings: Settings, build: Path, marts_dir: Path, version: str) -> list[str]:
    con = duckdb.connect(str(build))
    try:
        _stamp_version(con, version, code_fingerprint(settings))
        con.execute("checkpoint")
        marts = list_marts(con)
        for mart in marts:
            target = sql_literal((marts_dir / f"{mart}.parquet").as_posix())
            con.execute(
                f'copy (select * from {MARTS_SCHEMA}."{mart}") to {target} '
                f"(format parquet, compression zstd, kv_metadata {{betacell_version: "
                f"{sql_literal(version)}}})"
            )
    finally:
        con.close()
    wal = build.with_name(build.name + ".wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise BetacellError(f"{build} still has a write-ahead log after checkpoint; not publishing")
    return marts


def _switch(settings: Settings, version_dir: Path) -> None:
    """Point ``data/current`` at the new version (atomic), then make sure the stable paths
    ``data/warehouse.duckdb`` and ``data/marts`` go through ``current``."""
    _quarantine_stray_wal(settings)
    before = published_version(settings)
    _replace_with_symlink(current_link(settings), Path("published") / version_dir.name)
    _replace_with_symlink(settings.warehouse_path, Path("current") / "warehouse.duckdb")
    _replace_with_symlink(settings.marts_dir, Path("current") / "marts")
    _fsync_dir(settings.data_path)
    _record_switch(settings, version_dir.name, before)


def switch_history(settings: Settings) -> list[str]:
    """The versions ``data/current`` pointed at, oldest first (as recorded at each switch)."""
    path = published_root(settings) / SWITCH_HISTORY
    try:
        lines = path.read_bytes().splitlines()
    except OSError:
        return []
    history = []
    for line in lines:
        try:
            history.append(json.loads(line)["version"])
        except (ValueError, KeyError, TypeError):
            continue  # a line cut by a kill
    return history


def _record_switch(settings: Settings, version: str, before: str | None) -> None:
    """Append the new live version (and, the first time, the one live before it)."""
    path = published_root(settings) / SWITCH_HISTORY
    history = switch_history(settings)
    lines = [] if history or before is None else [before]
    lines.append(version)
    if len(history) + len(lines) > MAX_HISTORY:
        kept = (history + lines)[-KEEP_VERSIONS * 10:]
        partial = path.with_name(path.name + ".part")
        partial.write_text("".join(json.dumps({"version": v}) + "\n" for v in kept))
        os.replace(partial, path)
        return
    with path.open("a") as out:
        out.writelines(json.dumps({"version": v, "switched_at": datetime.now(UTC).isoformat()})
                       + "\n" for v in lines)


def _quarantine_stray_wal(settings: Settings) -> None:
    """A write-ahead log beside the stable path comes from someone who opened the published
    file read-write; DuckDB would replay it into whatever version the link points at next.
    It is moved aside (kept for inspection), never replayed."""
    wal = settings.warehouse_path.with_name(settings.warehouse_path.name + ".wal")
    if wal.exists():
        os.replace(wal, wal.with_name(f"{wal.name}.stray-{new_version_id()}"))


def _replace_with_symlink(path: Path, target: Path) -> None:
    """Make ``path`` a symlink to ``target`` with one rename (a real directory in the way, e.g.
    from a copy that followed the links, is moved aside first and removed after)."""
    if path.is_symlink() and Path(os.readlink(path)) == target:
        return
    aside = None
    if path.is_dir() and not path.is_symlink():
        aside = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.old")
        os.replace(path, aside)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.link")
    os.symlink(target, temporary)
    try:
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def _migrate_single_file_layout(settings: Settings) -> None:
    """A data directory published before versions existed: its files become version
    ``legacy-…`` (hard links, so the bytes are not copied) and the stable paths point there."""
    warehouse, marts = settings.warehouse_path, settings.marts_dir
    if warehouse.is_symlink() or not warehouse.exists():
        return
    legacy = published_root(settings) / f"legacy-{new_version_id()}"
    (legacy / "marts").mkdir(parents=True)
    os.link(warehouse, legacy / "warehouse.duckdb")
    if marts.is_dir() and not marts.is_symlink():
        for parquet in marts.glob("*.parquet"):
            os.link(parquet, legacy / "marts" / parquet.name)
    _replace_with_symlink(current_link(settings), Path("published") / legacy.name)
    _replace_with_symlink(warehouse, Path("current") / "warehouse.duckdb")
    _replace_with_symlink(marts, Path("current") / "marts")
    _record_switch(settings, legacy.name, None)


def _prune_old_versions(settings: Settings, keep: Path) -> list[str]:
    """Keep the last KEEP_VERSIONS versions that were live (from the switch history), and the
    live one whatever the history says; remove every other version folder — first those never
    switched to (a kill between a finished folder and its switch), then older live ones — and
    unfinished ones. Best-effort."""
    root = published_root(settings)
    warnings = []
    try:
        history = switch_history(settings)
        recent: list[str] = []
        for version in reversed(history):
            if version not in recent:
                recent.append(version)
            if len(recent) == KEEP_VERSIONS:
                break
        kept = set(recent) | {keep.name, published_version(settings) or keep.name}
        folders = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
        never_live = [p for p in folders if p.name not in kept and p.name not in history]
        old_live = [p for p in folders if p.name not in kept and p.name in history]
        unfinished = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(".")
                      and p.name.endswith(".part")]
        for old in never_live + old_live + unfinished:
            shutil.rmtree(old)
    except OSError as exc:
        warnings.append(f"published version {keep.name}, but old versions could not be pruned "
                        f"({type(exc).__name__}: {exc}); they only take disk space")
    return warnings


def published_version(settings: Settings) -> str | None:
    """The version ``data/current`` points at (None before the first publish)."""
    link = current_link(settings)
    return Path(os.readlink(link)).name if link.is_symlink() else None


def _stamp_version(con: duckdb.DuckDBPyConnection, version: str, fingerprint: str) -> None:
    """meta.published_version: one row naming this version, the row count of every mart (so a
    reader can check that what it reads belongs together) and the fingerprint of the code that
    built it (so a run with nothing new can tell it need not rebuild)."""
    counts = {m: con.execute(f'select count(*) from {MARTS_SCHEMA}."{m}"').fetchone()[0]
              for m in list_marts(con)}
    con.execute("create schema if not exists meta")
    con.execute(
        "create or replace table meta.published_version as select "
        "cast(? as varchar) as version_id, now() as published_at, "
        "cast(? as json) as mart_row_counts, cast(? as varchar) as code_fingerprint",
        [version, json.dumps(counts), fingerprint],
    )


BUILD_INPUTS = ("dbt_project/models", "dbt_project/macros", "dbt_project/seeds",
                "dbt_project/snapshots", "dbt_project/tests", "dbt_project/dbt_project.yml",
                "expectations/gx", "flows/quality.py", "flows/outcomes.py",
                "flows/evidence")  # rules the dbt Python models import (certainty, pooling)


def code_fingerprint(settings: Settings) -> str:
    """sha256 over everything that shapes the warehouse from raw data: the dbt project, the
    quality suites and the search topic. A change in any of them means a rebuild."""
    from flows.settings import REPO_DIR

    digest = hashlib.sha256()
    paths = [settings.topic_file]
    for name in BUILD_INPUTS:
        path = REPO_DIR / name
        paths += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for path in paths:
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.name).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def published_fingerprint(settings: Settings) -> str | None:
    """The code fingerprint of the published version (None before fingerprints existed)."""
    if not settings.warehouse_path.exists():
        return None
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        return con.execute("select code_fingerprint from meta.published_version").fetchone()[0]
    except (duckdb.Error, TypeError):
        return None
    finally:
        con.close()


def _fsync_tree(root: Path) -> None:
    for path in sorted(root.rglob("*"), reverse=True):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        else:
            _fsync_dir(path)
    _fsync_dir(root)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
