"""The automatic GRADE-style rating: each domain's rule, the adapter the dbt model calls, and
invariants over generated rows (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from flows.evidence.certainty import (
    LEVELS,
    OPTIMAL_INFORMATION_SIZE,
    Cohort,
    Estimate,
    comparison_cohorts,
    egger_p_value,
    rate,
    rate_comparisons,
)

RANK = {label: level for level, label in LEVELS.items()}


def single_arm(n=40, events=20, **kwargs) -> Cohort:
    return Cohort(kwargs.pop("cohort_id", "c1"), events, n, kwargs.pop("randomised", False),
                  **kwargs)


def estimate(**overrides) -> Estimate:
    values = {"k_cohorts": 1, "n_participants": 200, "estimate": 0.5, "ci_low": 0.45,
              "ci_high": 0.55, "definition_id": "ii_at_timepoint", "window_id": "m6_18"}
    values.update(overrides)
    return Estimate(**values)


def test_the_optimal_information_size_is_a_proportion_to_ten_points_in_the_worst_case():
    from scipy.stats import norm

    assert math.ceil(norm.ppf(0.975) ** 2 * 0.5 * 0.5 / 0.1 ** 2) == OPTIMAL_INFORMATION_SIZE == 97


def test_randomised_cohorts_start_high_and_any_other_cohort_starts_low():
    randomised = [single_arm(cohort_id="a", randomised=True), single_arm(cohort_id="b",
                                                                        randomised=True)]
    assert rate(estimate(k_cohorts=2, i2=0.0), randomised).start == "high"
    mixed = [randomised[0], single_arm(cohort_id="c")]
    rating = rate(estimate(k_cohorts=2, i2=0.0), mixed)
    assert rating.start == "low"
    assert rating.design_reason == "1 of 2 cohorts non-randomised or single-arm: starts low"


def test_a_precise_consistent_direct_randomised_estimate_stays_high():
    cohorts = [single_arm(100, 50, cohort_id="a", randomised=True, risk_of_bias="low",
                          risk_of_bias_tools=("rob2",)),
               single_arm(100, 52, cohort_id="b", randomised=True, risk_of_bias="low",
                          risk_of_bias_tools=("rob2",))]
    rating = rate(estimate(k_cohorts=2, i2=0.1), cohorts)
    assert rating.certainty == "high" and rating.downgrade == 0
    assert rating.domains["risk_of_bias"].reason.startswith("2 of 2 cohorts assessed (RoB 2)")


@pytest.mark.parametrize(("judgements", "expected"), [
    (("high", "high", "low"), ("very serious", 2)),      # high risk holds 2/3 of participants
    (("some_concerns", "high", "low"), ("serious", 1)),  # high or some concerns hold 2/3
    (("low", "low", "high"), ("not serious", 0)),
    ((None, None, None), ("not assessed", 0)),
])
def test_risk_of_bias_weighs_the_judgements_by_participants(judgements, expected):
    cohorts = [single_arm(cohort_id=str(i), risk_of_bias=j,
                          risk_of_bias_tools=("nih_case_series",) if j else ())
               for i, j in enumerate(judgements)]
    judgement = rate(estimate(k_cohorts=3, i2=0.0), cohorts).domains["risk_of_bias"]
    assert (judgement.rating, judgement.downgrade) == expected
    if expected[0] == "not assessed":
        assert "not rated down" in judgement.reason


@pytest.mark.parametrize(("k", "i2", "pi", "expected"), [
    (1, None, (None, None), "not assessable"),
    (3, 0.2, (0.2, 0.6), "not serious"),
    (3, 0.6, (0.2, 0.6), "serious"),
    (4, 0.8, (0.1, 0.9), "very serious"),
    (2, 0.8, (None, None), "serious"),  # no prediction interval with two cohorts
])
def test_inconsistency_reads_i2_and_the_prediction_interval(k, i2, pi, expected):
    row = estimate(k_cohorts=k, i2=i2, pi_low=pi[0], pi_high=pi[1])
    cohorts = [single_arm(cohort_id=str(i)) for i in range(k)]
    assert rate(row, cohorts).domains["inconsistency"].rating == expected


@pytest.mark.parametrize(("n", "ci", "expected"), [
    (200, (0.45, 0.55), "not serious"),
    (50, (0.0, 0.07), "serious"),   # narrow, but fewer participants than the OIS
    (200, (0.35, 0.60), "serious"),  # enough participants, wide interval
    (12, (0.52, 0.98), "very serious"),
])
def test_imprecision_reads_the_interval_and_the_optimal_information_size(n, ci, expected):
    row = estimate(n_participants=n, ci_low=ci[0], ci_high=ci[1])
    judgement = rate(row, [single_arm(n, 1)]).domains["imprecision"]
    assert judgement.rating == expected
    assert f"N = {n} against an optimal information size of 97" in judgement.reason


def test_indirectness_counts_each_concern_once():
    direct = rate(estimate(), [single_arm()]).domains["indirectness"]
    assert direct.rating == "not serious"
    one = rate(estimate(is_headline_definition=False, definition_label="ever insulin "
                        "independent"), [single_arm()]).domains["indirectness"]
    assert (one.rating, one.reason) == ("serious", "definition 'ever insulin independent' is not "
                                                   "the outcome's headline definition")
    two = rate(estimate(msc_source="all sources", window_id="last_followup"),
               [single_arm()]).domains["indirectness"]
    assert two.rating == "very serious" and two.downgrade == 2
    mixed = rate(estimate(diabetes_type="T1D/T2D"), [single_arm()]).domains["indirectness"]
    assert mixed.reason == "mixed population (T1D/T2D)"


def test_publication_bias_is_not_assessable_below_ten_cohorts_and_says_so():
    cohorts = [single_arm(cohort_id=str(i)) for i in range(9)]
    judgement = rate(estimate(k_cohorts=9, i2=0.0), cohorts).domains["publication_bias"]
    assert judgement.rating == "not assessable" and "fewer than 10" in judgement.reason


def test_egger_flags_small_study_effects_from_ten_cohorts():
    # small cohorts report high proportions, large ones low: a funnel that leans
    totals = [8, 10, 12, 15, 20, 30, 50, 80, 120, 200, 300]
    events = [7, 8, 9, 10, 12, 15, 20, 28, 36, 50, 66]
    cohorts = [single_arm(n, e, cohort_id=str(i)) for i, (n, e) in
               enumerate(zip(totals, events, strict=True))]
    judgement = rate(estimate(k_cohorts=11, i2=0.3), cohorts).domains["publication_bias"]
    assert judgement.rating == "suspected" and judgement.downgrade == 1
    symmetric = [single_arm(n, n // 2, cohort_id=str(i)) for i, n in enumerate(totals)]
    assert rate(estimate(k_cohorts=11, i2=0.0),
                symmetric).domains["publication_bias"].rating == "undetected"


@given(st.lists(st.tuples(st.integers(1, 400), st.floats(0, 1)), min_size=3, max_size=30))
@settings(max_examples=60, deadline=None)
def test_egger_p_value_matches_an_ordinary_least_squares_fit(cohorts):
    totals = [n for n, _ in cohorts]
    events = [round(n * share) for n, share in cohorts]
    corrected = [(e + 0.5, n + 1.0) if e in (0, n) else (e, n) for e, n in zip(events, totals,
                                                                               strict=True)]
    se = np.array([math.sqrt(1 / e + 1 / (n - e)) for e, n in corrected])
    effect = np.array([math.log(e / (n - e)) for e, n in corrected])
    if np.ptp(1 / se) < 1e-6:  # one precision for all: no regression to fit
        assert math.isnan(egger_p_value(events, totals))
        return
    fit = sm.OLS(effect / se, sm.add_constant(1 / se)).fit()
    if fit.ssr < 1e-9:  # (nearly) a perfect line: the p-value is rounding noise either way
        return
    expected = float(fit.pvalues[0])
    assert egger_p_value(events, totals) == pytest.approx(expected, rel=1e-6, abs=1e-9)


cohort_strategy = st.builds(
    Cohort, cohort_id=st.text(min_size=1, max_size=4), events=st.integers(0, 50),
    participants=st.integers(50, 300), randomised=st.booleans(),
    risk_of_bias=st.sampled_from([None, "low", "some_concerns", "high"]))
estimate_strategy = st.builds(
    Estimate, k_cohorts=st.integers(1, 12), n_participants=st.integers(1, 3000),
    estimate=st.floats(0, 1), ci_low=st.floats(0, 0.5), ci_high=st.floats(0.5, 1),
    i2=st.one_of(st.none(), st.floats(0, 1)), is_headline_definition=st.booleans(),
    diabetes_type=st.sampled_from(["T1D", "T2D", "T1D/T2D"]),
    msc_source=st.sampled_from([None, "umbilical_cord", "all sources"]),
    window_id=st.sampled_from(["m6_18", "last_followup"]))


@given(estimate_strategy, st.lists(cohort_strategy, min_size=1, max_size=12))
@settings(max_examples=200, deadline=None)
def test_every_rating_is_its_start_minus_its_downgrades_with_a_reason_per_domain(row, cohorts):
    rating = rate(row, cohorts)
    assert rating.certainty in RANK
    start = RANK[rating.start]
    assert start == (4 if all(c.randomised for c in cohorts) else 2)
    assert RANK[rating.certainty] == max(1, start - rating.downgrade)
    assert set(rating.domains) == {"risk_of_bias", "inconsistency", "imprecision",
                                   "indirectness", "publication_bias"}
    assert all(j.reason and 0 <= j.downgrade <= 2 for j in rating.domains.values())


@given(estimate_strategy, st.lists(cohort_strategy, min_size=1, max_size=12),
       st.sampled_from(["some_concerns", "high"]))
@settings(max_examples=150, deadline=None)
def test_a_worse_risk_of_bias_judgement_never_raises_the_certainty(row, cohorts, worse):
    before = rate(row, cohorts)
    changed = [Cohort(c.cohort_id, c.events, c.participants, c.randomised, worse, ("rob2",))
               if i == 0 else c for i, c in enumerate(cohorts)]
    after = rate(row, changed)
    order = {None: -1, "low": 0, "some_concerns": 1, "high": 2}
    assume(order[worse] >= order[cohorts[0].risk_of_bias])
    assert RANK[after.certainty] <= RANK[before.certainty]
    assert after.domains["risk_of_bias"].downgrade >= before.domains["risk_of_bias"].downgrade


def test_a_row_without_an_estimate_is_not_rated():
    rating = rate(estimate(estimate=None, ci_low=None, ci_high=None), [])
    assert rating.certainty is None
    assert all(j.rating == "not rated" for j in rating.domains.values())


def test_the_adapter_rebuilds_cohorts_from_the_facts_a_row_used():
    facts = {
        "publication:s.csv:1": {"cohort_id": "NCT1", "events": 3, "participants": 5,
                                "is_randomised": False, "risk_of_bias": "low",
                                "risk_of_bias_tool": "nih_case_series"},
        "publication:s.csv:2": {"cohort_id": "NCT1", "events": 4, "participants": 6,
                                "is_randomised": False, "risk_of_bias": "high",
                                "risk_of_bias_tool": "robins_i"},
        "registry:NCT2:om1": {"cohort_id": "NCT2", "events": 1, "participants": 9,
                              "is_randomised": True, "risk_of_bias": None,
                              "risk_of_bias_tool": None},
    }
    cohorts = comparison_cohorts(list(facts), facts)
    assert cohorts == [Cohort("NCT1", 7, 11, False, "high", ("nih_case_series", "robins_i")),
                       Cohort("NCT2", 1, 9, True, None, ())]
    row = {"verified_only": False, "include_overlapping": False, "randomised_only": False,
           "therapy_class": "msc", "msc_source": "all sources", "diabetes_type": "T1D",
           "outcome": "insulin_independence", "definition_id": "ii_ever", "window_id": "m6_18",
           "k_cohorts": 2, "n_participants": 20, "estimate": 0.4, "ci_low": 0.1,
           "ci_high": 0.8, "i2": float("nan"), "outcome_fact_ids": np.array(list(facts))}
    [out] = rate_comparisons([row], facts, {"ii_ever": ("ever insulin independent", False)})
    assert out["certainty"] == "very low" and out["certainty_start"] == "low"
    assert out["certainty_indirectness"] == "very serious"  # a non-headline definition, all MSC
    assert out["certainty_risk_of_bias"] == "very serious"  # NCT1 (high) holds 11 of 20
    assert out["certainty_inconsistency"] == "not assessable"  # no I2 reported
    assert out["certainty_method"].startswith("automatic GRADE-style rating")
