"""Pooled proportions per scenario x therapy class (x MSC source, and all MSC sources) x diabetes
type x outcome x definition x follow-up window (the rules of ``int_pooled_outcomes`` and
``marts.therapy_outcome_comparison``). In order:

1. Scenarios are precomputed: verified only (curator-verified and registry-posted rows, not
   'secondary' ones), include overlapping reports (those set aside by seed cohort_overlaps),
   randomised only; each combination is a row set of its own.
2. Only effects that can be pooled (int_outcome_effects.is_poolable) enter.
3. The unit is the cohort: per cohort, the report with the most participants is used (then the
   later publication); reports of one cohort tied on both are a conflict: neither is used and
   the row says so. Within that report each arm uses its latest timepoint in the window, and
   arms of one cohort are combined (events and participants summed), never counted as studies.
4. One cohort: the raw proportion with its exact Clopper-Pearson interval.
   Two or more, every cohort with some but not all events: the normal-normal random-effects
   model on logits (``random_effects``: Paule-Mandel tau^2, HKSJ interval with Knapp-Hartung's
   ad hoc max(1, q), prediction interval t(k-2) from three cohorts on), with the binomial-normal
   model (``binomial_normal``) and DerSimonian-Laird beside.
   Two or more with a cohort at 0 or all events: the binomial-normal model (ML, Wald z
   interval) is the estimate; DerSimonian-Laird (0.5 continuity correction) beside. Every
   cohort at 0 events (or every one at all events): no model has a finite estimate; the summed
   counts with their exact interval, which assumes one common proportion.
Diabetes types are never pooled together. Caveats are listed per row; "last follow-up" rows
carry the range of follow-up months of the facts they pool.

Cohort and report selection are frame operations over all scenarios and groups at once; only
the model fits loop, once per group of two or more cohorts.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
from scipy import special

from flows.evidence import binomial_normal, random_effects
from flows.evidence.effects import clopper_pearson, truthy

SCENARIO = ["verified_only", "include_overlapping", "randomised_only"]
SCENARIOS = list(itertools.product([False, True], repeat=3))
GROUP = ["therapy_class", "msc_source", "diabetes_type", "outcome", "definition_id", "window_id"]
KEY = SCENARIO + GROUP
VERIFIED = {"yes", "registry_posted"}
ALL_MSC = "all sources"
NONE = "\x00"  # stands for a NULL key while grouping
# With a positive Paule-Mandel tau2 the generalised Q equals k - 1, so q is 1 up to rounding:
# the ad hoc rule bites (and is named) only when q is below 1 by more than that.
Q_TOLERANCE = 1e-9

OUTPUT_TYPES = {
    "verified_only": "boolean", "include_overlapping": "boolean", "randomised_only": "boolean",
    "therapy_class": "varchar", "msc_source": "varchar", "diabetes_type": "varchar",
    "outcome": "varchar", "definition_id": "varchar", "window_id": "varchar",
    "k_cohorts": "integer", "n_participants": "integer", "n_events": "integer",
    "estimate": "double", "ci_low": "double", "ci_high": "double", "pi_low": "double",
    "pi_high": "double", "tau2": "double", "tau2_dl": "double", "i2": "double",
    "estimate_dl": "double", "ci_low_dl": "double", "ci_high_dl": "double",
    "estimate_glmm": "double", "ci_low_glmm": "double", "ci_high_glmm": "double",
    "tau2_glmm": "double", "raw_proportion": "double", "method": "varchar",
    "caveats": "varchar[]", "cohort_ids": "varchar[]", "study_ids": "varchar[]",
    "outcome_fact_ids": "varchar[]", "timepoints_used": "varchar[]",
    "reports_set_aside": "varchar[]",
    # what a forest plot draws per cohort, in cohort_ids order
    "cohort_events": "integer[]", "cohort_participants": "integer[]",
    "cohort_estimates": "double[]", "cohort_ci_low": "double[]", "cohort_ci_high": "double[]",
    "cohort_weights": "double[]",
}

SINGLE_COHORT = "single cohort: raw proportion, Clopper-Pearson exact 95 % CI"
NO_COHORT = "no cohort left to pool"
HKSJ = ("random effects, logit scale: Paule-Mandel tau2, Hartung-Knapp-Sidik-Jonkman 95 % CI "
        "(t, k-1 df) with Knapp-Hartung's ad hoc max(1, q); binomial-normal model (ML) and "
        "DerSimonian-Laird beside")
GLMM = ("binomial-normal random-effects model (logistic, ML, adaptive Gauss-Hermite quadrature "
        "with 7 nodes, as metafor rma.glmm PLO), Wald z 95 % CI, because a cohort has 0 or all "
        "events (no continuity correction); DerSimonian-Laird (0.5 continuity correction) beside")
NO_FINITE_ESTIMATE = ("every cohort has {which}: no random-effects model has a finite estimate; "
                      "summed counts with the Clopper-Pearson exact 95 % CI (assumes one common "
                      "proportion)")
GLMM_FAILED = ("random effects, logit scale with a 0.5 continuity correction: Paule-Mandel "
               "tau2, Hartung-Knapp-Sidik-Jonkman 95 % CI (t, k-1 df) with Knapp-Hartung's ad hoc "
               "max(1, q), because the binomial-normal model has no finite maximum here; "
               "DerSimonian-Laird beside")
PREDICTION = "; 95 % prediction interval (t, k-2 df)"


def scenario_rows(effects: pd.DataFrame) -> pd.DataFrame:
    """Every scenario's rows stacked, MSC rows twice (their source, and 'all sources')."""
    frames = []
    verified = effects["verification_status"].isin(VERIFIED)
    overlap = truthy(effects["is_set_aside_overlap"])
    randomised = truthy(effects["is_randomised"])
    for verified_only, include_overlapping, randomised_only in SCENARIOS:
        keep = pd.Series(True, index=effects.index)
        if verified_only:
            keep &= verified
        if not include_overlapping:
            keep &= ~overlap
        if randomised_only:
            keep &= randomised
        rows = effects[keep]
        msc = rows[rows["therapy_class"] == "msc"].assign(msc_source=ALL_MSC)
        frames.append(pd.concat([rows, msc], ignore_index=True).assign(
            verified_only=verified_only, include_overlapping=include_overlapping,
            randomised_only=randomised_only))
    return pd.concat(frames, ignore_index=True)


