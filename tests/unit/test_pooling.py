"""The pooling rules (flows/evidence/pooling.py, behind int_pooled_outcomes) on hand-computable
inputs, checked against independent computations (scipy's beta quantiles, the Paule-Mandel
equation and the HKSJ and prediction-interval formulas written out here). The comparison with
R's metafor is in test_pooling_metafor.py."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import optimize, stats

from flows.evidence import pooling, random_effects


def expit(x):
    return 1 / (1 + math.exp(-x))


def effect_rows(*rows, **common):
    """Rows shaped like int_outcome_effects (what pooling reads), all poolable."""
    base = {"therapy_class": "hsc", "msc_source": None, "diabetes_type": "T1D",
            "outcome": "insulin_independence", "definition_id": "ii_at_timepoint",
            "window_id": "m6_18", "arm": "cells", "timepoint_months": 12.0,
            "timepoint_text": "12", "followup_months_min": 12.0, "followup_months_max": 12.0,
            "publication_year": 2020, "verification_status": "yes", "is_randomised": False,
            "is_count_derived": False, "is_complement_converted": False,
            "is_set_aside_overlap": False, "is_poolable": True, **common}
    return pd.DataFrame([{**base, "outcome_fact_id": f"f{i}", **row}
                         for i, row in enumerate(rows)])


def cohorts(events, totals, **common):
    return effect_rows(*[{"cohort_id": f"C{i}", "study_id": f"S{i}", "events": e,
                          "participants": n}
                         for i, (e, n) in enumerate(zip(events, totals, strict=True))], **common)


def pool(frame: pd.DataFrame) -> dict:
    """The row of the default scenario (all sources, overlaps set aside, any design)."""
    out = pooling.pooled_outcomes(frame)
    default = out[~out["verified_only"] & ~out["include_overlapping"] & ~out["randomised_only"]]
    assert len(default) == 1, default
    return {k: (None if not isinstance(v, list | np.ndarray) and pd.isna(v) else v)
            for k, v in default.iloc[0].to_dict().items()}


def paule_mandel(effect, variance):
    k = len(effect)

    def q_minus_df(tau2):
        w = 1 / (variance + tau2)
        mu = np.sum(w * effect) / np.sum(w)
        return np.sum(w * (effect - mu) ** 2) - (k - 1)

    return 0.0 if q_minus_df(0) <= 0 else optimize.brentq(q_minus_df, 0, 100, xtol=1e-14)


def test_a_single_cohort_is_its_raw_proportion_with_an_exact_interval():
    row = pool(cohorts([3], [3]))
    assert row["estimate"] == 1.0 and row["k_cohorts"] == 1  # not 0.80 continuity-corrected
    assert row["ci_low"] == pytest.approx(stats.beta.ppf(0.025, 3, 1), abs=1e-12)
    assert row["ci_high"] == 1.0
    assert "single cohort" in row["caveats"] and "Clopper-Pearson" in row["method"]


def test_several_cohorts_get_paule_mandel_hksj_and_a_prediction_interval():
    events, totals = [12, 15, 3, 7], [23, 28, 13, 16]
    row = pool(cohorts(events, totals))
    effect = np.log(np.array(events) / (np.array(totals) - np.array(events)))
    variance = 1 / np.array(events) + 1 / (np.array(totals) - np.array(events))
    tau2 = paule_mandel(effect, variance)
    w = 1 / (variance + tau2)
    mu = np.sum(w * effect) / np.sum(w)
    k = len(effect)
    q = np.sum(w * (effect - mu) ** 2) / (k - 1)
    half = stats.t.ppf(0.975, k - 1) * math.sqrt(max(1.0, q) / np.sum(w))
    assert row["tau2"] == pytest.approx(tau2, abs=1e-10)
    assert row["estimate"] == pytest.approx(expit(mu), abs=1e-12)
    assert row["ci_low"] == pytest.approx(expit(mu - half), abs=1e-12)
    assert row["ci_high"] == pytest.approx(expit(mu + half), abs=1e-12)
    pi_half = stats.t.ppf(0.975, k - 2) * math.sqrt(tau2 + 1 / np.sum(w))
    assert row["pi_low"] == pytest.approx(expit(mu - pi_half), abs=1e-12)
    assert row["pi_high"] == pytest.approx(expit(mu + pi_half), abs=1e-12)
    w_fixed = 1 / variance
    typical = (k - 1) * w_fixed.sum() / (w_fixed.sum() ** 2 - (w_fixed ** 2).sum())
    assert row["i2"] == pytest.approx(tau2 / (tau2 + typical), abs=1e-12)
    assert row["k_cohorts"] == 4 and row["n_participants"] == 80 and row["n_events"] == 37
    assert "prediction interval" in row["method"] and "Paule-Mandel" in row["method"]
    assert row["estimate_glmm"] is not None  # the binomial-normal model beside


def test_hksj_below_one_is_raised_to_one_so_the_interval_is_never_narrower_than_dl():
    """Knapp-Hartung's ad hoc rule (metafor test="adhoc"): a homogeneous set has q < 1, and
    plain HKSJ would give an interval narrower than DerSimonian-Laird's Wald interval."""
    row = pool(cohorts([25, 26, 24, 25, 26], [100] * 5))
    assert row["tau2"] == 0.0
    assert row["ci_low"] <= row["ci_low_dl"] and row["ci_high"] >= row["ci_high_dl"]
    assert "ad hoc max(1, q)" in row["method"]
    assert "HKSJ scale q below 1 raised to 1 (Knapp-Hartung ad hoc rule)" in row["caveats"]


