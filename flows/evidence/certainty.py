"""An automatic GRADE-style certainty rating for every row of ``therapy_outcome_comparison``.

It follows the GRADE approach's structure (a starting level from the design, then one judgement
per domain that can rate the evidence down) with fixed, published rules, so that every rating
can be recomputed and argued with. It is NOT a guideline panel's judgement: a panel weighs
context these rules cannot see. The rules (README, "Certainty of the evidence"):

- design: every cohort from a randomised trial -> start high; otherwise (non-randomised or
  single-arm cohorts) -> start low;
- risk of bias: the curators' ``risk_of_bias`` per result (worst judgement among the rows a
  cohort contributes); cohorts judged high hold more than half the participants -> very serious
  (-2); high or some concerns hold more than half -> serious (-1); no judgement at all -> "not
  assessed" (no rating down, and said so);
- inconsistency: I2 >= 75 % with a 95 % prediction interval wider than half the 0-1 scale ->
  very serious (-2); I2 >= 50 % -> serious (-1); one cohort -> not assessable;
- imprecision: the 95 % CI wider than 0.40 -> very serious (-2); wider than 0.20, or fewer
  participants than the optimal information size (OIS) -> serious (-1). The OIS is the number
  of participants that estimates a proportion to +-10 percentage points with 95 % confidence in
  the worst case (p = 0.5): 1.96^2 x 0.25 / 0.1^2 = 96.04 -> 97;
- indirectness: each of "a definition that is not the outcome's headline one", "type 1 and
  type 2 diabetes together", "MSCs of every source pooled", "follow-up that differs between
  cohorts (last follow-up)" is a concern: one -> serious (-1), two or more -> very serious (-2);
- publication bias: fewer than 10 cohorts -> not assessable (a funnel-plot test has no power),
  said so; from 10 on, Egger's regression test on the logit scale, p < 0.10 -> suspected (-1).

The levels removed are summed and the result floored at very low. Nothing rates up.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from scipy import stats

LEVELS = {4: "high", 3: "moderate", 2: "low", 1: "very low"}
RULES_VERSION = "betacell-certainty-1"
METHOD = ("automatic GRADE-style rating (Betacell rules " + RULES_VERSION + "), not a guideline "
          "panel's judgement")

Z_95 = 1.959963984540054
OIS_HALF_WIDTH = 0.10
OPTIMAL_INFORMATION_SIZE = math.ceil(Z_95 ** 2 * 0.25 / OIS_HALF_WIDTH ** 2)  # 97
CI_WIDTH_SERIOUS = 0.20
CI_WIDTH_VERY_SERIOUS = 0.40
I2_SERIOUS = 0.50
I2_VERY_SERIOUS = 0.75
PI_WIDTH_VERY_SERIOUS = 0.50
PUBLICATION_BIAS_MIN_K = 10
EGGER_ALPHA = 0.10
ROB_ORDER = {"low": 0, "some_concerns": 1, "high": 2}
ROB_TOOL_LABELS = {"rob2": "RoB 2", "robins_i": "ROBINS-I", "nih_case_series": "NIH case series"}


@dataclass(frozen=True)
class Cohort:
    """One cohort as the pooled estimate uses it (its facts' events and participants summed)."""

    cohort_id: str
    events: int
    participants: int
    randomised: bool
    risk_of_bias: str | None = None  # worst judgement among the facts used; None: not assessed
    risk_of_bias_tools: tuple[str, ...] = ()


@dataclass(frozen=True)
class Estimate:
    """What the rating reads from one comparison row."""

    k_cohorts: int
    n_participants: int
    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    pi_low: float | None = None
    pi_high: float | None = None
    i2: float | None = None
    definition_id: str = ""
    definition_label: str = ""
    is_headline_definition: bool = True
    diabetes_type: str = "T1D"
    msc_source: str | None = None
    window_id: str = ""


@dataclass(frozen=True)
class Judgement:
    rating: str
    downgrade: int
    reason: str


@dataclass(frozen=True)
class Rating:
    certainty: str | None
    start: str | None
    design_reason: str
    domains: dict[str, Judgement] = field(default_factory=dict)

    @property
    def downgrade(self) -> int:
        return sum(j.downgrade for j in self.domains.values())


DOMAINS = ("risk_of_bias", "inconsistency", "imprecision", "indirectness", "publication_bias")


def rate(estimate: Estimate, cohorts: Sequence[Cohort]) -> Rating:
    """The certainty of one comparison row from its cohorts (one judgement per domain)."""
    if estimate.estimate is None or estimate.ci_low is None or estimate.ci_high is None \
            or not cohorts:
        reason = "not rated: the row has no estimate"
        return Rating(None, None, reason,
                      {d: Judgement("not rated", 0, reason) for d in DOMAINS})
    start, design_reason = design(cohorts)
    domains = {
        "risk_of_bias": risk_of_bias(cohorts),
        "inconsistency": inconsistency(estimate),
        "imprecision": imprecision(estimate),
        "indirectness": indirectness(estimate),
        "publication_bias": publication_bias(cohorts),
    }
    level = max(1, start - sum(j.downgrade for j in domains.values()))
    return Rating(LEVELS[level], LEVELS[start], design_reason, domains)


def design(cohorts: Sequence[Cohort]) -> tuple[int, str]:
    randomised = sum(c.randomised for c in cohorts)
    k = len(cohorts)
    if randomised == k:
        return 4, f"all {_cohorts(k)} from randomised trials: starts high"
    if randomised == 0:
        return 2, f"{_cohorts(k, 'non-randomised or single-arm')}: starts low"
    return 2, (f"{k - randomised} of {_cohorts(k)} non-randomised or single-arm: starts low")


def risk_of_bias(cohorts: Sequence[Cohort]) -> Judgement:
    assessed = [c for c in cohorts if c.risk_of_bias is not None]
    if not assessed:
        return Judgement("not assessed", 0, "not assessed: no risk-of-bias judgement in the "
                                            "sheets for these cohorts; not rated down, so the "
                                            "rating may be too high")
    total = sum(c.participants for c in cohorts)
    high = sum(c.participants for c in assessed if c.risk_of_bias == "high")
    concerns = sum(c.participants for c in assessed if c.risk_of_bias in {"high", "some_concerns"})
    tools = sorted({ROB_TOOL_LABELS.get(t, t) for c in assessed for t in c.risk_of_bias_tools})
    counted = (f"{len(assessed)} of {_cohorts(len(cohorts))} assessed"
               + (f" ({', '.join(tools)})" if tools else ""))
    if total and high / total > 0.5:
        return Judgement("very serious", 2, f"{counted}; cohorts at high risk hold "
                                            f"{_share(high, total)} of the participants")
    if total and concerns / total > 0.5:
        return Judgement("serious", 1, f"{counted}; cohorts at high risk or with some concerns "
                                       f"hold {_share(concerns, total)} of the participants")
    return Judgement("not serious", 0, f"{counted}; cohorts at low risk hold most participants"
                     + ("" if len(assessed) == len(cohorts) else
                        " (the cohorts not assessed are not counted against it)"))


def inconsistency(estimate: Estimate) -> Judgement:
    if estimate.k_cohorts < 2 or estimate.i2 is None:
        return Judgement("not assessable", 0, "not assessable: a single cohort")
    i2 = estimate.i2
    pi_width = (None if estimate.pi_low is None or estimate.pi_high is None
                else estimate.pi_high - estimate.pi_low)
    shown = f"I2 = {i2:.0%}" + ("" if pi_width is None else
                                f", 95 % prediction interval {estimate.pi_low:.2f}-"
                                f"{estimate.pi_high:.2f}")
    if i2 >= I2_VERY_SERIOUS and pi_width is not None and pi_width > PI_WIDTH_VERY_SERIOUS:
        return Judgement("very serious", 2, f"{shown}: the cohorts disagree widely")
    if i2 >= I2_SERIOUS:
        return Judgement("serious", 1, f"{shown}: substantial heterogeneity")
    return Judgement("not serious", 0, f"{shown}: no important heterogeneity")


def imprecision(estimate: Estimate) -> Judgement:
    width = estimate.ci_high - estimate.ci_low
    n = estimate.n_participants
    shown = (f"95 % CI {estimate.ci_low:.2f}-{estimate.ci_high:.2f} (width {width:.2f}), "
             f"N = {n} against an optimal information size of {OPTIMAL_INFORMATION_SIZE}")
    if width > CI_WIDTH_VERY_SERIOUS:
        return Judgement("very serious", 2, f"{shown}: the interval is wider than "
                                            f"{CI_WIDTH_VERY_SERIOUS:.2f}")
    why = ([f"the interval is wider than {CI_WIDTH_SERIOUS:.2f}"] if width > CI_WIDTH_SERIOUS
           else []) + (["fewer participants than the OIS"] if n < OPTIMAL_INFORMATION_SIZE else [])
    if why:
        return Judgement("serious", 1, f"{shown}: {' and '.join(why)}")
    return Judgement("not serious", 0, f"{shown}: precise enough")


def indirectness(estimate: Estimate) -> Judgement:
    concerns = indirectness_concerns(estimate)
    if not concerns:
        return Judgement("not serious", 0, "the outcome's headline definition, one diabetes "
                                           "type, one product, a fixed follow-up window")
    if len(concerns) == 1:
        return Judgement("serious", 1, concerns[0])
    return Judgement("very serious", 2, "; ".join(concerns))


def indirectness_concerns(estimate: Estimate) -> list[str]:
    concerns = []
    if not estimate.is_headline_definition:
        concerns.append(f"definition '{estimate.definition_label or estimate.definition_id}' is "
                        "not the outcome's headline definition")
    if estimate.diabetes_type not in {"T1D", "T2D"}:
        concerns.append(f"mixed population ({estimate.diabetes_type})")
    if estimate.msc_source == "all sources":
        concerns.append("mixed products: MSCs of every source pooled")
    if estimate.window_id == "last_followup":
        concerns.append("follow-up differs between cohorts (last follow-up)")
    return concerns


def publication_bias(cohorts: Sequence[Cohort]) -> Judgement:
    k = len(cohorts)
    if k < PUBLICATION_BIAS_MIN_K:
        return Judgement("not assessable", 0, f"not assessable: {_cohorts(k)}, fewer than "
                                              f"{PUBLICATION_BIAS_MIN_K} (a funnel-plot test "
                                              "has no power); not rated down")
    p_value = egger_p_value([c.events for c in cohorts], [c.participants for c in cohorts])
    if math.isnan(p_value):
        return Judgement("not assessable", 0, f"not assessable: Egger's test cannot be computed "
                                              f"for these {_cohorts(k)} (no spread in their "
                                              "precision or no residual); not rated down")
    shown = f"Egger's test on the logit scale, {_cohorts(k)}: p = {p_value:.3f}"
    if p_value < EGGER_ALPHA:
        return Judgement("suspected", 1, f"{shown} (small-study effects)")
    return Judgement("undetected", 0, shown)


def egger_p_value(events: Sequence[int], totals: Sequence[int]) -> float:
    """Egger's regression test: standardised logit effect on precision, intercept = 0 (t, k-2
    df). 0/n and n/n get 0.5 added to events and non-events, as in the pooling."""
    effects, precisions = [], []
    for e, n in zip(events, totals, strict=True):
        if e in (0, n):
            e, n = e + 0.5, n + 1.0
        se = math.sqrt(1 / e + 1 / (n - e))
        effects.append(math.log(e / (n - e)) / se)
        precisions.append(1 / se)
    if max(precisions) - min(precisions) < 1e-12:  # one precision for all: nothing to regress
        return math.nan
    fit = stats.linregress(precisions, effects)
    if not fit.intercept_stderr > 0:  # the points lie on a line: no residual to test against
        return math.nan
    t_value = fit.intercept / fit.intercept_stderr
    return float(2 * stats.t.sf(abs(t_value), len(effects) - 2))


def _cohorts(k: int, kind: str = "") -> str:
    return f"{k} {kind + ' ' if kind else ''}cohort{'s' if k != 1 else ''}"


def _share(part: int, total: int) -> str:
    return f"{part / total:.0%}"


# The frame-level adapter the dbt model calls ---------------------------------------------------

GRAIN = ("verified_only", "include_overlapping", "randomised_only", "therapy_class",
         "msc_source", "diabetes_type", "outcome", "definition_id", "window_id")
OUTPUT_TYPES = {
    **{name: "boolean" for name in GRAIN[:3]},
    **{name: "varchar" for name in GRAIN[3:]},
    "certainty": "varchar", "certainty_start": "varchar", "certainty_downgrade": "integer",
    "certainty_design": "varchar",
    **{f"certainty_{d}{suffix}": "varchar" for d in DOMAINS for suffix in ("", "_reason")},
    "certainty_method": "varchar",
}


def worst_risk_of_bias(judgements: Iterable[str | None]) -> str | None:
    known = [j for j in judgements if j is not None]
    return max(known, key=ROB_ORDER.__getitem__) if known else None


def comparison_cohorts(fact_ids: Sequence[str], facts: dict[str, dict]) -> list[Cohort]:
    """The cohorts behind one row, rebuilt from the facts it used (events and participants of a
    cohort's facts summed, as the pooling combines the arms of one cohort)."""
    grouped: dict[str, list[dict]] = {}
    for fact_id in fact_ids:
        fact = facts[fact_id]
        grouped.setdefault(fact["cohort_id"], []).append(fact)
    return [Cohort(cohort_id, sum(int(f["events"]) for f in used),
                   sum(int(f["participants"]) for f in used),
                   any(bool(f["is_randomised"]) for f in used),
                   worst_risk_of_bias(f.get("risk_of_bias") for f in used),
                   tuple(sorted({f["risk_of_bias_tool"] for f in used
                                 if f.get("risk_of_bias_tool")})))
            for cohort_id, used in sorted(grouped.items())]


def rating_columns(rating: Rating) -> dict[str, object]:
    columns: dict[str, object] = {
        "certainty": rating.certainty, "certainty_start": rating.start,
        "certainty_downgrade": rating.downgrade if rating.certainty else None,
        "certainty_design": rating.design_reason, "certainty_method": METHOD}
    for domain, judgement in rating.domains.items():
        columns[f"certainty_{domain}"] = judgement.rating
        columns[f"certainty_{domain}_reason"] = judgement.reason
    return columns


def rate_comparisons(pooled: Iterable[dict], facts: dict[str, dict],
                     headline_definitions: dict[str, tuple[str, bool]]) -> list[dict]:
    """One output row per pooled row: its grain and its rating. ``facts`` maps outcome fact ids
    to cohort_id, events, participants, is_randomised, risk_of_bias, risk_of_bias_tool;
    ``headline_definitions`` maps definition ids to (label, is_headline)."""
    out = []
    for row in pooled:
        label, is_headline = headline_definitions.get(row["definition_id"], ("", False))
        estimate = Estimate(
            k_cohorts=int(row["k_cohorts"]), n_participants=int(row["n_participants"] or 0),
            estimate=_number(row.get("estimate")), ci_low=_number(row.get("ci_low")),
            ci_high=_number(row.get("ci_high")), pi_low=_number(row.get("pi_low")),
            pi_high=_number(row.get("pi_high")), i2=_number(row.get("i2")),
            definition_id=row["definition_id"], definition_label=label,
            is_headline_definition=is_headline, diabetes_type=row["diabetes_type"],
            msc_source=row.get("msc_source"), window_id=row["window_id"])
        fact_ids = row.get("outcome_fact_ids")
        cohorts = comparison_cohorts([] if fact_ids is None else list(fact_ids), facts)
        out.append({**{name: row.get(name) for name in GRAIN},
                    **rating_columns(rate(estimate, cohorts))})
    return out


def _number(value: object) -> float | None:
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    return None if math.isnan(number) else number