def _latest_per_arm(rows: pd.DataFrame) -> pd.DataFrame:
    """Each arm of each report: its latest timepoint in the window (a numeric order)."""
    rows = rows.assign(_t=rows["timepoint_months"].astype(float).fillna(-1.0),
                       _arm=rows["arm"].fillna(NONE))
    rows = rows.sort_values(["gid", "cohort_id", "study_id", "_arm", "_t", "outcome_fact_id"],
                            kind="mergesort")
    return rows.drop_duplicates(["gid", "cohort_id", "study_id", "_arm"], keep="last")


def _reports(arms: pd.DataFrame) -> pd.DataFrame:
    """One row per group x cohort x report: its arms summed; which report each cohort uses."""
    arms = arms.assign(_year=arms["publication_year"].astype(float).fillna(0.0))
    reports = (arms.groupby(["gid", "cohort_id", "study_id"], sort=False)
               .agg(events=("events", "sum"), participants=("participants", "sum"),
                    year=("_year", "max"), arms=("_arm", "size"))
               .reset_index())
    reports = reports.sort_values(["gid", "cohort_id", "participants", "year", "study_id"],
                                  ascending=[True, True, False, False, True], kind="mergesort")
    cohort = reports.groupby(["gid", "cohort_id"], sort=False)
    reports["rank"] = cohort.cumcount()
    reports["reports"] = cohort["study_id"].transform("size")
    tied = ((reports["rank"] == 1)
            & (reports["participants"] == reports["participants"].shift(1))
            & (reports["year"] == reports["year"].shift(1)))
    reports["conflict"] = tied.groupby([reports["gid"], reports["cohort_id"]]).transform("any")
    reports["used"] = (reports["rank"] == 0) & ~reports["conflict"]
    return reports