def test_heterogeneous_cohorts_do_not_name_the_ad_hoc_rule():
    row = pool(cohorts([20, 15, 3], [23, 28, 13]))
    assert row["tau2"] > 0
    assert not any("q below 1" in c for c in row["caveats"])


def test_cohorts_with_zero_events_use_the_binomial_normal_model_and_cover_what_was_seen():
    """0/10, 1/12, 0/8: continuity-corrected logits would publish an interval above the observed
    1/30; the binomial-normal model (ML) needs no correction."""
    row = pool(cohorts([0, 1, 0], [10, 12, 8]))
    assert "binomial-normal random-effects model" in row["method"]
    assert row["ci_low"] <= 1 / 30 <= row["ci_high"]
    assert row["estimate"] == pytest.approx(1 / 30, abs=1e-8)  # tau2 = 0: the pooled proportion
    assert row["tau2"] == pytest.approx(0.0, abs=1e-10)
    assert row["estimate_glmm"] == row["estimate"]


def test_every_cohort_at_zero_events_gives_the_summed_counts_with_their_exact_interval():
    """0/10, 0/12, 0/8 was published as 0.046 (0.029-0.072), an interval excluding what was
    observed; the binomial-normal likelihood has no finite maximum there."""
    row = pool(cohorts([0, 0, 0], [10, 12, 8]))
    assert row["estimate"] == 0.0 and row["ci_low"] == 0.0
    assert row["ci_high"] == pytest.approx(1 - 0.025 ** (1 / 30), abs=1e-12)
    assert "summed counts" in row["method"] and row["tau2"] is None
    assert "every cohort has 0 events: no between-cohort variation can be estimated" \
        in row["caveats"]


def test_every_cohort_at_all_events_is_the_mirror_image():
    row = pool(cohorts([10, 12], [10, 12]))
    assert row["estimate"] == 1.0 and row["ci_high"] == 1.0
    assert row["ci_low"] == pytest.approx(0.025 ** (1 / 22), abs=1e-12)


def test_two_cohorts_have_no_prediction_interval_and_say_so():
    row = pool(cohorts([5, 9], [10, 12]))
    assert row["pi_low"] is None and "fewer than 3 cohorts (no prediction interval)" \
        in row["caveats"]


def test_reports_of_one_cohort_count_once_the_most_complete_one():
    row = pool(effect_rows(
        {"cohort_id": "C1", "study_id": "EARLY", "events": 14, "participants": 15,
         "publication_year": 2007},
        {"cohort_id": "C1", "study_id": "LATER", "events": 20, "participants": 23,
         "publication_year": 2009},
        {"cohort_id": "C2", "study_id": "OTHER", "events": 3, "participants": 13}))
    assert row["k_cohorts"] == 2 and list(row["study_ids"]) == ["LATER", "OTHER"]
    assert list(row["reports_set_aside"]) == ["EARLY"]


def test_reports_of_one_cohort_tied_on_size_and_year_are_a_conflict_not_a_choice():
    row = pool(effect_rows(
        {"cohort_id": "C1", "study_id": "A", "events": 4, "participants": 10},
        {"cohort_id": "C1", "study_id": "B", "events": 6, "participants": 10}))
    assert row["k_cohorts"] == 0 and list(row["reports_set_aside"]) == ["A", "B"]
    assert "conflicting reports of one cohort (none used)" in row["caveats"]
    assert row["estimate"] is None and row["method"] == "no cohort left to pool"


def test_arms_of_one_cohort_are_combined_and_the_latest_timepoint_in_the_window_used():
    row = pool(effect_rows(
        {"cohort_id": "C1", "study_id": "S1", "arm": "low dose", "events": 2, "participants": 5},
        {"cohort_id": "C1", "study_id": "S1", "arm": "high dose", "events": 4, "participants": 6},
        {"cohort_id": "C1", "study_id": "S1", "arm": "high dose", "events": 5, "participants": 6,
         "timepoint_months": 9.0, "timepoint_text": "9"}))
    assert row["k_cohorts"] == 1 and (row["n_events"], row["n_participants"]) == (6, 11)
    assert "arms of one cohort combined" in row["caveats"]
    assert list(row["timepoints_used"]) == ["12"]


def test_last_follow_up_rows_carry_their_range_of_months():
    row = pool(effect_rows(
        {"cohort_id": "C1", "study_id": "S1", "events": 20, "participants": 23,
         "followup_months_min": 7.0, "followup_months_max": 58.0},
        {"cohort_id": "C2", "study_id": "S2", "events": 15, "participants": 28,
         "followup_months_min": 4.0, "followup_months_max": 42.0},
        window_id="last_followup", definition_id="ii_ever"))
    assert "last follow-up: 4 to 58 months" in row["caveats"]
    fixed = pool(cohorts([5, 9], [10, 12]))
    assert not any(c.startswith("last follow-up") for c in fixed["caveats"])


