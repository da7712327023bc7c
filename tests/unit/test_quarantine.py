"""The mart gate's quarantine (flows/quarantine.py) on small hand-made marts: failing rows are
traced to the records behind them, an untraceable failure is systemic, and the limits hold."""

from __future__ import annotations

import duckdb
import pytest

from flows.errors import GateFailed
from flows.quality import CheckOutcome, GateResult
from flows.quarantine import check_limits, trace_failures
from flows.settings import Settings


def failing(*checks: str) -> GateResult:
    return GateResult("mart", [CheckOutcome(check, "expect_x", "column", "critical", False, 1)
                               for check in checks])


@pytest.fixture
def build(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    con.execute("""
        create schema marts;
        create table marts.fct_adverse_events as select * from (values
            ('registry:NCT01:EG000:infection', 'registry_results', 'NCT01', 'NCT01', 9, 9, 9, 7, null),
            ('registry:NCT02:EG000:infection', 'registry_results', 'NCT02', 'NCT02', 1, 1, 1, 10, 1),
            ('publication:S3:cells:infection', 'publication', 'S3', null, 2, 2, 2, 10, 2)
        ) t(adverse_event_fact_id, source, study_id, trial_id, affected_low, affected_high,
            affected_count, at_risk_count, events_count);
        create table marts.fct_adverse_event_terms as select * from (values
            ('registry:NCT04:serious:1:EG000:1', 'NCT04', 1, 2, 5)  -- fewer events than affected
        ) t(adverse_event_term_id, trial_id, events_count, affected_count, at_risk_count);
        create table marts.safety_signals as select * from (values
            ('msc', 'T1D', 'infection', 10, 10, 10, 27,
             ['registry:NCT01:EG000:infection', 'registry:NCT02:EG000:infection']),
            ('hsc', 'T1D', 'infection', 12, 12, 12, 10,
             ['registry:NCT02:EG000:infection', 'publication:S3:cells:infection'])
        ) t(therapy_class, diabetes_type, harm_category, participants_affected,
            participants_affected_low, participants_affected_high, participants_at_risk,
            adverse_event_fact_ids);
        create table marts.dim_trials as select 'NCT0' || range as trial_id from range(300);
    """)
    con.close()
    return path


def test_a_failing_row_is_traced_to_the_record_that_broke_it(build):
    traced = trace_failures(build, failing("mart_adverse_event_counts"))
    assert set(traced) == {("ctgov", "NCT01"), ("ctgov", "NCT04")}
    assert "affected=9..9, at risk=7" in traced[("ctgov", "NCT01")][0]


def test_a_pooled_row_is_traced_through_its_facts(build):
    """msc: 10 of 27 is fine. hsc: 12 of 10 is not, and none of its facts is broken by
    itself, so every record behind it is named (a registry trial and a sheet study)."""
    traced = trace_failures(build, failing("mart_safety_counts"))
    assert set(traced) == {("ctgov", "NCT02"), ("outcome_sheet", "S3")}


def test_a_failure_that_cannot_be_traced_is_systemic(build):
    with pytest.raises(GateFailed, match="cannot be traced to source records.*systemic"):
        trace_failures(build, failing("mart_orphans"))


def test_more_records_than_allowed_publish_nothing(build, tmp_path):
    settings = Settings(data_dir=tmp_path / "data", max_quarantine=5)
    check_limits(settings, build, {("ctgov", f"NCT1{i}") for i in range(3)})  # 3 of 300 trials
    with pytest.raises(GateFailed, match="4 records would have to be quarantined, more than "
                                         "the 3 allowed"):
        check_limits(settings, build, {("ctgov", f"NCT1{i}") for i in range(4)})  # 1 % of 300
    with pytest.raises(GateFailed, match="BETACELL_MAX_QUARANTINE=2"):
        check_limits(settings.model_copy(update={"max_quarantine": 2}), build,
                     {("ctgov", f"NCT1{i}") for i in range(3)})
