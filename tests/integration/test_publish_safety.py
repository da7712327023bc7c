"""Gates, atomic publish, concurrent readers, a killed refresh, idempotency and alerts."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import orjson
import psutil
import pytest

from flows.errors import GateFailed
from flows.pipeline import refresh_warehouse
from flows.settings import REPO_DIR, reset_settings_cache

pytestmark = pytest.mark.integration
READER = Path(__file__).with_name("reader_loop.py")


def inject(snapshot_dir: Path, *records) -> None:
    path = snapshot_dir / "ctgov" / "studies-0001.json"
    doc = orjson.loads(path.read_bytes())
    doc["studies"].extend(records)
    path.write_bytes(orjson.dumps(doc))


def bump_version(snapshot_dir: Path, stamp: str) -> None:
    path = snapshot_dir / "ctgov" / "version.json"
    doc = orjson.loads(path.read_bytes())
    doc["dataTimestamp"] = stamp
    path.write_bytes(orjson.dumps(doc))


def test_bad_record_fails_the_raw_gate_and_publishes_nothing(prefect_harness, settings,
                                                             snapshot_copy):
    refresh_warehouse(source="snapshot")
    before = settings.warehouse_path.read_bytes()
    parquet_before = {p.name: p.read_bytes() for p in settings.marts_dir.glob("*.parquet")}
    inject(snapshot_copy, {"protocolSection": {
        "identificationModule": {"nctId": "NCT09999999", "briefTitle": "bad status"},
        "statusModule": {"overallStatus": "FINISHED",
                         "lastUpdatePostDateStruct": {"date": "2026-05-01"}}}})
    with pytest.raises(GateFailed) as caught:
        refresh_warehouse(source="snapshot", full=True)
    message = str(caught.value)
    assert "raw gate failed" in message and "raw_ctgov_studies" in message
    assert "overall_status" in message and "FINISHED" in message
    assert settings.warehouse_path.read_bytes() == before
    assert {p.name: p.read_bytes() for p in settings.marts_dir.glob("*.parquet")} == parquet_before
    report = json.loads((settings.quality_dir / "raw_gate_latest.json").read_text())
    assert report["passed"] is False
    failure = json.loads((settings.quality_dir / "last_failure.json").read_text())
    assert "raw gate failed" in failure["message"]


def test_a_failing_mart_gate_publishes_nothing(prefect_harness, settings, tmp_path, monkeypatch):
    import flows.quality as quality

    refresh_warehouse(source="snapshot")
    before = settings.warehouse_path.read_bytes()
    gx_copy = tmp_path / "expectations"
    shutil.copytree(quality.GX_ROOT, gx_copy, ignore=shutil.ignore_patterns("uncommitted"))
    monkeypatch.setattr(quality, "GX_ROOT", gx_copy)
    impossible = quality.Check("mart_impossible", "mart",
                               "select count(*) as trials from marts.dim_trials",
                               (quality.Expect("ExpectColumnValuesToBeBetween",
                                               {"column": "trials", "min_value": 0,
                                                "max_value": 1}),))
    monkeypatch.setattr(quality, "MART_CHECKS", quality.MART_CHECKS + (impossible,))
    monkeypatch.setattr(quality, "ALL_CHECKS", quality.RAW_CHECKS + quality.MART_CHECKS)
    with pytest.raises(GateFailed, match=r"mart gate failed.*mart_impossible.*trials"):
        refresh_warehouse(source="snapshot")
    assert settings.warehouse_path.read_bytes() == before


def test_alert_webhook_receives_the_failure(prefect_harness, settings, snapshot_copy, httpserver,
                                            monkeypatch):
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    monkeypatch.setenv("BETACELL_ALERT_WEBHOOK_URL", httpserver.url_for("/hook"))
    reset_settings_cache()
    (snapshot_copy / "ctgov" / "version.json").unlink()
    with pytest.raises(Exception, match="no ClinicalTrials.gov snapshot"):
        refresh_warehouse(source="snapshot")
    (request, _), *_ = httpserver.log
    assert "no ClinicalTrials.gov snapshot" in request.get_json()["text"]


def test_concurrent_reader_never_errors_nor_sees_a_mix(prefect_harness, settings, snapshot_copy,
                                                       tmp_path):
    refresh_warehouse(source="snapshot")
    out, stop = tmp_path / "reader.json", tmp_path / "stop"
    reader = subprocess.Popen([sys.executable, str(READER), str(settings.warehouse_path),
                               str(out), str(stop)])
    try:
        for stamp in ("2026-05-01T09:00:00", "2026-05-02T09:00:00"):
            bump_version(snapshot_copy, stamp)
            refresh_warehouse(source="snapshot", full=True)
        time.sleep(1)  # let the reader see the last publication
    finally:
        stop.touch()
        reader.wait(timeout=120)
    result = json.loads(out.read_text())
    assert result["error_count"] == 0, result["errors"]
    assert result["mixed"] == []
    assert result["reads"] > 20
    assert len(result["versions"]) >= 2  # it saw the newer publication without reopening


def _dbt_build_running(parent: psutil.Process) -> bool:
    for child in parent.children(recursive=True):
        try:
            if any("dbt" in part for part in child.cmdline()) and "build" in child.cmdline():
                return True
        except psutil.Error:
            continue
    return False


def test_refresh_killed_mid_dbt_build_leaves_the_old_version(prefect_harness, settings,
                                                             snapshot_copy):
    refresh_warehouse(source="snapshot")
    before = hashlib.sha256(settings.warehouse_path.read_bytes()).hexdigest()
    bump_version(snapshot_copy, "2026-06-01T09:00:00")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "180"
    process = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "run", "--source", "snapshot", "--full"],
        env=env, cwd=REPO_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    parent = psutil.Process(process.pid)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not _dbt_build_running(parent):
        assert process.poll() is None, "the refresh ended before dbt build started"
        time.sleep(0.2)
    assert _dbt_build_running(parent), "dbt build never started"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)

    assert hashlib.sha256(settings.warehouse_path.read_bytes()).hexdigest() == before
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    assert con.sql("select count(*) from marts.dim_trials").fetchone()[0] > 100
    con.close()
    reset_settings_cache()
    refresh_warehouse(source="snapshot", full=True)  # the lock died with the process
    assert hashlib.sha256(settings.warehouse_path.read_bytes()).hexdigest() != before


TIMESTAMP_TYPES = ("TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "DATE")


def _mart_fingerprints(path: Path) -> dict[str, str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        prints = {}
        for (mart,) in con.execute("select table_name from information_schema.tables where "
                                   "table_schema = 'marts' order by 1").fetchall():
            if mart == "changes_since_last_run":  # by definition about the run, not the data
                continue
            columns = [c for c, t in con.execute(
                "select column_name, data_type from information_schema.columns where "
                "table_schema = 'marts' and table_name = ? order by ordinal_position", [mart]
            ).fetchall() if t not in TIMESTAMP_TYPES and not c.endswith("run_id")]
            rows = con.execute(f"select {', '.join(columns)} from marts.{mart} "
                               f"order by all").fetchall()
            prints[mart] = hashlib.sha256(repr(rows).encode()).hexdigest()
        return prints
    finally:
        con.close()


def test_same_inputs_twice_give_identical_marts(prefect_harness, settings):
    refresh_warehouse(source="snapshot")
    first = _mart_fingerprints(settings.warehouse_path)
    refresh_warehouse(source="snapshot", full=True)
    second = _mart_fingerprints(settings.warehouse_path)
    assert first == second
    assert len(first) >= 10
