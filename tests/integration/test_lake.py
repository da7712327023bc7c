"""The DuckLake publishing target, against a real PostgreSQL catalog and a real S3 endpoint
(both started by the fixtures in ``conftest.py``): the refresh flow publishes one snapshot that
another process reads; time travel; a failed run commits nothing; concurrent writers; a writer
killed mid-commit; BI through duckdb-engine; and the one-machine file catalog.

One refresh per session publishes into the session's lake (``published_lake``: run by a process
worker, see test_workers.py); the tests that read (the second process, time travel, BI) share it. Only the tests about writing (a failed run,
concurrent writers, a killed writer) write, each into a fresh lake of its own (``lake_env``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from sqlalchemy import inspect, text

from flows import lake
from flows.errors import GateFailed
from flows.settings import REPO_DIR, get_settings, reset_settings_cache
from tests.conftest import inject_studies
from tests.helpers import query

pytestmark = pytest.mark.integration  # one xdist worker runs them all (tests/conftest.py)
WRITER = Path(__file__).with_name("lake_writer.py")


def lake_cli(*args: str) -> list:
    """``python -m flows.lake ...`` in a second process (settings from the environment)."""
    done = subprocess.run([sys.executable, "-m", "flows.lake", *args], cwd=REPO_DIR,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def warehouse_counts(path: Path, schema: str = "marts") -> dict[str, int]:
    names = query(path, "select table_name from duckdb_tables() where schema_name = ? "
                        "order by 1", [schema])
    return {f"{schema}.{n}": query(path, f'select count(*) from {schema}."{n}"')[0][0]
            for (n,) in names}


def assert_complete(con: duckdb.DuckDBPyConnection) -> dict:
    """The lake's current snapshot holds exactly what its commit says it published."""
    extra = con.execute("select commit_extra_info from lake.snapshots() "
                        "where commit_extra_info is not null "
                        "order by snapshot_id desc limit 1").fetchone()[0]
    info = json.loads(extra)
    for name, rows in info["tables"].items():
        schema, table = name.split(".")
        assert con.execute(f'select count(*) from lake.{schema}."{table}"').fetchone()[0] == rows
    return info


