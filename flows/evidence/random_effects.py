"""The normal-normal random-effects model on logit proportions, written out (the formulas of
metafor's ``rma(measure="PLO")``, which the tests use as the oracle):

- logit effects with the 0.5 continuity correction for cohorts with 0 or all events (metafor's
  ``add=1/2, to="only0"``);
- Paule-Mandel tau^2 (the generalised Q statistic equal to k - 1, solved to 1e-14);
- the Hartung-Knapp-Sidik-Jonkman interval (t, k - 1 df) with Knapp and Hartung's ad hoc rule:
  the scale q is raised to 1 when it falls below 1, so the interval is never narrower than the
  plain random-effects one (metafor's ``test="adhoc"``);
- DerSimonian-Laird tau^2, estimate and Wald interval beside;
- the 95 % prediction interval mu +- t(k - 2) sqrt(tau^2 + SE^2) (Higgins, Thompson and
  Spiegelhalter 2009; the Cochrane Handbook), SE the plain random-effects standard error;
- I^2 = tau^2 / (tau^2 + s^2), s^2 the typical within-cohort variance (Higgins and Thompson).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats


@dataclass(frozen=True)
class LogitEffects:
    effect: np.ndarray
    variance: np.ndarray
    corrected: bool


@dataclass(frozen=True)
class RandomEffectsFit:
    mu: float
    low: float
    high: float
    tau2: float
    hksj_scale: float  # q before the ad hoc rule
    se: float  # the plain random-effects standard error
    pi_low: float | None
    pi_high: float | None
    i2: float
    mu_dl: float
    low_dl: float
    high_dl: float
    tau2_dl: float


def logit_effects(events, totals) -> LogitEffects:
    events = np.asarray(events, dtype=float)
    totals = np.asarray(totals, dtype=float)
    corrected = (events == 0) | (events == totals)
    e = np.where(corrected, events + 0.5, events)
    n = np.where(corrected, totals + 1.0, totals)
    return LogitEffects(np.log(e / (n - e)), 1 / e + 1 / (n - e), bool(corrected.any()))


def typical_variance(variance: np.ndarray) -> float:
    """s^2 = (k - 1) sum(w) / ((sum w)^2 - sum(w^2)), w = 1 / v."""
    w = 1 / variance
    return (len(w) - 1) * w.sum() / (w.sum() ** 2 - (w ** 2).sum())


def i_squared(tau2: float, variance: np.ndarray) -> float:
    return tau2 / (tau2 + typical_variance(variance))


def _weighted_mean(effect, variance, tau2):
    w = 1 / (variance + tau2)
    return float(np.sum(w * effect) / np.sum(w)), w


def _generalised_q(tau2, effect, variance) -> float:
    mu, w = _weighted_mean(effect, variance, tau2)
    return float(np.sum(w * (effect - mu) ** 2))


def paule_mandel_tau2(effect: np.ndarray, variance: np.ndarray) -> float:
    k = len(effect)

    def excess(tau2):
        return _generalised_q(tau2, effect, variance) - (k - 1)

    if excess(0.0) <= 0:
        return 0.0
    upper = 1.0
    while excess(upper) > 0:
        upper *= 10
    return float(optimize.brentq(excess, 0.0, upper, xtol=1e-14, rtol=4 * np.finfo(float).eps,
                                 maxiter=500))


def dersimonian_laird_tau2(effect: np.ndarray, variance: np.ndarray) -> float:
    k = len(effect)
    w = 1 / variance
    q = _generalised_q(0.0, effect, variance)
    return max(0.0, (q - (k - 1)) / (w.sum() - (w ** 2).sum() / w.sum()))


def fit(effects: LogitEffects) -> RandomEffectsFit:
    effect, variance = effects.effect, effects.variance
    k = len(effect)
    tau2 = paule_mandel_tau2(effect, variance)
    mu, w = _weighted_mean(effect, variance, tau2)
    se = math.sqrt(1 / w.sum())
    q = float(np.sum(w * (effect - mu) ** 2)) / (k - 1)
    half = stats.t.ppf(0.975, k - 1) * se * math.sqrt(max(1.0, q))
    pi_low, pi_high = prediction_interval(mu, se, tau2, k) or (None, None)
    tau2_dl = dersimonian_laird_tau2(effect, variance)
    mu_dl, w_dl = _weighted_mean(effect, variance, tau2_dl)
    half_dl = stats.norm.ppf(0.975) * math.sqrt(1 / w_dl.sum())
    return RandomEffectsFit(mu=mu, low=mu - half, high=mu + half, tau2=tau2, hksj_scale=q, se=se,
                            pi_low=pi_low, pi_high=pi_high, i2=i_squared(tau2, variance),
                            mu_dl=mu_dl, low_dl=mu_dl - half_dl, high_dl=mu_dl + half_dl,
                            tau2_dl=tau2_dl)


def prediction_interval(mu: float, se: float, tau2: float, k: int) -> tuple[float, float] | None:
    """mu +- t(k - 2) sqrt(tau^2 + SE^2), from three cohorts on."""
    if k < 3:
        return None
    half = stats.t.ppf(0.975, k - 2) * math.sqrt(tau2 + se ** 2)
    return mu - half, mu + half