def _group_caveats(reports: pd.DataFrame, used_arms: pd.DataFrame, windows: pd.Series,
                   gids: np.ndarray) -> dict[int, set[str]]:
    caveats: dict[int, set[str]] = {int(g): set() for g in gids}

    def add(gid_values, text):
        for gid in np.unique(gid_values):
            caveats[int(gid)].add(text)

    add(reports.loc[reports["conflict"], "gid"], "conflicting reports of one cohort (none used)")
    add(reports.loc[~reports["conflict"] & (reports["reports"] > 1), "gid"],
        "one report per cohort (the most complete)")
    add(reports.loc[reports["used"] & (reports["arms"] > 1), "gid"], "arms of one cohort combined")
    flags = used_arms.groupby("gid").agg(
        randomised=("is_randomised", "any"), secondary=("_secondary", "any"),
        derived=("is_count_derived", "any"), complement=("is_complement_converted", "any"),
        overlap=("is_set_aside_overlap", "any"))
    add(flags.index[~flags["randomised"]], "single-arm studies only")
    add(flags.index[flags["secondary"]], "includes secondary sources")
    add(flags.index[flags["overlap"]], "includes reports that may overlap another")
    add(flags.index[flags["derived"]], "includes counts derived from a proportion and its n")
    add(flags.index[flags["complement"]],
        "includes counts converted from the complementary definition")
    last = used_arms[used_arms["gid"].map(windows) == "last_followup"]
    for gid, months in last.groupby("gid"):
        low, high = months["followup_months_min"].min(), months["followup_months_max"].max()
        caveats[int(gid)].add(_last_followup_caveat(low, high))
    return caveats


def _last_followup_caveat(low: float, high: float) -> str:
    if pd.isna(low) or pd.isna(high):
        return "last follow-up: months not reported"
    if low == high:
        return f"last follow-up: {low:g} months"
    return f"last follow-up: {low:g} to {high:g} months"


def _sorted_lists(frame: pd.DataFrame, column: str, unique: bool = True) -> pd.Series:
    values = frame[["gid", column]].dropna()
    if unique:
        values = values.drop_duplicates()
    return values.sort_values(["gid", column]).groupby("gid")[column].agg(list)


def _expit(value):
    return None if value is None else float(special.expit(value))


def fit_cohorts(events: np.ndarray, totals: np.ndarray) -> tuple[dict, set[str]]:
    """The estimate and its columns for k >= 2 cohorts (rule 4)."""
    k = len(events)
    caveats = set()
    logits = random_effects.logit_effects(events, totals)
    normal = random_effects.fit(logits)
    row = {"estimate_dl": _expit(normal.mu_dl), "ci_low_dl": _expit(normal.low_dl),
           "ci_high_dl": _expit(normal.high_dl), "tau2_dl": normal.tau2_dl}
    if k < 3:
        caveats.add("fewer than 3 cohorts (no prediction interval)")
    all_or_none = np.all(events == 0) or np.all(events == totals)
    if all_or_none:
        low, high = clopper_pearson(np.array([events.sum()]), np.array([totals.sum()]))
        which = "0 events" if np.all(events == 0) else "all events"
        caveats.add(f"every cohort has {which}: no between-cohort variation can be estimated")
        return {**row, "estimate": float(events.sum() / totals.sum()), "ci_low": float(low[0]),
                "ci_high": float(high[0]),
                "method": NO_FINITE_ESTIMATE.format(which=which)}, caveats
    glmm = binomial_normal.fit(events, totals, start=(math.sqrt(normal.tau2), normal.mu))
    if glmm is not None:
        row.update(estimate_glmm=_expit(glmm.mu), ci_low_glmm=_expit(glmm.low),
                   ci_high_glmm=_expit(glmm.high), tau2_glmm=glmm.tau2)
    sparse = logits.corrected
    if sparse and glmm is not None:
        prediction = random_effects.prediction_interval(glmm.mu, glmm.se, glmm.tau2, k)
        i2 = random_effects.i_squared(glmm.tau2, logits.variance)
        row.update(estimate=_expit(glmm.mu), ci_low=_expit(glmm.low), ci_high=_expit(glmm.high),
                   tau2=glmm.tau2, i2=i2, method=GLMM + (PREDICTION if prediction else ""))
    else:
        prediction = (normal.pi_low, normal.pi_high) if normal.pi_low is not None else None
        row.update(estimate=_expit(normal.mu), ci_low=_expit(normal.low),
                   ci_high=_expit(normal.high), tau2=normal.tau2, i2=normal.i2,
                   method=(GLMM_FAILED if sparse else HKSJ) + (PREDICTION if prediction else ""))
        if normal.hksj_scale < 1 - Q_TOLERANCE:
            caveats.add("HKSJ scale q below 1 raised to 1 (Knapp-Hartung ad hoc rule)")
        if sparse:
            caveats.add("binomial-normal model has no finite maximum: continuity-corrected "
                        "logits used")
    if prediction is not None:
        row.update(pi_low=_expit(prediction[0]), pi_high=_expit(prediction[1]))
    if row["i2"] > 0.5:
        caveats.add("I2 above 50 %")
    return row, caveats


