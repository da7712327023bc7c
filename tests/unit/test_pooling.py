"""The pooling rules on hand-computable inputs (the functions behind int_pooled_outcomes),
checked against independent computations (scipy's beta quantiles, the Paule-Mandel equation
and the HKSJ and prediction-interval formulas written out here)."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from flows.settings import REPO_DIR

spec = importlib.util.spec_from_file_location(
    "int_pooled_outcomes", REPO_DIR / "dbt_project/models/intermediate/int_pooled_outcomes.py")
pooling = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pooling)


def expit(x):
    return 1 / (1 + math.exp(-x))


def effect_rows(*rows):
    """Rows shaped like int_outcome_effects (only what pooling reads)."""
    base = {"arm": "cells", "timepoint_months": 12.0, "timepoint_text": "12",
            "publication_year": 2020, "verification_status": "yes", "is_randomised": False,
            "is_count_derived": False, "is_complement_converted": False,
            "is_set_aside_overlap": False}
    return pd.DataFrame([{**base, "outcome_fact_id": f"f{i}", **row}
                         for i, row in enumerate(rows)])


def paule_mandel(effect, variance):
    k = len(effect)

    def q_minus_df(tau2):
        w = 1 / (variance + tau2)
        mu = np.sum(w * effect) / np.sum(w)
        return np.sum(w * (effect - mu) ** 2) - (k - 1)

    return 0.0 if q_minus_df(0) <= 0 else optimize.brentq(q_minus_df, 0, 100)


def test_a_single_cohort_is_its_raw_proportion_with_an_exact_interval():
    row = pooling.pool(effect_rows({"cohort_id": "C1", "study_id": "S1", "events": 3,
                                    "participants": 3}), None)
    assert row["estimate"] == 1.0 and row["k_cohorts"] == 1  # not 0.80 continuity-corrected
    assert row["ci_low"] == pytest.approx(stats.beta.ppf(0.025, 3, 1), abs=1e-12)
    assert row["ci_high"] == 1.0
    assert "single cohort" in row["caveats"] and "Clopper-Pearson" in row["method"]


def test_several_cohorts_get_paule_mandel_hksj_and_a_prediction_interval():
    events, totals = [12, 15, 3, 7], [23, 28, 13, 16]
    row = pooling.pool(effect_rows(*[{"cohort_id": f"C{i}", "study_id": f"S{i}", "events": e,
                                      "participants": n}
                                     for i, (e, n) in enumerate(zip(events, totals, strict=True))]),
                       None)
    effect = np.log(np.array(events) / (np.array(totals) - np.array(events)))
    variance = 1 / np.array(events) + 1 / (np.array(totals) - np.array(events))
    tau2 = paule_mandel(effect, variance)
    w = 1 / (variance + tau2)
    mu = np.sum(w * effect) / np.sum(w)
    k = len(effect)
    hksj_var = np.sum(w * (effect - mu) ** 2) / ((k - 1) * np.sum(w))
    half = stats.t.ppf(0.975, k - 1) * math.sqrt(hksj_var)
    assert row["tau2"] == pytest.approx(tau2, rel=1e-4, abs=1e-8)
    assert row["estimate"] == pytest.approx(expit(mu), rel=1e-6)
    assert row["ci_low"] == pytest.approx(expit(mu - half), rel=1e-5)
    assert row["ci_high"] == pytest.approx(expit(mu + half), rel=1e-5)
    pi_half = stats.t.ppf(0.975, k - 2) * math.sqrt(tau2 + 1 / np.sum(w))
    assert row["pi_low"] == pytest.approx(expit(mu - pi_half), rel=1e-4)
    assert row["pi_high"] == pytest.approx(expit(mu + pi_half), rel=1e-4)
    assert row["k_cohorts"] == 4 and row["n_participants"] == 80 and row["n_events"] == 37
    assert "prediction interval" in row["method"]


def test_two_cohorts_have_no_prediction_interval_and_say_so():
    row = pooling.pool(effect_rows({"cohort_id": "C1", "study_id": "S1", "events": 5,
                                    "participants": 10},
                                   {"cohort_id": "C2", "study_id": "S2", "events": 9,
                                    "participants": 12}), None)
    assert row["pi_low"] is None and "fewer than 3 cohorts (no prediction interval)" in row["caveats"]


def test_reports_of_one_cohort_count_once_the_most_complete_one():
    row = pooling.pool(effect_rows(
        {"cohort_id": "C1", "study_id": "EARLY", "events": 14, "participants": 15,
         "publication_year": 2007},
        {"cohort_id": "C1", "study_id": "LATER", "events": 20, "participants": 23,
         "publication_year": 2009},
        {"cohort_id": "C2", "study_id": "OTHER", "events": 3, "participants": 13}), None)
    assert row["k_cohorts"] == 2 and row["study_ids"] == ["LATER", "OTHER"]
    assert row["reports_set_aside"] == ["EARLY"]


def test_reports_of_one_cohort_tied_on_size_and_year_are_a_conflict_not_a_choice():
    row = pooling.pool(effect_rows(
        {"cohort_id": "C1", "study_id": "A", "events": 4, "participants": 10},
        {"cohort_id": "C1", "study_id": "B", "events": 6, "participants": 10}), None)
    assert row["k_cohorts"] == 0 and row["reports_set_aside"] == ["A", "B"]
    assert "conflicting reports of one cohort (none used)" in row["caveats"]


def test_arms_of_one_cohort_are_combined_and_the_latest_timepoint_in_the_window_used():
    row = pooling.pool(effect_rows(
        {"cohort_id": "C1", "study_id": "S1", "arm": "low dose", "events": 2, "participants": 5},
        {"cohort_id": "C1", "study_id": "S1", "arm": "high dose", "events": 4, "participants": 6},
        {"cohort_id": "C1", "study_id": "S1", "arm": "high dose", "events": 5, "participants": 6,
         "timepoint_months": 9.0, "timepoint_text": "9"}), None)
    assert row["k_cohorts"] == 1 and (row["n_events"], row["n_participants"]) == (6, 11)
    assert "arms of one cohort combined" in row["caveats"]
    assert row["timepoints_used"] == ["12"]


def test_zero_and_all_events_use_a_continuity_correction_only_when_pooled():
    effect, variance, corrected = pooling.logit_effects([0, 5], [10, 5])
    assert corrected
    assert effect[0] == pytest.approx(math.log(0.5 / 10.5))
    assert effect[1] == pytest.approx(math.log(5.5 / 0.5))


def test_each_cohort_carries_what_a_forest_plot_draws():
    """cohort_* arrays, in cohort_ids order: counts with arms combined, the raw proportion with
    its exact interval, and the random-effects weight 1 / (v + tau2) as a share of the total."""
    events, totals = [12, 15, 3], [23, 28, 13]
    row = pooling.pool(effect_rows(*[{"cohort_id": f"C{i}", "study_id": f"S{i}", "events": e,
                                      "participants": n}
                                     for i, (e, n) in enumerate(zip(events, totals, strict=True))]),
                       None)
    assert row["cohort_ids"] == ["C0", "C1", "C2"]
    assert row["cohort_events"] == events and row["cohort_participants"] == totals
    assert row["cohort_estimates"] == pytest.approx([e / n for e, n in zip(events, totals,
                                                                          strict=True)])
    assert row["cohort_ci_low"] == pytest.approx(
        [stats.beta.ppf(0.025, e, n - e + 1) for e, n in zip(events, totals, strict=True)])
    assert row["cohort_ci_high"] == pytest.approx(
        [stats.beta.ppf(0.975, e + 1, n - e) for e, n in zip(events, totals, strict=True)])
    effect = np.log(np.array(events) / (np.array(totals) - np.array(events)))
    variance = 1 / np.array(events) + 1 / (np.array(totals) - np.array(events))
    w = 1 / (variance + paule_mandel(effect, variance))
    assert row["cohort_weights"] == pytest.approx(list(w / w.sum()), rel=1e-4)
    assert sum(row["cohort_weights"]) == pytest.approx(1.0)

    single = pooling.pool(effect_rows(
        {"cohort_id": "C1", "study_id": "S1", "arm": "low dose", "events": 2, "participants": 5},
        {"cohort_id": "C1", "study_id": "S1", "arm": "high dose", "events": 4,
         "participants": 6}), None)
    assert (single["cohort_events"], single["cohort_participants"]) == ([6], [11])
    assert single["cohort_weights"] == [1.0]
    assert (single["cohort_ci_low"], single["cohort_ci_high"]) == ([single["ci_low"]],
                                                                   [single["ci_high"]])
    empty = pooling.pool(effect_rows(
        {"cohort_id": "C1", "study_id": "A", "events": 4, "participants": 10},
        {"cohort_id": "C1", "study_id": "B", "events": 6, "participants": 10}), None)
    assert empty["cohort_weights"] == [] and empty["cohort_events"] == []
