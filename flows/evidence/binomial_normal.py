"""The binomial-normal random-effects model for proportions (a logistic mixed model): events_i ~
Binomial(n_i, expit(mu + tau * u_i)), u_i ~ N(0, 1), fitted by maximum likelihood. It needs no
continuity correction, so it is the model for cohorts with 0 or all events.

It is fitted the way metafor's ``rma.glmm(measure="PLO")`` fits it through lme4's ``glmer``
(``nAGQ = 7``): the likelihood of each cohort is integrated by adaptive Gauss-Hermite quadrature
with 7 nodes, centred on the conditional mode of u_i and scaled by the curvature there; the
deviance is maximised over (tau, mu); the standard error of mu comes from the inverse of the
Hessian of the deviance in (tau, mu), as lme4's ``vcov`` takes it (lme4 differentiates with a
step of 1e-4, which carries the rounding of its inner iterations: about 1e-5 relative when tau^2
is large; here the step is larger and Richardson-extrapolated); the interval is Wald's (z). I^2 is tau^2 / (tau^2 + the typical within-cohort variance) with the 0.5-corrected
logit variances, as metafor computes it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy import optimize, special, stats

NODES, WEIGHTS = hermegauss(7)
WEIGHTS = WEIGHTS / math.sqrt(2 * math.pi)  # weights of the standard normal density
HESSIAN_STEP = 4e-3
NEWTON_STEP = 1e-4
TAU_LIMIT = 10.0  # tau beyond this (tau^2 > 100 on the logit scale): no finite maximum


@dataclass(frozen=True)
class BinomialNormalFit:
    mu: float
    se: float
    tau2: float
    low: float
    high: float


def _deviance_residuals(events: np.ndarray, totals: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """The binomial deviance of each cohort at logit eta, computed from eta (no overflow for
    probabilities that round to 0 or 1)."""
    failures = totals - events
    saturated = special.xlogy(events, events / totals) + special.xlogy(failures, failures / totals)
    log_likelihood = events * eta - totals * np.logaddexp(0.0, eta)
    return 2 * (saturated - log_likelihood)


def _conditional_modes(tau: float, mu: float, events, totals) -> np.ndarray:
    """u_i maximising each cohort's binomial likelihood times the N(0, 1) density (Newton)."""
    u = np.zeros_like(events)
    if tau == 0:
        return u
    for _ in range(200):
        p = special.expit(mu + tau * u)
        gradient = tau * (events - totals * p) - u
        curvature = tau * tau * totals * p * (1 - p) + 1
        # a concave objective, but a full Newton step can overshoot far from the mode
        step = np.clip(gradient / curvature, -1.0, 1.0)
        u = u + step
        if np.max(np.abs(step)) < 1e-13:
            break
    return u


def deviance(params: np.ndarray, events: np.ndarray, totals: np.ndarray) -> float:
    """-2 log likelihood (up to a constant) by 7-node adaptive Gauss-Hermite quadrature, as lme4
    computes it for nAGQ = 7. Even in tau, so tau may be searched over the whole line."""
    tau, mu = float(params[0]), float(params[1])
    u0 = _conditional_modes(tau, mu, events, totals)
    p0 = special.expit(mu + tau * u0)
    at_mode = _deviance_residuals(events, totals, mu + tau * u0) + u0 ** 2
    curvature = 1 + tau * tau * totals * p0 * (1 - p0)
    scale = 1 / np.sqrt(curvature)
    u = u0[:, None] + NODES[None, :] * scale[:, None]
    at_nodes = _deviance_residuals(events[:, None], totals[:, None], mu + tau * u) + u ** 2
    terms = np.exp(-(at_nodes - at_mode[:, None]) / 2 + NODES[None, :] ** 2 / 2) @ WEIGHTS
    value = float(np.sum(at_mode + np.log(curvature) - 2 * np.log(terms)))
    return value if math.isfinite(value) else math.inf


