"""The pooling model on hand-computable inputs (the functions behind int_pooled_outcomes)."""

from __future__ import annotations

import importlib.util
import math

import pytest

from flows.settings import REPO_DIR

spec = importlib.util.spec_from_file_location(
    "int_pooled_outcomes", REPO_DIR / "dbt_project/models/intermediate/int_pooled_outcomes.py")
pooling = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pooling)


def expit(x):
    return 1 / (1 + math.exp(-x))


def test_single_study_is_its_own_proportion_with_a_logit_interval():
    estimate, low, high, tau2, i2 = pooling.pool_proportions([3], [10])
    se = math.sqrt(1 / 3 + 1 / 7)
    assert estimate == pytest.approx(0.3, abs=1e-12)
    assert low == pytest.approx(expit(math.log(3 / 7) - 1.959963984540054 * se), abs=1e-12)
    assert high == pytest.approx(expit(math.log(3 / 7) + 1.959963984540054 * se), abs=1e-12)
    assert tau2 is None and i2 is None


def test_identical_studies_have_no_heterogeneity():
    estimate, low, high, tau2, i2 = pooling.pool_proportions([5, 5], [10, 10])
    se = math.sqrt((1 / 5 + 1 / 5) / 2)  # two equal weights
    assert estimate == pytest.approx(0.5, abs=1e-12)
    assert tau2 == pytest.approx(0.0, abs=1e-12) and i2 == pytest.approx(0.0, abs=1e-12)
    assert low == pytest.approx(expit(-1.959963984540054 * se), abs=1e-9)


def test_dersimonian_laird_by_hand():
    events, totals = [2, 8], [10, 10]
    y = [math.log(e / (n - e)) for e, n in zip(events, totals, strict=True)]
    v = [1 / e + 1 / (n - e) for e, n in zip(events, totals, strict=True)]
    w = [1 / x for x in v]
    fixed = sum(wi * yi for wi, yi in zip(w, y, strict=True)) / sum(w)
    q = sum(wi * (yi - fixed) ** 2 for wi, yi in zip(w, y, strict=True))
    tau2 = max(0.0, (q - 1) / (sum(w) - sum(wi**2 for wi in w) / sum(w)))
    w_re = [1 / (vi + tau2) for vi in v]
    mean = sum(wi * yi for wi, yi in zip(w_re, y, strict=True)) / sum(w_re)
    estimate, low, high, got_tau2, i2 = pooling.pool_proportions(events, totals)
    assert got_tau2 == pytest.approx(tau2, abs=1e-9)
    assert estimate == pytest.approx(expit(mean), abs=1e-9)
    assert i2 == pytest.approx(max(0.0, (q - 1) / q), abs=1e-9)
    assert low < estimate < high


def test_zero_and_all_events_use_a_continuity_correction():
    estimate, low, high, _, _ = pooling.pool_proportions([0], [12])
    assert estimate == pytest.approx(0.5 / 13, abs=1e-12)
    assert 0 < low < estimate < high < 1
    estimate, *_ = pooling.pool_proportions([12], [12])
    assert estimate == pytest.approx(12.5 / 13, abs=1e-12)