def cohort_weights(events: np.ndarray, totals: np.ndarray, tau2: float | None) -> np.ndarray:
    """Each cohort's share of the pooled weight: 1 / (v + tau2) on the logit scale (v with the
    0.5 continuity correction where a cohort has 0 or all events); a single cohort has all of
    it; summed counts (every cohort at 0 or all events) weigh each cohort by its participants."""
    if len(events) == 1:
        return np.array([1.0])
    if tau2 is None or not math.isfinite(tau2):
        return totals / totals.sum()
    raw = 1 / (random_effects.logit_effects(events, totals).variance + tau2)
    return raw / raw.sum()


def cohort_columns(used: pd.DataFrame, fits: dict) -> pd.DataFrame:
    """Per group: each used cohort's events, participants, raw proportion with its exact
    interval, and weight, in cohort_ids order (the order of _sorted_lists)."""
    used = used.sort_values(["gid", "cohort_id"], kind="mergesort")
    events = used["events"].to_numpy(float)
    totals = used["participants"].to_numpy(float)
    low, high = clopper_pearson(events, totals)
    used = used.assign(_estimate=events / totals, _low=low, _high=high, _weight=np.nan)
    for gid, rows in used.groupby("gid", sort=False):
        tau2 = fits.get(gid, {}).get("tau2")
        used.loc[rows.index, "_weight"] = cohort_weights(
            rows["events"].to_numpy(float), rows["participants"].to_numpy(float),
            None if tau2 is None or pd.isna(tau2) else float(tau2))
    grouped = used.groupby("gid", sort=True)
    return pd.DataFrame({
        "cohort_events": grouped["events"].agg(lambda v: [int(x) for x in v]),
        "cohort_participants": grouped["participants"].agg(lambda v: [int(x) for x in v]),
        "cohort_estimates": grouped["_estimate"].agg(list),
        "cohort_ci_low": grouped["_low"].agg(list),
        "cohort_ci_high": grouped["_high"].agg(list),
        "cohort_weights": grouped["_weight"].agg(list),
    })