def _derivatives(function, x: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Gradient and Hessian by central differences (lme4's deriv12 formulas, no bounds)."""
    size = len(x)
    gradient, hessian = np.empty(size), np.empty((size, size))
    centre = function(x)
    unit = np.eye(size) * step
    for j in range(size):
        plus, minus = function(x + unit[j]), function(x - unit[j])
        gradient[j] = (plus - minus) / (2 * step)
        hessian[j, j] = (plus - 2 * centre + minus) / step ** 2
        for i in range(j):
            hessian[i, j] = hessian[j, i] = (
                function(x + unit[i] + unit[j]) - function(x + unit[i] - unit[j])
                - function(x - unit[i] + unit[j]) + function(x - unit[i] - unit[j])
            ) / (4 * step ** 2)
    return gradient, hessian


def _hessian(function, x: np.ndarray, step: float = HESSIAN_STEP) -> np.ndarray:
    """Central differences at two steps, Richardson-extrapolated (error of order step^4; the
    deviance's rounding, about 1e-12, divided by step^2 stays near 1e-7)."""
    coarse = _derivatives(function, x, step)[1]
    fine = _derivatives(function, x, step / 2)[1]
    return (4 * fine - coarse) / 3


def _newton(function, x: np.ndarray, value: float) -> tuple[np.ndarray, float]:
    """Newton steps with step halving from near the optimum (Nelder-Mead's end) to where the
    step is below 1e-10: quadratic convergence, a few dozen deviance evaluations."""
    for _ in range(30):
        gradient, hessian = _derivatives(function, x, NEWTON_STEP)
        if not np.all(np.linalg.eigvalsh(hessian) > 0):
            break  # not in a convex neighbourhood: keep the point reached
        delta = np.linalg.solve(hessian, gradient)
        scale = 1.0
        while scale > 1e-6:
            candidate = x - scale * delta
            candidate_value = function(candidate)
            if candidate_value <= value:
                break
            scale /= 2
        else:
            break
        x, value = candidate, candidate_value
        if np.max(np.abs(scale * delta)) < 1e-10:
            break
    return x, value


def fit(events, totals, start: tuple[float, float] | None = None) -> BinomialNormalFit | None:
    """The ML fit, or None when the likelihood has no finite maximum (every cohort at 0 events,
    or every cohort at all events, or cohorts so far apart that tau grows without bound).
    ``start``: (tau, mu) to start the search from (e.g. the Paule-Mandel fit)."""
    events = np.asarray(events, dtype=float)
    totals = np.asarray(totals, dtype=float)
    if np.all(events == 0) or np.all(events == totals):
        return None
    pooled = events.sum() / totals.sum()
    pooled_logit = math.log(pooled / (1 - pooled))
    tau0, mu0 = start if start is not None else (0.5, pooled_logit)

    def objective(x):
        return deviance(x, events, totals)

    # Nelder-Mead to the neighbourhood of the optimum, Newton from there
    result = optimize.minimize(objective, np.array([max(tau0, 0.3), mu0]), method="Nelder-Mead",
                               options={"xatol": 1e-5, "fatol": 1e-8, "maxiter": 2000,
                                        "maxfev": 4000})
    x, value = _newton(objective, np.asarray(result.x, dtype=float), float(result.fun))
    tau, mu = abs(float(x[0])), float(x[1])
    # the boundary tau = 0 (lme4 checks it too); 1e-9: rounding in a deviance of order k
    if objective(np.array([0.0, pooled_logit])) <= value + 1e-9:
        tau, mu = 0.0, pooled_logit
    if tau > TAU_LIMIT or not math.isfinite(mu):
        return None
    variance = _variance_of_mu(objective, tau, mu, events, totals)
    se = math.sqrt(variance)
    z = stats.norm.ppf(0.975)
    return BinomialNormalFit(mu=mu, se=se, tau2=tau * tau, low=mu - z * se, high=mu + z * se)


def _variance_of_mu(objective, tau: float, mu: float, events, totals) -> float:
    """lme4's vcov: twice the inverse Hessian of the deviance in (tau, mu), its mu element; when
    that is not positive, the variance conditional on tau (lme4's fallback to RX)."""
    try:
        variance = float(2 * np.linalg.inv(_hessian(objective, np.array([tau, mu])))[1, 1])
    except np.linalg.LinAlgError:
        variance = math.nan
    if variance > 0:
        return variance
    p = special.expit(mu + tau * _conditional_modes(tau, mu, events, totals))
    weights = totals * p * (1 - p)
    return 1 / float(np.sum(weights / (1 + tau * tau * weights)))