def small_warehouse(path: Path, generation: str, rows: int = 1000) -> Path:
    """A stand-in published warehouse (the same shape: marts.* tables and a view)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    con.execute("create schema marts")
    con.execute(f"create table marts.dim_trials as select range as trial_id, "
                f"'{generation}' as generation from range({rows})")
    for i in range(5):
        con.execute(f"create table marts.mart_{i} as select {i} as i, '{generation}' as generation")
    con.close()
    return path


# --- The real flow: one refresh published into the session's lake --------------------------

def test_refresh_publishes_one_snapshot_that_another_process_reads(published_lake):
    """The session lake's refresh (``published_lake``, run by a process worker): one run, one
    snapshot, the single file published too, and a second process reads what the file holds."""
    from flows.publish import published_version

    run_id = published_lake.flow_run["flow_run_id"]
    assert published_version(get_settings()) != published_lake.version_before  # file published

    snaps = lake_cli("snapshots")
    runs = [s for s in snaps if s["run_id"] == run_id]
    assert len(runs) == 1, snaps  # one run = one snapshot
    run = runs[0]
    assert run == snaps[-1] and run["snapshot_id"] > published_lake.earlier_snapshot_id
    assert run["author"] == "betacell" and run_id in run["message"]
    marts = warehouse_counts(published_lake.warehouse)
    assert marts and "marts.dim_trials" in marts
    assert {k: v for k, v in run["tables"].items() if k.startswith("marts.")} == marts
    assert any(k.startswith("raw.") for k in run["tables"])
    assert any(k.startswith("staging.") for k in run["tables"])

    # a second process, read-only, sees the same names and rows as the single file
    (rows,) = lake_cli("sql", "select count(*) from marts.dim_trials")
    assert rows == [marts["marts.dim_trials"]]
    lake_marts = lake_cli("sql", "select table_name from duckdb_tables() where "
                                 "database_name = 'lake' and schema_name = 'marts' order by 1")
    assert [r[0] for r in lake_marts] == [k.split(".")[1] for k in sorted(marts)]
    keys = published_lake.lake.s3.list_keys(published_lake.lake.bucket)
    assert any(k.startswith("betacell/marts/dim_trials/") and k.endswith(".parquet") for k in keys)


def test_a_failed_run_commits_nothing_to_the_lake(published_copy, lake_env):
    from flows.refresh import refresh_warehouse

    settings = get_settings()
    first = lake.publish_to_lake(settings, settings.warehouse_path, "earlier-run")
    inject_studies(settings.snapshot_path, {"protocolSection": {
        "identificationModule": {"nctId": "NCT09999999", "briefTitle": "bad status"},
        "statusModule": {"overallStatus": "FINISHED",
                         "lastUpdatePostDateStruct": {"date": "2026-05-01"}}}})
    with pytest.raises(GateFailed):
        refresh_warehouse(source="snapshot", full=True)
    snaps = lake.snapshots(settings)
    assert snaps[-1]["snapshot_id"] == first.snapshot_id
    assert snaps[-1]["run_id"] == "earlier-run"


# --- Time travel and BI on the session's lake (read-only) -------------------------------------

def test_time_travel_to_the_previous_run(published_lake):
    settings = get_settings()
    full = query(published_lake.warehouse, "select count(*) from marts.dim_trials")[0][0]
    earlier = published_lake.earlier_snapshot_id
    reader = lake.connect(settings)
    try:
        assert reader.execute("select count(*) from marts.dim_trials").fetchone()[0] == full
        assert reader.execute(f"select count(*) from marts.dim_trials "
                              f"AT (VERSION => {earlier})").fetchone()[0] == full - 3
        assert_complete(reader)
    finally:
        reader.close()
    pinned = lake.connect(settings, snapshot_version=earlier)
    try:
        assert pinned.execute("select count(*) from marts.dim_trials").fetchone()[0] == full - 3
    finally:
        pinned.close()
    (rows,) = lake_cli("sql", "select count(*) from marts.dim_trials", "--version", str(earlier))
    assert rows == [full - 3]


def test_bi_through_duckdb_engine(published_lake):
    settings = get_settings()
    expected = query(published_lake.warehouse,
                     "select therapy_class, count(*) from marts.dim_trials group by 1 order by 1")
    engine = lake.bi_engine(settings)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("select therapy_class, count(*) from marts.dim_trials "
                                     "group by 1 order by 1")).fetchall()
            assert [tuple(r) for r in rows] == expected
            with pytest.raises(Exception, match="read-only"):
                conn.execute(text("create table marts.nope as select 1 as x"))
        inspector = inspect(engine)
        assert "dim_trials" in inspector.get_table_names(schema="lake.marts")
        columns = [c["name"] for c in inspector.get_columns("dim_trials", schema="lake.marts")]
        published = query(published_lake.warehouse,
                          "select column_name from information_schema.columns where "
                          "table_schema = 'marts' and table_name = 'dim_trials' "
                          "order by ordinal_position")
        assert columns == [c for (c,) in published]
    finally:
        engine.dispose()


# --- Concurrent writers and a killed writer (stand-in warehouse, real servers) ----------------

def start_writer(warehouse: Path, run_id: str, mode: str, barrier: Path | None = None,
                 attempts: int | None = None) -> subprocess.Popen:
    env = dict(os.environ)
    if attempts is not None:
        env["BETACELL_LAKE_PUBLISH_ATTEMPTS"] = str(attempts)
    args = [sys.executable, str(WRITER), str(warehouse), run_id, mode]
    if barrier is not None:
        args.append(str(barrier))
    return subprocess.Popen(args, cwd=REPO_DIR, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=180)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    assert lines, f"writer printed nothing; stderr:\n{err[-3000:]}"
    return json.loads(lines[-1])


@pytest.mark.pipeline  # slow: writer processes (make test-fast deselects it)
@pytest.mark.parametrize("attempts", [5, 1], ids=["with-retry", "no-retry"])
def test_two_writers_at_once_never_corrupt_the_lake(lake_env, tmp_path, attempts):
    settings = get_settings()
    lake.publish_to_lake(settings, small_warehouse(tmp_path / "g0" / "warehouse.duckdb", "g0"),
                         "g0")
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    writers = [start_writer(small_warehouse(tmp_path / g / "warehouse.duckdb", g, rows), g,
                            "barrier", barrier, attempts)
               for g, rows in (("a", 1500), ("b", 2500))]
    results = {r["run_id"]: r for r in (finish(w) for w in writers)}
    won = [r for r in results.values() if r["ok"]]
    if attempts > 1:  # the later COMMIT conflicts, redoes its transaction, and commits
        assert len(won) == 2, results
        assert sorted(r["attempts"] for r in won)[-1] > 1, results
    else:  # it fails cleanly, saying so, and the lake keeps the winner's snapshot
        assert len(won) == 1, results
        (lost,) = [r for r in results.values() if not r["ok"]]
        assert "did not commit" in lost["error"] and "conflict" in lost["error"].lower()
    reader = lake.connect(settings)
    try:
        info = assert_complete(reader)
        generations = reader.execute(
            "select distinct generation from (select generation from marts.dim_trials union all "
            "select generation from marts.mart_0 union all select generation from marts.mart_4)"
        ).fetchall()
        assert generations == [(info["run_id"],)]  # one run's tables, never a mix
    finally:
        reader.close()
    assert len([s for s in lake.snapshots(settings) if s["run_id"]]) == 1 + len(won)


@pytest.mark.pipeline  # slow: writer processes
def test_a_writer_killed_mid_commit_leaves_the_last_snapshot_readable(lake_env, tmp_path):
    settings = get_settings()
    good = lake.publish_to_lake(
        settings, small_warehouse(tmp_path / "good" / "warehouse.duckdb", "good"), "good")
    big = small_warehouse(tmp_path / "big" / "warehouse.duckdb", "killed", rows=2_000_000)

    for mode, marker in (("hang", "ready"), ("commit", "committing")):
        writer = start_writer(big, f"killed-{mode}", mode)
        assert writer.stdout.readline().strip() == marker, writer.stderr.read()[-3000:]
        writer.send_signal(signal.SIGKILL)
        writer.communicate(timeout=60)
        reader = lake.connect(settings)
        try:
            info = assert_complete(reader)  # whatever version is current is whole
            current = reader.execute("select distinct generation from marts.dim_trials").fetchall()
            if mode == "hang":  # killed before COMMIT: the previous run, untouched
                assert info["run_id"] == "good" and current == [("good",)]
            else:  # killed during COMMIT: the previous run or the new one, never a mix
                assert current in ([("good",)], [("killed",)])
        finally:
            reader.close()

    after = lake.publish_to_lake(settings, tmp_path / "good" / "warehouse.duckdb", "after")
    assert after.snapshot_id > good.snapshot_id
    reader = lake.connect(settings)
    try:
        assert assert_complete(reader)["run_id"] == "after"
    finally:
        reader.close()


# --- One machine: a file catalog and a local directory, no servers -----------------------------

def test_file_catalog_on_one_machine(tmp_path, monkeypatch):
    monkeypatch.setenv("BETACELL_LAKE_CATALOG", str(tmp_path / "lake" / "catalog.ducklake"))
    monkeypatch.setenv("BETACELL_LAKE_DATA_PATH", str(tmp_path / "lake" / "files"))
    (tmp_path / "lake").mkdir()
    reset_settings_cache()
    try:
        settings = get_settings()
        one = lake.publish_to_lake(settings, small_warehouse(tmp_path / "1" / "warehouse.duckdb",
                                                             "one"), "one")
        warehouse = small_warehouse(tmp_path / "2" / "warehouse.duckdb", "two", rows=10)
        con = duckdb.connect(str(warehouse))
        con.execute("drop table marts.mart_4")
        con.close()
        two = lake.publish_to_lake(settings, warehouse, "two")
        assert two.dropped == ["marts.mart_4"]
        reader = lake.connect(settings)
        try:
            assert reader.execute("select count(*) from marts.dim_trials").fetchone()[0] == 10
            assert reader.execute(f"select count(*) from marts.dim_trials "
                                  f"AT (VERSION => {one.snapshot_id})").fetchone()[0] == 1000
            assert_complete(reader)
        finally:
            reader.close()
        assert list((tmp_path / "lake" / "files" / "marts").glob("*/*.parquet"))
    finally:
        reset_settings_cache()


def test_lake_settings_are_checked_first(tmp_path, monkeypatch):
    monkeypatch.setenv("BETACELL_LAKE_CATALOG", str(tmp_path / "x.ducklake"))
    monkeypatch.setenv("BETACELL_LAKE_INCLUDE", "raw,secrets")
    reset_settings_cache()
    try:
        with pytest.raises(lake.LakeError, match="unknown schema"):
            lake.check(get_settings())
        monkeypatch.setenv("BETACELL_LAKE_INCLUDE", "raw")
        monkeypatch.setenv("BETACELL_LAKE_DATA_PATH", "s3://bucket/prefix")
        reset_settings_cache()
        with pytest.raises(lake.LakeError, match="BETACELL_S3"):
            lake.check(get_settings())
    finally:
        reset_settings_cache()