def test_zero_and_all_events_use_a_continuity_correction_only_in_the_normal_model():
    logits = random_effects.logit_effects([0, 5], [10, 5])
    assert logits.corrected
    assert logits.effect[0] == pytest.approx(math.log(0.5 / 10.5))
    assert logits.effect[1] == pytest.approx(math.log(5.5 / 0.5))


def test_scenarios_and_msc_sources_are_rows_of_their_own():
    frame = cohorts([5, 9], [10, 12], therapy_class="msc", msc_source="umbilical_cord")
    out = pooling.pooled_outcomes(frame)
    # 4 scenarios (randomised_only keeps no single-arm row) x (the source, all sources)
    assert len(out) == 8 and not out["randomised_only"].any()
    assert sorted(out["msc_source"].value_counts().items()) == [("all sources", 4),
                                                               ("umbilical_cord", 4)]


cohort_counts = st.lists(
    st.integers(min_value=1, max_value=400).flatmap(
        lambda n: st.tuples(st.integers(min_value=0, max_value=n), st.just(n))),
    min_size=2, max_size=8)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cohort_counts)
def test_any_counts_give_an_estimate_inside_its_interval_inside_zero_one(counts):
    events, totals = (np.array(v, dtype=float) for v in zip(*counts, strict=True))
    row, caveats = pooling.fit_cohorts(events, totals)
    assert 0 <= row["ci_low"] <= row["estimate"] <= row["ci_high"] <= 1
    if row.get("pi_low") is not None:
        assert len(counts) >= 3
        assert 0 <= row["pi_low"] <= row["estimate"] <= row["pi_high"] <= 1
    all_or_none = (events == 0).all() or (events == totals).all()
    assert ("summed counts" in row["method"]) == all_or_none
    assert (row.get("tau2") is None) == all_or_none
    if not all_or_none and ((events == 0) | (events == totals)).any():
        assert "binomial-normal random-effects model" in row["method"] \
            or "no finite maximum" in row["method"]
    if row.get("i2") is not None:
        assert 0 <= row["i2"] <= 1
    if row.get("estimate_glmm") is not None:
        assert 0 <= row["ci_low_glmm"] <= row["estimate_glmm"] <= row["ci_high_glmm"] <= 1


def test_each_cohort_carries_what_a_forest_plot_draws():
    """cohort_* arrays, in cohort_ids order: counts with arms combined, the raw proportion with
    its exact interval, and the random-effects weight 1 / (v + tau2) as a share of the total."""
    events, totals = [12, 15, 3], [23, 28, 13]
    row = pool(cohorts(events, totals))
    assert list(row["cohort_ids"]) == ["C0", "C1", "C2"]
    assert list(row["cohort_events"]) == events and list(row["cohort_participants"]) == totals
    assert list(row["cohort_estimates"]) == pytest.approx(
        [e / n for e, n in zip(events, totals, strict=True)])
    assert list(row["cohort_ci_low"]) == pytest.approx(
        [stats.beta.ppf(0.025, e, n - e + 1) for e, n in zip(events, totals, strict=True)])
    assert list(row["cohort_ci_high"]) == pytest.approx(
        [stats.beta.ppf(0.975, e + 1, n - e) for e, n in zip(events, totals, strict=True)])
    effect = np.log(np.array(events) / (np.array(totals) - np.array(events)))
    variance = 1 / np.array(events) + 1 / (np.array(totals) - np.array(events))
    w = 1 / (variance + paule_mandel(effect, variance))
    assert list(row["cohort_weights"]) == pytest.approx(list(w / w.sum()), rel=1e-4)
    assert sum(row["cohort_weights"]) == pytest.approx(1.0)

    single = pool(effect_rows(
        {"cohort_id": "C1", "study_id": "S1", "arm": "low dose", "events": 2, "participants": 5},
        {"cohort_id": "C1", "study_id": "S1", "arm": "high dose", "events": 4,
         "participants": 6}))
    assert (list(single["cohort_events"]), list(single["cohort_participants"])) == ([6], [11])
    assert list(single["cohort_weights"]) == [1.0]
    assert (list(single["cohort_ci_low"]), list(single["cohort_ci_high"])) == (
        [single["ci_low"]], [single["ci_high"]])
    conflict = pool(effect_rows(
        {"cohort_id": "C1", "study_id": "A", "events": 4, "participants": 10},
        {"cohort_id": "C1", "study_id": "B", "events": 6, "participants": 10}))
    assert list(conflict["cohort_weights"]) == [] and list(conflict["cohort_events"]) == []
    none_at_all = pool(cohorts([0, 0, 0], [10, 12, 8]))  # summed counts: weights by participants
    assert list(none_at_all["cohort_weights"]) == pytest.approx([10 / 30, 12 / 30, 8 / 30])
