"""The pooling models against R's metafor, the field's reference implementation, on edge cases
and on seeded random counts: estimate, CI, PI, tau2 and I2 agree to 1e-6 (tests/oracle/metafor.py
says where the tools differ by design and how each is compared). All cases go to metafor in one
batch (one Rscript process per test session: the ``metafor`` fixture)."""

from __future__ import annotations

import numpy as np
import pytest

from flows.evidence import pooling
from tests.oracle.metafor import disagreements, expected_model

EDGE_CASES = {
    "k=2": ([9, 5], [12, 10]),
    "tau2=0, q<1 (homogeneous k=5)": ([25, 26, 24, 25, 26], [100] * 5),
    "q<1, small cohorts": ([3, 3, 4], [10, 11, 12]),
    "heterogeneous k=3": ([20, 15, 3], [23, 28, 13]),
    "0/n among others": ([0, 1, 0], [10, 12, 8]),
    "one 0/n": ([0, 3, 5, 2], [10, 12, 8, 20]),
    "n/n among others": ([10, 11, 8], [10, 12, 8]),
    "every cohort 0/n": ([0, 0, 0], [10, 12, 8]),
    "every cohort n/n": ([10, 12], [10, 12]),
    "one huge, several tiny": ([4000, 1, 2, 1], [10000, 3, 4, 2]),
    "one huge, several tiny with 0/n": ([4000, 1, 2, 0], [10000, 3, 4, 2]),
    "two huge": ([300, 420], [1000, 1000]),
    "one cohort": ([3], [10]),
}


def random_cases(seed: int = 26, count: int = 30) -> dict[str, tuple[list[int], list[int]]]:
    rng = np.random.default_rng(seed)
    cases = {}
    for number in range(count):
        k = int(rng.integers(2, 9))
        totals = rng.integers(2, 250, size=k)
        centre = rng.uniform(-3, 3)
        spread = rng.choice([0.0, 0.3, 1.0, 2.0])
        p = 1 / (1 + np.exp(-(centre + spread * rng.standard_normal(k))))
        events = rng.binomial(totals, p)
        cases[f"random {number}"] = (events.tolist(), totals.tolist())
    return cases


def pooled(events: list[int], totals: list[int]) -> dict:
    if len(events) == 1:
        from flows.evidence.effects import clopper_pearson

        low, high = clopper_pearson(np.array(events, float), np.array(totals, float))
        return {"estimate": events[0] / totals[0], "ci_low": low[0], "ci_high": high[0],
                "method": pooling.SINGLE_COHORT}
    row, _ = pooling.fit_cohorts(np.array(events, dtype=float), np.array(totals, dtype=float))
    return row


@pytest.fixture(scope="module")
def answers(metafor):
    return metafor.fit({**EDGE_CASES, **random_cases()})


@pytest.mark.parametrize("case", list(EDGE_CASES) + list(random_cases()))
def test_pooled_numbers_agree_with_metafor(case, answers):
    events, totals = {**EDGE_CASES, **random_cases()}[case]
    problems = disagreements(pooled(events, totals), events, totals, answers[case])
    assert not problems, f"{case} {events}/{totals}: " + "; ".join(problems)


def test_the_edge_cases_reach_every_model(answers):
    models = {expected_model(*EDGE_CASES[case], answers[case]) for case in EDGE_CASES}
    assert models == {"single", "exact", "glmm", "pm"}


def test_metafor_refuses_a_glmm_when_every_cohort_has_zero_events(answers):
    """By design: no finite maximum. Betacell publishes the summed counts' exact interval."""
    assert "Cannot fit ML model" in answers["every cohort 0/n"]["glmm_error"]


def test_hksj_with_q_below_one_is_metafor_adhoc_not_knha(answers):
    answer = answers["tau2=0, q<1 (homogeneous k=5)"]
    row = pooled(*EDGE_CASES["tau2=0, q<1 (homogeneous k=5)"])
    assert answer["adhoc_high"] - answer["adhoc_low"] > answer["knha_high"] - answer["knha_low"]
    assert row["ci_low"] == pytest.approx(1 / (1 + np.exp(-answer["adhoc_low"])), abs=1e-9)


def test_our_prediction_interval_is_the_handbook_one_not_metafor_predict(answers):
    """metafor 3.8's predict() with test="knha" uses t(k-1) and the HKSJ-scaled SE; the Cochrane
    Handbook (and Betacell) use t(k-2) with the plain SE. They differ, knowingly."""
    answer = answers["heterogeneous k=3"]
    row = pooled(*EDGE_CASES["heterogeneous k=3"])
    native_low = 1 / (1 + np.exp(-answer["knha_pi_low"]))
    handbook_low = 1 / (1 + np.exp(-answer["pm_pi_low"]))
    assert row["pi_low"] == pytest.approx(handbook_low, abs=1e-9)
    assert abs(row["pi_low"] - native_low) > 1e-3
