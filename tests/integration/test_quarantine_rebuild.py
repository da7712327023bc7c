"""The mart gate's last line of defence, end to end on a real warehouse: a failing mart row is
traced to its registry record, the record is quarantined (raw.quarantine_requests), the models
downstream of the requests are rebuilt by dbt without it, the gate runs again and passes.

The record checks (int_quarantined_records) catch the impossible records we know of before the
gate; this test breaks a published row of the session warehouse behind their back, so that only
the gate can see it, as a defect the checks do not know would."""

from __future__ import annotations

import shutil

import duckdb
import pytest

from flows.quality import run_gate
from flows.quarantine import gate_marts_with_quarantine, quarantined_in
from flows.report import RefreshSummary

pytestmark = pytest.mark.integration


def query(path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def build_with_one_impossible_row(settings) -> tuple:
    """A build copy of the published warehouse where one registry adverse-event row counts more
    participants affected than at risk."""
    build = settings.build_database
    build.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(settings.warehouse_path.resolve(), build)
    con = duckdb.connect(str(build))
    try:
        fact_id, trial_id = con.execute(
            "select adverse_event_fact_id, trial_id from marts.fct_adverse_events "
            "where source = 'registry_results' and at_risk_count > 0 "
            "order by adverse_event_fact_id limit 1").fetchone()
        con.execute("update marts.fct_adverse_events set affected_low = at_risk_count + 1, "
                    "affected_high = at_risk_count + 1 where adverse_event_fact_id = ?",
                    [fact_id])
    finally:
        con.close()
    return build, trial_id


def test_a_gate_failure_quarantines_its_record_rebuilds_and_passes(published_copy):
    """(> 30 s: three real mart gates and a dbt rebuild of what follows the quarantine requests,
    on a copy of the session warehouse)"""
    settings = published_copy
    build, trial_id = build_with_one_impossible_row(settings)
    assert run_gate(settings, build, "mart").critical_failures  # the gate sees the broken row

    summary = RefreshSummary(source="snapshot", refresh_id="test-quarantine-rebuild")
    result = gate_marts_with_quarantine(settings, build, summary)

    assert not result.critical_failures
    quarantined = {(q.source, q.record_id, q.detected_by) for q in quarantined_in(build)}
    assert quarantined == {("ctgov", trial_id, "mart_gate")}
    assert query(build, "select distinct source, record_id from raw.quarantine_requests") == [
        ("ctgov", trial_id)]
    for table in ("fct_adverse_events", "fct_adverse_event_terms", "fct_outcomes"):
        assert query(build, f"select count(*) from marts.{table} where trial_id = ?",
                     [trial_id]) == [(0,)], table
    assert query(build, "select count(*) from marts.dim_trials where trial_id = ?",
                 [trial_id]) == [(1,)]  # the trial stays; its results are set aside
    assert any("quarantined" in w and trial_id in w for w in summary.warnings), summary.warnings
