"""Evidence traps: a warehouse built (once per session) from fixture sheets of invented studies,
one per way a pooled number goes wrong, each checked on the published marts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from filelock import FileLock

from tests.helpers import empty_string_ids, query

pytestmark = pytest.mark.integration
TRAPS = Path(__file__).parents[1] / "fixtures" / "evidence_traps"
DEFAULT = "not verified_only and not include_overlapping and not randomised_only"


@pytest.fixture(scope="session")
def traps(tmp_path_factory, prefect_harness, dbt_parse_state):
    from tests.conftest import session_dir

    root = session_dir(tmp_path_factory, "traps")
    done = root / "summary.json"
    with FileLock(f"{root}.lock"):
        if not done.exists():
            done.write_text(json.dumps(build_traps(root, dbt_parse_state), default=str))
    return {"warehouse": root / "data" / "warehouse.duckdb",
            "summary": json.loads(done.read_text())}


def build_traps(root: Path, dbt_parse_state: Path) -> dict:
    from flows.refresh import refresh_warehouse
    from flows.settings import reset_settings_cache
    from tests.conftest import point_at, seed_parse_state

    sheets, snapshot = root / "sheets", root / "snapshot"
    sheets.mkdir(parents=True)
    snapshot.mkdir()
    for sheet in TRAPS.glob("*.csv"):
        shutil.copy(sheet, sheets / sheet.name)
    seed_parse_state(root / "data", dbt_parse_state)
    patch = pytest.MonkeyPatch()
    try:
        point_at(patch, root / "data", snapshot, sheets)
        return refresh_warehouse(source="snapshot")
    finally:
        patch.undo()
        reset_settings_cache()


def comparison(traps, where: str) -> list[tuple]:
    return query(traps["warehouse"], f"""
        select therapy_class, diabetes_type, definition_id, window_id, k_cohorts, n_events,
               n_participants, estimate, ci_low, ci_high, caveats, study_ids, method,
               reports_set_aside
        from marts.therapy_outcome_comparison where {DEFAULT} and {where}
        order by diabetes_type""")


def test_graft_failure_is_pooled_as_its_complement_not_as_survival(traps):
    ((_, _, definition, window, k, events, n, estimate, *_rest, caveats, studies, _, _),) = \
        comparison(traps, "outcome = 'graft_survival'")
    assert (definition, window, k, events, n) == ("graft_function", "m6_18", 2, 31, 40)
    assert 0.7 < estimate < 0.85  # a survival figure, not 0.2 failure pooled with 0.75
    assert "includes counts converted from the complementary definition" in caveats


def test_two_reports_of_one_cohort_count_once(traps):
    ((*_, k, events, n, _, _, _, caveats, studies, _, set_aside),) = comparison(
        traps, "therapy_class = 'hsc'")
    assert (k, events, n) == (2, 19, 30)
    assert studies == ["TRAP_COHORT_LATER", "TRAP_HSC_OTHER"]
    assert set_aside == ["TRAP_COHORT_EARLY"]


def test_zero_of_n_and_n_of_n_show_the_raw_proportion_with_an_exact_interval(traps):
    ((*_, estimate, low, high, caveats, _, method, _),) = comparison(
        traps, "therapy_class = 'cord_blood'")
    assert (estimate, low) == (0.0, 0.0) and high == pytest.approx(0.3694, abs=1e-4)
    ((*_, estimate, low, high, _, _, _, _),) = comparison(
        traps, "therapy_class = 'stem_cell_educator'")
    assert (estimate, high) == (1.0, 1.0) and low == pytest.approx(0.5407, abs=1e-4)
    ((*_, k, _, _, estimate, _, _, _, _, method, _),) = comparison(
        traps, "therapy_class = 'esc_derived_islets'")
    assert k == 2 and "0.5 continuity correction" in method and 0.1 < estimate < 0.9


def test_a_proportion_without_a_count_is_derived_and_flagged(traps):
    ((*_, k, events, n, estimate, _, _, caveats, _, _, _),) = comparison(
        traps, "therapy_class = 'bm_mononuclear'")
    assert (k, events, n, estimate) == (1, 8, 20, 0.4)
    assert "includes counts derived from a proportion and its n" in caveats
    harms = {h: r for h, *r in query(traps["warehouse"], """
        select harm_category, cohorts_with_count, cohorts_without_count, participants_affected,
               participants_at_risk, includes_derived_counts, is_not_reported
        from marts.safety_signals where therapy_class = 'bm_mononuclear'""")}
    assert harms["any_serious_adverse_event"] == [1, 0, 5, 20, True, False]
    assert harms["death"] == [0, 1, None, None, False, True]  # a percentage without n: counted


def test_type_1_and_type_2_diabetes_are_never_pooled_together(traps):
    rows = comparison(traps, "therapy_class = 'msc' and msc_source = 'bone_marrow'")
    assert [(r[1], r[4], r[5], r[6]) for r in rows] == [("T1D", 1, 3, 10), ("T2D", 1, 6, 10)]


def test_dose_arms_of_one_cohort_are_one_effect(traps):
    ((*_, k, events, n, _, _, _, caveats, _, _, _),) = comparison(
        traps, "therapy_class = 'ipsc_derived_islets'")
    assert (k, events, n) == (1, 6, 11) and "arms of one cohort combined" in caveats


def test_duplicate_timepoints_reject_their_sheet_naming_both_rows(traps):
    sheets = {s["sheet"]: s for s in traps["summary"]["outcome_sheets"]}
    rejected = sheets["duplicate_timepoints.csv"]
    assert rejected["status"] == "rejected"
    assert "row 3 column value: conflicts with row 2" in rejected["message"]
    assert sheets["traps.csv"]["status"] == "accepted"
    assert query(traps["warehouse"], "select count(*) from marts.fct_outcomes "
                                     "where study_id = 'TRAP_DUPLICATE'") == [(0,)]
    assert traps["summary"]["stale_sources"] == ["outcomes"]


def test_every_cohort_at_zero_events_is_summed_with_an_exact_interval(traps):
    """0/10, 0/12, 0/8 was published as 0.046 (0.029-0.072) from continuity-corrected logits: an
    interval that excludes what was observed."""
    ((*_, k, events, n, estimate, low, high, caveats, _, method, _),) = comparison(
        traps, "therapy_class = 'msc_exosomes'")
    assert (k, events, n, estimate, low) == (3, 0, 30, 0.0, 0.0)
    assert high == pytest.approx(1 - 0.025 ** (1 / 30), abs=1e-12)
    assert "summed counts with the Clopper-Pearson exact 95 % CI" in method
    assert "every cohort has 0 events: no between-cohort variation can be estimated" in caveats


def test_cohorts_at_zero_events_among_others_use_the_binomial_normal_model(traps):
    ((*_, k, events, n, estimate, low, high, _, _, method, _),) = comparison(
        traps, "therapy_class = 'msc' and msc_source = 'placenta_amnion'")
    assert (k, events, n) == (3, 1, 30)
    assert "binomial-normal random-effects model" in method
    assert low <= 1 / 30 <= high and estimate == pytest.approx(1 / 30, abs=1e-6)


def test_hksj_never_narrower_than_dersimonian_laird(traps):
    """A homogeneous set (25, 26, 24, 25, 26 of 100) has q < 1: Knapp-Hartung's ad hoc rule."""
    ((low, high, low_dl, high_dl, method, caveats),) = query(traps["warehouse"], f"""
        select ci_low, ci_high, ci_low_dl, ci_high_dl, method, caveats
        from marts.therapy_outcome_comparison
        where {DEFAULT} and therapy_class = 'msc' and msc_source = 'umbilical_cord'""")
    assert low <= low_dl and high >= high_dl
    assert "Knapp-Hartung's ad hoc max(1, q)" in method
    assert "HKSJ scale q below 1 raised to 1 (Knapp-Hartung ad hoc rule)" in caveats


def test_follow_up_that_differs_between_patients_is_last_follow_up_and_a_duration_no_window(traps):
    rows = comparison(traps, "therapy_class = 'msc' and msc_source = 'adipose'")
    assert [(r[3], r[4], r[5], r[6]) for r in rows] == [("last_followup", 2, 10, 19)]
    assert "last follow-up: 6 to 48 months" in rows[0][10]
    ((window, basis, timepoint, duration, low, high, reason),) = query(traps["warehouse"], """
        select window_id, followup_basis, timepoint_months, duration_months, followup_months_min,
               followup_months_max, not_poolable_reason
        from marts.outcome_effects where study_id = 'TRAP_FU_DURATION'""")
    assert (window, basis, timepoint, duration, low, high) == (None, "duration", None, 19.3, 4.0,
                                                               42.0)
    assert reason == "the months reported are a duration (time in a state), not a follow-up time"


def test_a_curated_name_that_is_not_a_registry_id_is_null_never_empty(traps):
    assert query(traps["warehouse"], """select distinct trial_id, cohort_id from marts.fct_outcomes
        where study_id = 'TRAP_UNREGISTERED'""") == [(None, "study:TRAP_UNREGISTERED")]
    assert empty_string_ids(traps["warehouse"]) == []
