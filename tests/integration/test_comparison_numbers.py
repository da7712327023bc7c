"""The published comparison numbers of the snapshot warehouse: every pooled row against R's
metafor, ids that are real or NULL in every layer, curated trial names resolved, and the follow-up
each fact stands for."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import empty_string_ids, query
from tests.oracle.metafor import disagreements

pytestmark = pytest.mark.integration


def test_no_id_in_any_layer_is_an_empty_string(built_warehouse):
    """An id is NULL or real: '' (from regexp_extract on a curated name such as 'CIT-07') made
    two different trials one cohort."""
    assert empty_string_ids(built_warehouse.warehouse) == []


def test_curated_trial_names_resolve_to_their_registry_ids(built_warehouse):
    """CIT-07 and CIT-06 (seed trial_aliases) are two trials whose results the warehouse holds:
    two cohorts, and neither is overdue."""
    cohorts = query(built_warehouse.warehouse, """
        select distinct study_id, trial_id, cohort_id from marts.outcome_effects
        where study_id in ('HERING2016_CIT07', 'MARKMANN2021_CIT06') order by study_id""")
    assert cohorts == [("HERING2016_CIT07", "NCT00434811", "NCT00434811"),
                       ("MARKMANN2021_CIT06", "NCT00468117", "NCT00468117")]
    reporting = query(built_warehouse.warehouse, """
        select trial_id, has_outcome_rows, is_overdue_12_months, is_overdue_24_months
        from marts.results_reporting where trial_id in ('NCT00434811', 'NCT00468117')
        order by trial_id""")
    assert reporting == [("NCT00434811", True, False, False),
                         ("NCT00468117", True, False, False)]


def test_every_fact_records_the_follow_up_it_stands_for(built_warehouse):
    facts = {(study, definition): rest for study, definition, *rest in query(
        built_warehouse.warehouse, """
        select study_id, definition_as_reported_id, window_id, timepoint_months, followup_basis,
               followup_months, followup_months_min, followup_months_max, duration_months
        from marts.outcome_effects
        where study_id in ('GU2012_AHST_DKA', 'COURI2009_AHST', 'CANTU2016_AHST_FLU')
          and outcome = 'insulin_independence' and population = 'all'""")}
    # Gu 2012's 19.3 months is a mean remission duration, not a follow-up
    assert facts[("GU2012_AHST_DKA", "ii_ever")] == [
        "last_followup", None, "duration", None, 4.0, 42.0, 19.3]
    assert facts[("COURI2009_AHST", "ii_ever")] == [
        "last_followup", 29.8, "mean", 29.8, 7.0, 58.0, None]
    assert facts[("CANTU2016_AHST_FLU", "ii_last_followup")] == [
        "last_followup", 34.0, "median", 34.0, 25.0, 56.0, None]
    misplaced = query(built_warehouse.warehouse, """
        select outcome_fact_id, window_id from marts.outcome_effects
        where followup_basis = 'duration' and window_id is not null
          and window_id <> 'last_followup'""")
    assert misplaced == []


def test_last_follow_up_rows_carry_their_range_of_months(built_warehouse):
    rows = query(built_warehouse.warehouse, """
        select comparison_id, caveats from marts.therapy_outcome_comparison
        where window_id = 'last_followup' and k_cohorts > 0""")
    assert rows
    for comparison_id, caveats in rows:
        assert any(c.startswith("last follow-up:") for c in caveats), comparison_id
    ((caveats,),) = query(built_warehouse.warehouse, """
        select caveats from marts.therapy_outcome_comparison
        where comparison_id = 'all_sources:no_overlaps:any_design:hsc:-:T1D:'
                              || 'insulin_independence:ii_ever:last_followup'""")
    assert "last follow-up: 4 to 58 months" in caveats  # Couri 7-58, Gu 4-42, Li 31-54


def cohort_counts(warehouse: Path) -> dict[str, tuple[dict, list[int], list[int]]]:
    """Each comparison row with the events and participants of its cohorts, recomputed from the
    effects it names (marts.outcome_effects)."""
    columns = ["comparison_id", "k_cohorts", "estimate", "ci_low", "ci_high", "pi_low",
               "pi_high", "tau2", "i2", "estimate_dl", "ci_low_dl", "ci_high_dl", "tau2_dl",
               "estimate_glmm", "ci_low_glmm", "ci_high_glmm", "tau2_glmm", "method"]
    rows = {r[0]: dict(zip(columns, r, strict=True)) for r in query(warehouse, f"""
        select {', '.join(columns)} from marts.therapy_outcome_comparison where k_cohorts > 0""")}
    counts: dict[str, tuple[list[int], list[int]]] = {}
    for comparison_id, _cohort, events, participants in query(warehouse, """
            with used as (
                select comparison_id, unnest(outcome_fact_ids) as outcome_fact_id
                from marts.therapy_outcome_comparison where k_cohorts > 0
            )
            select used.comparison_id, effects.cohort_id, sum(effects.events)::integer,
                   sum(effects.participants)::integer
            from used join marts.outcome_effects effects using (outcome_fact_id)
            group by all order by 1, 2"""):
        counts.setdefault(comparison_id, ([], []))
        counts[comparison_id][0].append(events)
        counts[comparison_id][1].append(participants)
    return {cid: (rows[cid], *counts[cid]) for cid in rows}


def test_every_pooled_row_of_the_snapshot_agrees_with_metafor(built_warehouse, metafor):
    """Every comparison row with a cohort (119 rows on the snapshot, 9 of them pooled), its
    cohorts' counts recomputed from the effects it names, fitted by metafor in one batch:
    estimate, CI, PI, tau2 and I2 (and the DerSimonian-Laird and binomial-normal models beside)
    agree to 1e-6 (tests/oracle/metafor.py: what differs by design and how it is compared)."""
    rows = cohort_counts(built_warehouse.warehouse)
    assert sum(1 for row, events, _ in rows.values() if len(events) >= 2) >= 5
    for row, events, _ in rows.values():
        assert row["k_cohorts"] == len(events), row["comparison_id"]
    answers = metafor.fit({cid: (events, totals) for cid, (_, events, totals) in rows.items()})
    problems = {cid: disagreements(row, events, totals, answers[cid])
                for cid, (row, events, totals) in rows.items()}
    assert {cid: p for cid, p in problems.items() if p} == {}
