"""Gates, atomic publish, concurrent readers, a killed refresh, idempotency and alerts."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from flows.errors import GateFailed
from flows.publish import prepare_build_database, publish
from flows.refresh import refresh_warehouse
from flows.runlock import refresh_lock
from flows.settings import reset_settings_cache
from flows.stages import gate_marts
from tests.conftest import edit_one_sheet_value, inject_studies
from tests.helpers import start_refresh_until_dbt_builds

pytestmark = pytest.mark.integration
READER = Path(__file__).with_name("reader_loop.py")


def published_state(settings) -> tuple[bytes, dict[str, bytes]]:
    return (settings.warehouse_path.read_bytes(),
            {p.name: p.read_bytes() for p in settings.marts_dir.glob("*.parquet")})


def test_bad_record_fails_the_raw_gate_and_publishes_nothing(published_copy):
    settings = published_copy
    before = published_state(settings)
    inject_studies(settings.snapshot_path, {"protocolSection": {
        "identificationModule": {"nctId": "NCT09999999", "briefTitle": "bad status"},
        "statusModule": {"overallStatus": "FINISHED",
                         "lastUpdatePostDateStruct": {"date": "2026-05-01"}}}})
    with pytest.raises(GateFailed) as caught:
        refresh_warehouse(source="snapshot", full=True)
    message = str(caught.value)
    assert "raw gate failed" in message and "raw_ctgov_studies" in message
    assert "overall_status" in message and "FINISHED" in message
    assert published_state(settings) == before
    report = json.loads((settings.quality_dir / "raw_gate_latest.json").read_text())
    assert report["passed"] is False
    failure = json.loads((settings.quality_dir / "last_failure.json").read_text())
    assert "raw gate failed" in failure["message"]


def test_a_failing_mart_gate_stops_before_publish(published_copy, tmp_path, monkeypatch):
    """The mart gate, called on a build copy as the flow calls it, fails naming the check; the
    flow publishes only after it returns (the raw-gate test above runs that path end to end)."""
    import shutil

    import flows.quality as quality

    settings = published_copy
    before = published_state(settings)
    gx_copy = tmp_path / "expectations"
    shutil.copytree(quality.GX_ROOT, gx_copy)
    monkeypatch.setattr(quality, "GX_ROOT", gx_copy)
    impossible = quality.Check("mart_impossible", "mart",
                               "select count(*) as trials from marts.dim_trials",
                               (quality.Expect("ExpectColumnValuesToBeBetween",
                                               {"column": "trials", "min_value": 0,
                                                "max_value": 1}),))
    monkeypatch.setattr(quality, "MART_CHECKS", quality.MART_CHECKS + (impossible,))
    monkeypatch.setattr(quality, "ALL_CHECKS", quality.RAW_CHECKS + quality.MART_CHECKS)
    build = prepare_build_database(settings)
    with pytest.raises(GateFailed, match=r"mart gate failed.*mart_impossible.*trials"):
        gate_marts(settings, build)
    report = json.loads((settings.quality_dir / "mart_gate_latest.json").read_text())
    assert report["passed"] is False
    assert [f["check"] for f in report["critical_failures"]] == ["mart_impossible"]
    assert published_state(settings) == before


def test_alert_webhook_receives_the_failure(pipeline_settings, snapshot_copy, httpserver,
                                            monkeypatch):
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    monkeypatch.setenv("BETACELL_ALERT_WEBHOOK_URL", httpserver.url_for("/hook"))
    reset_settings_cache()
    (snapshot_copy / "ctgov" / "version.json").unlink()
    with pytest.raises(Exception, match="no ClinicalTrials.gov snapshot"):
        refresh_warehouse(source="snapshot")
    (request, _), *_ = httpserver.log
    assert "no ClinicalTrials.gov snapshot" in request.get_json()["text"]


def _republish_smaller(settings, drop: int) -> None:
    """A new version as the flow makes one: a build copy, changed, then published."""
    build = prepare_build_database(settings)
    con = duckdb.connect(str(build))
    con.execute("delete from marts.dim_trials where trial_id in "
                "(select trial_id from marts.dim_trials order by trial_id limit ?)", [drop])
    con.close()
    publish(settings, build)


def test_concurrent_reader_never_errors_nor_sees_a_mix(published_copy, tmp_path):
    settings = published_copy
    out, stop = tmp_path / "reader.json", tmp_path / "stop"
    reader = subprocess.Popen([sys.executable, str(READER), str(settings.warehouse_path),
                               str(out), str(stop)])
    try:
        time.sleep(1)
        for drop in (3, 7, 11, 13):
            _republish_smaller(settings, drop)
            time.sleep(0.5)
    finally:
        stop.touch()
        reader.wait(timeout=120)
    result = json.loads(out.read_text())
    assert result["error_count"] == 0, result["errors"]
    assert result["mixed"] == []
    assert result["reads"] > 20
    assert len(result["versions"]) >= 3  # it saw newer publications without reopening


def test_refresh_killed_mid_dbt_build_leaves_the_old_version(published_copy, prefect_api):
    """One sheet value changed, so the run gets to dbt at once; killed (its whole process group)
    once dbt has started a few models, i.e. in the middle of a dbt step."""
    settings = published_copy
    before = hashlib.sha256(settings.warehouse_path.read_bytes()).hexdigest()
    edit_one_sheet_value(settings.outcomes_path)
    process, dbt = start_refresh_until_dbt_builds(full=False, prefect_api_url=prefect_api.url,
                                                  nodes_started=5)
    assert dbt.is_running(), "dbt ended before the kill: nothing was killed mid-build"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)

    assert hashlib.sha256(settings.warehouse_path.read_bytes()).hexdigest() == before
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    assert con.sql("select count(*) from marts.dim_trials").fetchone()[0] > 100
    con.close()
    with refresh_lock(settings):  # the lock died with the process: a new run can start at once
        assert prepare_build_database(settings).exists()


TIMESTAMP_TYPES = ("TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "DATE")
RUN_STATE_MARTS = {"changes_since_last_run", "source_status", "rejected_records"}
# columns that say what a run did, not what the data are: a rerun does not ask the registry
# again for an id it did not know a minute ago, and says so in the reason
RUN_STATE_COLUMNS = {("unresolved_references", "unresolved_reason")}


def _mart_fingerprints(path: Path) -> dict[str, str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        prints = {}
        for (mart,) in con.execute("select table_name from information_schema.tables where "
                                   "table_schema = 'marts' order by 1").fetchall():
            if mart in RUN_STATE_MARTS:  # by definition about the run, not the data
                continue
            columns = [c for c, t in con.execute(
                "select column_name, data_type from information_schema.columns where "
                "table_schema = 'marts' and table_name = ? order by ordinal_position", [mart]
            ).fetchall() if t not in TIMESTAMP_TYPES and not c.endswith("run_id")
                and (mart, c) not in RUN_STATE_COLUMNS]
            rows = con.execute(f"select {', '.join(columns)} from marts.{mart} "
                               f"order by all").fetchall()
            prints[mart] = hashlib.sha256(repr(rows).encode()).hexdigest()
        return prints
    finally:
        con.close()


def _loaded_again(warehouse, summary: dict) -> str:
    """What a rerun of the same inputs loaded, beside the versions already there (to name the
    record when this intermittent failure comes back)."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute(
            """select nct_id, run_id, last_update_post_date, source_file, source_line,
                      payload_md5, fetched_at
               from raw.ctgov_studies where nct_id in (
                   select nct_id from raw.ctgov_studies where run_id = ?)
               order by nct_id, fetched_at""", [summary.get("run_id")]).fetchall()
    finally:
        con.close()
    return (f"run {summary.get('run_id')} loaded {summary.get('records_loaded')}; versions of "
            f"those studies in raw: {rows}; sources: {summary.get('sources')}")


def test_same_inputs_twice_give_identical_marts(built_warehouse, published_copy):
    """Why over 30 s: every source landed and loaded again and every model rebuilt (--full)."""
    first = _mart_fingerprints(built_warehouse.warehouse)
    summary = refresh_warehouse(source="snapshot", full=True)  # lands and loads everything again
    assert summary["records_landed"] > 150 and summary["records_loaded"] == 0, \
        _loaded_again(published_copy.warehouse_path, summary)
    second = _mart_fingerprints(published_copy.warehouse_path)
    assert first == second
    assert len(first) >= 10
