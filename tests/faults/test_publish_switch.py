"""Publish is one switch: the database and its Parquet exports become visible together.

The probe killed a publish between replacing the ``.duckdb`` and renaming the Parquet files and
found a new database beside stale exports. Here a child process publishes and is SIGKILLed
before and after *every* filesystem switch it makes; after each kill, what a reader finds at
the stable paths must be one complete version: the database's ``meta.published_version`` equals
the version stamped in every Parquet file, and every mart has the same row count in both.

The versions published here are made from a small copy of the session warehouse (its marts
only, ``small_warehouse``): a publish switches the same files whatever the database holds, and
each of the many kill points then costs a fraction of a second instead of copying 30 MB.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from flows.errors import BetacellError
from flows.publish import publish, published_root, published_version
from flows.settings import get_settings, reset_settings_cache

pytestmark = pytest.mark.integration

CHILD = Path(__file__).with_name("publish_child.py")


def published_pair(data: Path) -> tuple[str, dict[str, int]]:
    """The version a reader sees and the mart row counts, checked to belong together."""
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        version = con.execute("select version_id from meta.published_version").fetchone()[0]
        counts = dict(con.execute(
            "select table_name, estimated_size from duckdb_tables() where schema_name = 'marts'"
        ).fetchall())
        counts = {m: con.execute(f'select count(*) from marts."{m}"').fetchone()[0]
                  for m in counts}
    finally:
        con.close()
    files = {p.stem: p for p in (data / "marts").glob("*.parquet")}
    assert set(files) == set(counts), "the exports and the database list different marts"
    for mart, path in files.items():
        meta = pq.read_metadata(path)
        assert meta.metadata[b"betacell_version"].decode() == version, f"{mart} is from another version"
        assert meta.num_rows == counts[mart], f"{mart}: {meta.num_rows} rows in Parquet, {counts[mart]} in the database"
    return version, counts


def smaller_build(source: Path, target: Path, drop: int) -> Path:
    """A build database that differs from ``source``: ``drop`` rows fewer in dim_trials."""
    shutil.copyfile(source, target)
    con = duckdb.connect(str(target))
    con.execute(f"delete from marts.dim_trials where trial_id in (select trial_id from "
                f"marts.dim_trials order by trial_id limit {drop})")
    con.close()
    return target


@pytest.fixture(scope="session")
def small_warehouse(built_warehouse, tmp_path_factory) -> Path:
    """The session warehouse's marts (every mart, every row) in a database of their own."""
    path = tmp_path_factory.mktemp("small_warehouse") / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    try:
        con.execute(f"attach '{built_warehouse.warehouse}' as built (read_only)")
        con.execute("create schema marts")
        for (mart,) in con.execute("select table_name from duckdb_tables() where database_name "
                                   "= 'built' and schema_name = 'marts' order by 1").fetchall():
            con.execute(f'create table marts."{mart}" as select * from built.marts."{mart}"')
        con.execute("detach built")
    finally:
        con.close()
    return path


@pytest.fixture
def data_dir(small_warehouse, tmp_path, monkeypatch):
    """A data directory (with a quote in its path) holding one published version."""
    data = tmp_path / "it's data"
    monkeypatch.setenv("BETACELL_DATA_DIR", str(data))
    reset_settings_cache()
    (data / "build").mkdir(parents=True)
    publish(get_settings(), smaller_build(small_warehouse, data / "build" / "warehouse.duckdb", 0))
    yield data
    reset_settings_cache()


def test_a_publish_killed_at_any_switch_leaves_one_complete_version(data_dir, small_warehouse):
    old_version, old_counts = published_pair(data_dir)
    seen = {old_version}
    n = 1
    while True:
        outcomes = []
        for when in ("before", "after"):
            build = smaller_build(small_warehouse,
                                  data_dir / "build" / "warehouse.duckdb", n)
            child = subprocess.run([sys.executable, str(CHILD), str(data_dir), str(build),
                                    str(n), when], capture_output=True, text=True, timeout=120)
            outcomes.append(child.returncode)
            assert child.returncode in (-9, 3), child.stderr[-2000:]
            version, counts = published_pair(data_dir)
            seen.add(version)
        if outcomes == [3, 3]:
            break
        n += 1
    assert n > 4, "the publish made fewer switch calls than expected: the trap missed them"
    assert len(seen) > 2  # some kills landed after the switch: the new version was live
    remaining = [p.name for p in published_root(get_settings()).iterdir()]
    assert len([name for name in remaining if not name.startswith(".")]) <= 3
    assert published_version(get_settings()) == published_pair(data_dir)[0]


def test_a_failure_before_the_switch_publishes_nothing_and_says_so(data_dir, small_warehouse,
                                                                   monkeypatch):
    before = published_pair(data_dir)
    build = smaller_build(small_warehouse, data_dir / "build" / "warehouse.duckdb", 9)
    real_replace = __import__("os").replace

    def failing_replace(source, target, *args, **kwargs):
        if Path(target).name == "warehouse.duckdb" and ".part" in str(target):
            raise OSError(28, "No space left on device")
        return real_replace(source, target, *args, **kwargs)

    monkeypatch.setattr("flows.publish.os.replace", failing_replace)
    with pytest.raises(BetacellError, match="nothing was published and the last good version "
                                            "stays live"):
        publish(get_settings(), build)
    assert published_pair(data_dir) == before
    assert not [p for p in published_root(get_settings()).iterdir() if p.name.endswith(".part")]


def test_a_failure_after_the_switch_is_a_warning_not_a_failed_publish(data_dir, small_warehouse,
                                                                      monkeypatch):
    build = smaller_build(small_warehouse, data_dir / "build" / "warehouse.duckdb", 5)

    def broken_rmtree(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    for drop in (6, 7):  # two more versions, so there is an old one to prune
        publish(get_settings(), smaller_build(small_warehouse, build, drop))
    monkeypatch.setattr("flows.publish.shutil.rmtree", broken_rmtree)
    result = publish(get_settings(), smaller_build(small_warehouse, build, 8))
    assert published_pair(data_dir)[0] == result.version
    assert result.warnings and "could not be pruned" in result.warnings[0]


def test_a_single_file_data_directory_is_migrated_without_a_gap(small_warehouse, tmp_path,
                                                                monkeypatch):
    data = tmp_path / "old-layout"
    (data / "marts").mkdir(parents=True)
    shutil.copyfile(small_warehouse, data / "warehouse.duckdb")
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    for (mart,) in con.execute("select table_name from duckdb_tables() "
                               "where schema_name = 'marts'").fetchall():
        con.execute(f"copy marts.\"{mart}\" to '{data / 'marts' / mart}.parquet'")
    con.close()
    monkeypatch.setenv("BETACELL_DATA_DIR", str(data))
    reset_settings_cache()
    (data / "build").mkdir()
    result = publish(get_settings(), smaller_build(small_warehouse,
                                                   data / "build" / "warehouse.duckdb", 2))
    assert (data / "warehouse.duckdb").is_symlink() and (data / "marts").is_symlink()
    assert published_pair(data)[0] == result.version
    reset_settings_cache()


def test_a_quote_in_the_data_directory_path_does_not_break_sql(tmp_path, monkeypatch):
    from flows.db import connect

    data = tmp_path / "o'brien's data"
    monkeypatch.setenv("BETACELL_DATA_DIR", str(data))
    reset_settings_cache()
    con = connect(data / "build" / "warehouse.duckdb", get_settings())
    try:
        assert con.execute("select current_setting('temp_directory')").fetchone()[0].endswith(
            "o'brien's data/build/duckdb_tmp")
    finally:
        con.close()
        reset_settings_cache()
