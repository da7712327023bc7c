"""The harm-rate rules (flows/evidence/harms.py, behind int_harm_rates and safety_signals) on
hand-computable inputs, with the exact intervals checked against scipy's beta quantiles."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from flows.evidence.harms import OUTPUT_TYPES, harm_rates


def harm_rows(*rows):
    """Rows shaped like int_harm_facts (only what the rates read)."""
    base = {"therapy_class": "msc", "diabetes_type": "T1D", "harm_category": "infection",
            "source": "publication", "reporting_status": "reported", "verification_status": "yes",
            "is_control_arm": False, "is_set_aside_overlap": False, "is_count_derived": False,
            "publication_year": 2020, "arm": "cells"}
    frame = pd.DataFrame([{**base, "adverse_event_fact_id": f"f{i}",
                           "study_id": row.get("cohort_id", f"s{i}"), **row}
                          for i, row in enumerate(rows)])
    for column in ("affected_low", "affected_high", "at_risk_count"):
        frame[column] = frame[column].astype("Int64") if column in frame else pd.NA
    return frame


def exact(affected, at_risk, **row):
    return {"affected_low": affected, "affected_high": affected, "at_risk_count": at_risk, **row}


def clopper_pearson(low, high, n):
    lower = 0.0 if low == 0 else stats.beta.ppf(0.025, low, n - low + 1)
    upper = 1.0 if high == n else stats.beta.ppf(0.975, high + 1, n - high)
    return lower, upper


def one(rates, **key):
    match = rates
    for column, value in key.items():
        match = match[match[column].isna()] if value is None else match[match[column] == value]
    assert len(match) == 1, (key, rates)
    return match.iloc[0]


def test_diabetes_types_are_never_pooled():
    rates = harm_rates(harm_rows(
        exact(0, 134, cohort_id="A", harm_category="any_serious_adverse_event"),
        exact(0, 56, cohort_id="B", harm_category="any_serious_adverse_event",
              diabetes_type="T2D")))
    t1d = one(rates, diabetes_type="T1D", harm_category="any_serious_adverse_event")
    t2d = one(rates, diabetes_type="T2D", harm_category="any_serious_adverse_event")
    assert (t1d.participants_affected, t1d.participants_at_risk) == (0, 134)
    assert (t2d.participants_affected, t2d.participants_at_risk) == (0, 56)


def test_exact_counts_give_a_proportion_with_its_exact_interval():
    rates = harm_rates(harm_rows(exact(2, 10, cohort_id="A"), exact(3, 20, cohort_id="B")))
    row = one(rates, harm_category="infection")
    assert (row.count_basis, row.participants_affected, row.participants_at_risk) == (
        "exact", 5, 30)
    assert row.proportion == pytest.approx(5 / 30)
    assert (row.ci_low, row.ci_high) == pytest.approx(clopper_pearson(5, 5, 30))
    assert row.reporting_study_ids == ["A", "B"]


def test_bounds_add_up_and_give_no_point_estimate():
    """A cohort bounded 3..5 (a category of several terms) beside an exact 2/10."""
    rates = harm_rates(harm_rows(
        exact(2, 10, cohort_id="A"),
        {"cohort_id": "B", "affected_low": 3, "affected_high": 5, "at_risk_count": 20,
         "source": "registry_results", "verification_status": "registry_posted"}))
    row = one(rates, harm_category="infection")
    assert row.count_basis == "bounds" and row.cohorts_with_bounds == 1
    assert pd.isna(row.participants_affected) and pd.isna(row.proportion)
    assert (row.participants_affected_low, row.participants_affected_high,
            row.participants_at_risk) == (5, 7, 30)
    assert (row.ci_low, row.ci_high) == pytest.approx(clopper_pearson(5, 7, 30))
    assert pd.isna(row.registry_affected) and row.registry_at_risk == 20  # bounded: unknown
    assert row.publication_affected == 2 and row.publication_at_risk == 10


def test_a_reported_zero_is_zero_and_not_reported_is_never_zero():
    rates = harm_rates(harm_rows(
        exact(0, 12, cohort_id="A", source="registry_results",
              verification_status="registry_posted"),
        {"cohort_id": "B", "reporting_status": "not_reported", "harm_category": "thrombosis"},
        {"cohort_id": "A", "reporting_status": "not_reported", "harm_category": "thrombosis"}))
    infection = one(rates, harm_category="infection")
    assert (infection.participants_affected, infection.registry_affected) == (0, 0)
    thrombosis = one(rates, harm_category="thrombosis")
    assert thrombosis.cohorts_not_reporting == 2 and thrombosis.cohorts_with_count == 0
    assert pd.isna(thrombosis.participants_affected) and pd.isna(thrombosis.count_basis)


def test_one_report_per_cohort_best_status_then_most_at_risk_then_latest():
    rates = harm_rates(harm_rows(
        exact(1, 10, cohort_id="C", study_id="early", publication_year=2018),
        exact(4, 30, cohort_id="C", study_id="bigger", publication_year=2019),
        exact(2, 30, cohort_id="C", study_id="later", publication_year=2021),
        {"cohort_id": "C", "study_id": "qualitative", "reporting_status": "reported_qualitative"}))
    row = one(rates, harm_category="infection")
    assert row.reporting_study_ids == ["later"] and row.participants_affected == 2
    assert row.cohorts_with_count == 1 and row.cohorts_reporting_qualitatively == 0


def test_arms_of_the_chosen_report_add_up_and_controls_are_left_out():
    rates = harm_rates(harm_rows(
        exact(1, 10, cohort_id="A", arm="low dose"), exact(2, 12, cohort_id="A", arm="high dose"),
        exact(5, 11, cohort_id="A", arm="placebo", is_control_arm=True),
        exact(9, 9, cohort_id="B", verification_status="no"),
        exact(9, 9, cohort_id="D", is_set_aside_overlap=True)))
    row = one(rates, harm_category="infection")
    assert (row.participants_affected, row.participants_at_risk, row.cohorts_with_count) == (
        3, 22, 1)


def test_unknown_diabetes_type_is_its_own_null_group():
    rates = harm_rates(harm_rows(exact(1, 5, cohort_id="A", diabetes_type=None),
                                 exact(2, 6, cohort_id="B")))
    assert one(rates, diabetes_type=None).participants_at_risk == 5
    assert list(rates.columns) == list(OUTPUT_TYPES)


def test_a_column_with_no_diabetes_type_at_all_is_one_null_group():
    """A live registry run without the sheet: DuckDB hands every NULL type over as float NaN."""
    rows = harm_rows(exact(1, 5, cohort_id="A"), exact(2, 6, cohort_id="B"))
    rows["diabetes_type"] = np.nan
    rates = harm_rates(rows)
    row = one(rates, diabetes_type=None)
    assert (row.participants_affected, row.participants_at_risk) == (3, 11)


def test_a_hundred_thousand_rows_take_seconds_not_minutes():
    """The rows of a 100,000-row outcome sheet (#24: 184 s in the old per-cohort loop)."""
    rng = np.random.default_rng(7)
    n = 100_000
    at_risk = rng.integers(1, 200, n)
    affected = (at_risk * rng.random(n)).astype(int)
    frame = harm_rows(exact(0, 1))
    frame = pd.DataFrame({column: np.repeat(frame[column].to_numpy(), n) for column in frame})
    frame = frame.assign(
        adverse_event_fact_id=[f"f{i}" for i in range(n)],
        cohort_id=[f"c{i // 3}" for i in range(n)], study_id=[f"s{i // 2}" for i in range(n)],
        harm_category=rng.choice(["infection", "death", "thrombosis", "other"], n),
        therapy_class=rng.choice(["msc", "hsc", "islet_transplant_comparator"], n),
        reporting_status=rng.choice(["reported", "reported", "not_reported",
                                     "reported_without_count"], n),
        affected_low=affected, affected_high=affected, at_risk_count=at_risk)
    started = time.perf_counter()
    rates = harm_rates(frame)
    elapsed = time.perf_counter() - started
    assert len(rates) == 3 * 4 * 1 and elapsed < 20, elapsed
    assert (rates["participants_affected_high"] <= rates["participants_at_risk"]).all()
