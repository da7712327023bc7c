"""Random-effects pooling per therapy class (and MSC source) x outcome x diabetes type.

Proportions (events / participants) are pooled on the logit scale with DerSimonian-Laird random
effects (statsmodels.stats.meta_analysis.combine_effects) and back-transformed; a 0.5 continuity
correction is applied to a study with 0 or all events. Means with a dispersion (SD or SE) and n
are pooled by inverse variance on their own scale. Each study arm contributes one effect (its
longest timepoint); the other timepoints are counted in rows_other_timepoints. Overlapping cohorts and unverified rows are
left out unless the vars include_overlapping_cohorts / include_unverified are true; both are
counted. Control arms (placebo, standard care, ...) and the catch-all outcome "other" are never
pooled. One row per group, with the outcome_fact_ids behind it.
"""

import math

import numpy as np
import pandas as pd
from statsmodels.stats.meta_analysis import combine_effects

GROUP = ["therapy_class", "msc_source", "outcome", "diabetes_type", "measure", "unit_normalised"]
Z95 = 1.959963984540054


def _logit(p):
    return math.log(p / (1 - p))


def _expit(x):
    return 1 / (1 + math.exp(-x))


def _random_effects(effect, variance):
    """DerSimonian-Laird via statsmodels. When the studies agree exactly (Q = 0) statsmodels
    0.15 returns a negative tau2 and NaN random-effects row; DL truncates tau2 at 0, where the
    random-effects estimate equals the fixed-effect one, so that row is used instead."""
    result = combine_effects(effect, variance, method_re="dl", use_t=False)
    frame = result.summary_frame()
    tau2 = float(result.tau2)
    if not math.isfinite(tau2) or tau2 <= 0:
        q, df = float(result.q), len(effect) - 1
        return frame.loc["fixed effect"], 0.0, (0.0 if q == 0 else max(0.0, (q - df) / q))
    return frame.loc["random effect"], tau2, max(0.0, float(result.i2))


def pool_proportions(events, totals):
    """Pooled proportion (back-transformed), its CI, tau2, I2 on the logit scale."""
    events = np.asarray(events, dtype=float)
    totals = np.asarray(totals, dtype=float)
    corrected = (events == 0) | (events == totals)
    e = np.where(corrected, events + 0.5, events)
    n = np.where(corrected, totals + 1.0, totals)
    effect = np.log(e / (n - e))
    variance = 1 / e + 1 / (n - e)
    if len(effect) == 1:
        se = math.sqrt(variance[0])
        return (_expit(effect[0]), _expit(effect[0] - Z95 * se), _expit(effect[0] + Z95 * se),
                None, None)
    row, tau2, i2 = _random_effects(effect, variance)
    return _expit(row["eff"]), _expit(row["ci_low"]), _expit(row["ci_upp"]), tau2, i2


def pool_means(means, ses):
    means = np.asarray(means, dtype=float)
    variance = np.asarray(ses, dtype=float) ** 2
    if len(means) == 1:
        return means[0], means[0] - Z95 * math.sqrt(variance[0]), means[0] + Z95 * math.sqrt(variance[0]), None, None
    row, tau2, i2 = _random_effects(means, variance)
    return row["eff"], row["ci_low"], row["ci_upp"], tau2, i2