def pooled_outcomes(effects: pd.DataFrame) -> pd.DataFrame:
    """``int_outcome_effects`` rows -> ``int_pooled_outcomes`` rows (one per scenario x group)."""
    effects = effects[truthy(effects["is_poolable"])]
    if effects.empty:
        return pd.DataFrame(columns=list(OUTPUT_TYPES))
    rows = scenario_rows(effects)
    for column in GROUP:
        rows[column] = rows[column].astype(object).where(rows[column].notna(), NONE)
    rows["gid"] = rows.groupby(KEY, sort=True).ngroup()
    for flag in ("is_randomised", "is_count_derived", "is_complement_converted",
                 "is_set_aside_overlap"):
        rows[flag] = truthy(rows[flag])
    rows["_secondary"] = rows["verification_status"] == "secondary"
    groups = rows.drop_duplicates("gid").set_index("gid")[KEY].sort_index()

    arms = _latest_per_arm(rows)
    reports = _reports(arms)
    used = reports[reports["used"]]
    used_arms = arms.merge(used[["gid", "cohort_id", "study_id"]],
                           on=["gid", "cohort_id", "study_id"])
    caveats = _group_caveats(reports, used_arms, groups["window_id"], groups.index.to_numpy())

    per_group = used.groupby("gid").agg(k_cohorts=("cohort_id", "size"),
                                        n_participants=("participants", "sum"),
                                        n_events=("events", "sum"))
    out = groups.join(per_group)
    out["k_cohorts"] = out["k_cohorts"].fillna(0).astype(int)
    out["cohort_ids"] = _sorted_lists(used, "cohort_id", unique=False)
    out["study_ids"] = _sorted_lists(used, "study_id")
    out["outcome_fact_ids"] = _sorted_lists(used_arms, "outcome_fact_id", unique=False)
    out["timepoints_used"] = _sorted_lists(used_arms, "timepoint_text")
    out["reports_set_aside"] = _sorted_lists(reports[~reports["used"]], "study_id")
    out["n_participants"] = out["n_participants"].fillna(0).astype(int)
    out["raw_proportion"] = out["n_events"] / out["n_participants"].where(out["k_cohorts"] > 0)
    for column in ("cohort_ids", "study_ids", "outcome_fact_ids", "timepoints_used"):
        out[column] = [v if isinstance(v, list) else None for v in out[column]]
    out["reports_set_aside"] = [v if isinstance(v, list) else [] for v in out["reports_set_aside"]]

    fits = {}
    one = out.index[out["k_cohorts"] == 1]
    low, high = clopper_pearson(out.loc[one, "n_events"].to_numpy(float),
                                out.loc[one, "n_participants"].to_numpy(float))
    for gid, lo, hi in zip(one, low, high, strict=True):
        fits[gid] = {"estimate": out.at[gid, "raw_proportion"], "ci_low": float(lo),
                     "ci_high": float(hi), "method": SINGLE_COHORT}
        caveats[int(gid)].add("single cohort")
    for gid in out.index[out["k_cohorts"] == 0]:
        fits[gid] = {"method": NO_COHORT}
    several = used[used["gid"].isin(out.index[out["k_cohorts"] >= 2])]
    fitted: dict[tuple, tuple[dict, set[str]]] = {}  # scenarios often share their cohorts
    for gid, cohorts in several.groupby("gid", sort=True):
        counts = (tuple(cohorts["events"].astype(int)), tuple(cohorts["participants"].astype(int)))
        if counts not in fitted:
            fitted[counts] = fit_cohorts(np.array(counts[0], dtype=float),
                                              np.array(counts[1], dtype=float))
        fit, extra = fitted[counts]
        fits[gid] = dict(fit)
        caveats[int(gid)] |= extra

    out = out.join(pd.DataFrame.from_dict(fits, orient="index"))
    out = out.join(cohort_columns(used, fits))
    for column in ("cohort_events", "cohort_participants", "cohort_estimates", "cohort_ci_low",
                   "cohort_ci_high", "cohort_weights"):
        out[column] = [v if isinstance(v, list) else [] for v in out[column]]
    out["caveats"] = [sorted(caveats[int(g)]) for g in out.index]
    for column in GROUP:
        out[column] = out[column].where(out[column] != NONE, None)
    out["msc_source"] = out["msc_source"].where(out["msc_source"] != "", None)
    return out.reindex(columns=list(OUTPUT_TYPES)).reset_index(drop=True)