def model(dbt, session):
    dbt.config(materialized="table")
    include_overlapping = str(dbt.config.get("include_overlapping_cohorts")).lower() == "true"
    include_unverified = str(dbt.config.get("include_unverified")).lower() == "true"
    facts = dbt.ref("int_outcomes_classified").df()
    # control / placebo / standard-care arms are not the product: never pooled into its class
    facts = facts[facts["measure"].isin(["proportion", "mean", "mean_change"])
                  & ~facts["is_control_arm"].astype(bool)].copy()
    facts["msc_source"] = facts["msc_source"].fillna("")
    facts["diabetes_type"] = facts["diabetes_type"].fillna("unknown")
    facts["unit_normalised"] = facts["unit_normalised"].fillna("")
    rows = []
    for key, group in facts.groupby(GROUP, dropna=False, sort=True):
        excluded_overlap = group["is_overlapping_cohort"] & (not include_overlapping)
        excluded_unverified = group["is_unverified"] & (not include_unverified)
        kept = group[~(excluded_overlap | excluded_unverified)]
        therapy_class, msc_source, outcome, diabetes_type, measure, unit = key
        base = {
            "therapy_class": therapy_class, "msc_source": msc_source or None, "outcome": outcome,
            "diabetes_type": diabetes_type, "measure": measure, "unit_normalised": unit,
            "excluded_overlapping_rows": int(excluded_overlap.sum()),
            "excluded_unverified_rows": int(excluded_unverified.sum()),
        }
        if measure == "proportion":
            usable = kept.dropna(subset=["n_events", "n_analyzed"])
            usable = usable[usable["n_analyzed"] > 0]
            scale, method = "logit", "DerSimonian-Laird random effects (logit), back-transformed"
        else:
            usable = kept.dropna(subset=["value", "dispersion_value", "n_analyzed"])
            usable = usable[usable["dispersion_type"].isin(["STANDARD_DEVIATION", "STANDARD_ERROR"])]
            scale, method = "identity", "inverse variance, DerSimonian-Laird random effects"
        if outcome == "other":  # a catch-all of different outcomes: listed, never pooled
            usable = usable.iloc[0:0]
        # one effect per study arm: the longest timepoint (several timepoints of one cohort are
        # not independent); the others are counted, not pooled
        before = len(usable)
        usable = (usable.assign(_t=usable["timepoint_months"].fillna(-1))
                  .sort_values(["study_id", "arm", "_t", "outcome_fact_id"],
                               ascending=[True, True, False, True], na_position="last")
                  .drop_duplicates(subset=["study_id", "arm"], keep="first")
                  .drop(columns="_t"))
        other_timepoints = before - len(usable)
        not_poolable = len(kept) - before
        if usable.empty:
            rows.append({**base, "rows_other_timepoints": 0, "k_studies": 0, "n_patients": 0, "n_events": None,
                         "pooled_estimate": None, "ci_low": None, "ci_high": None, "tau2": None,
                         "i2": None, "crude_proportion": None, "scale": scale, "method": method,
                         "is_single_study": False, "rows_not_poolable": not_poolable,
                         "study_ids": sorted(kept["study_id"].dropna().unique().tolist()),
                         "outcome_fact_ids": sorted(kept["outcome_fact_id"].tolist())})
            continue
        if measure == "proportion":
            estimate, low, high, tau2, i2 = pool_proportions(usable["n_events"], usable["n_analyzed"])
            n_events = int(usable["n_events"].sum())
            crude = n_events / float(usable["n_analyzed"].sum())
        else:
            se = np.where(usable["dispersion_type"] == "STANDARD_DEVIATION",
                          usable["dispersion_value"] / np.sqrt(usable["n_analyzed"]),
                          usable["dispersion_value"])
            estimate, low, high, tau2, i2 = pool_means(usable["value"], se)
            n_events, crude = None, None
        rows.append({**base, "rows_other_timepoints": other_timepoints,
                     "k_studies": int(usable["study_id"].nunique()),
                     "n_patients": int(usable["n_analyzed"].sum()), "n_events": n_events,
                     "pooled_estimate": float(estimate), "ci_low": float(low),
                     "ci_high": float(high), "tau2": tau2, "i2": i2, "crude_proportion": crude,
                     "scale": scale, "method": method,
                     "is_single_study": int(usable["study_id"].nunique()) == 1,
                     "rows_not_poolable": not_poolable,
                     "study_ids": sorted(usable["study_id"].unique().tolist()),
                     "outcome_fact_ids": sorted(usable["outcome_fact_id"].tolist())})
    return typed_relation(session, rows)


OUTPUT_TYPES = {
    "therapy_class": "varchar", "msc_source": "varchar", "outcome": "varchar",
    "diabetes_type": "varchar", "measure": "varchar", "unit_normalised": "varchar",
    "k_studies": "integer", "n_patients": "integer", "n_events": "integer",
    "pooled_estimate": "double", "ci_low": "double", "ci_high": "double", "tau2": "double",
    "i2": "double", "crude_proportion": "double", "scale": "varchar", "method": "varchar",
    "is_single_study": "boolean", "excluded_overlapping_rows": "integer",
    "excluded_unverified_rows": "integer", "rows_not_poolable": "integer",
    "rows_other_timepoints": "integer", "study_ids": "varchar[]", "outcome_fact_ids": "varchar[]",
}


def typed_relation(session, rows):
    """The result with explicit types, also when there is no row (an untyped empty frame
    would reach the contract as INTEGER columns)."""
    if not rows:
        nulls = ", ".join(f"cast(null as {kind}) as {name}" for name, kind in OUTPUT_TYPES.items())
        return session.sql(f"select {nulls} where false")
    casts = ", ".join(f"cast({name} as {kind}) as {name}" for name, kind in OUTPUT_TYPES.items())
    frame = pd.DataFrame(rows, columns=list(OUTPUT_TYPES))
    return session.from_df(frame).select(casts)
