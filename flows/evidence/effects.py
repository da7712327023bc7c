"""One effect per outcome fact (the rules of ``int_outcome_effects`` and
``marts.outcome_effects``): the proportion events / participants with its exact Clopper-Pearson
95 % interval, or the reported value and interval for other measures; the definition and
follow-up window it belongs to, the follow-up it stands for, and whether and why it can enter a
pooled estimate. Nothing is pooled here. Column-wise throughout (no loop per fact).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

OUTPUT_TYPES = {
    "outcome_fact_id": "varchar", "source": "varchar", "study_id": "varchar",
    "cohort_id": "varchar", "trial_id": "varchar", "publication_id": "varchar",
    "publication_year": "integer", "arm": "varchar", "therapy_class": "varchar",
    "msc_source": "varchar", "diabetes_type": "varchar", "outcome": "varchar",
    "definition_id": "varchar", "definition_as_reported_id": "varchar",
    "definition_source": "varchar", "population": "varchar", "window_id": "varchar",
    "timepoint_months": "double", "timepoint_text": "varchar", "followup_basis": "varchar",
    "followup_months": "double", "followup_months_min": "double",
    "followup_months_max": "double", "duration_months": "double", "measure": "varchar",
    "unit": "varchar", "events": "integer", "participants": "integer", "estimate": "double",
    "ci_low": "double", "ci_high": "double", "interval_method": "varchar",
    "is_count_derived": "boolean", "is_complement_converted": "boolean",
    "is_control_arm": "boolean", "is_randomised": "boolean", "verification_status": "varchar",
    "is_set_aside_overlap": "boolean", "suspected_overlap_with": "varchar[]",
    "overlap_reason": "varchar", "is_poolable": "boolean", "not_poolable_reason": "varchar",
    "source_url": "varchar",
}
FLAGS = ["is_count_derived", "is_complement_converted", "is_control_arm", "is_randomised",
         "is_set_aside_overlap"]


def truthy(column: pd.Series) -> pd.Series:
    """NULL is false."""
    return column.astype("boolean").fillna(False).astype(bool)


def clopper_pearson(events: np.ndarray, totals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact 95 % intervals, element-wise (statsmodels' 'beta' method)."""
    if len(events) == 0:
        return np.array([]), np.array([])
    low, high = proportion_confint(events, totals, alpha=0.05, method="beta")
    return np.asarray(low, dtype=float), np.asarray(high, dtype=float)


def not_poolable_reasons(facts: pd.DataFrame) -> pd.Series:
    """Why each fact cannot enter a pooled estimate (None when it can); the first reason only."""
    n = facts["n_analyzed"]
    no_definition = facts["definition_id"].isna()
    rules = [
        (facts["measure"] != "proportion",
         "not a proportion (means lack a dispersion or a reviewed definition)"),
        (facts["outcome"] == "other", "catch-all outcome 'other'"),
        (no_definition, "no reviewed outcome definition"),
        (~truthy(facts["is_definition_poolable"]), None),  # named per definition below
        (facts["population"] != "all", "a subgroup of a reported cohort"),
        (truthy(facts["is_control_arm"]), "control arm (not the product)"),
        (facts["verification_status"] == "no",
         "unverified (not confirmed in a source about the primary study)"),
        (facts["window_id"].isna() & (facts["followup_basis"] == "duration"),
         "the months reported are a duration (time in a state), not a follow-up time"),
        (facts["window_id"].isna(), "timepoint not a number of months"),
        (facts["events_used"].isna() | n.isna() | ~(n > 0),
         "no count of events and participants"),
    ]
    reasons = pd.Series([None] * len(facts), index=facts.index, dtype=object)
    undecided = pd.Series(True, index=facts.index)
    for condition, reason in rules:
        hit = undecided & condition.fillna(False).astype(bool)
        if reason is None:
            reasons[hit] = "definition " + facts.loc[hit, "definition_id"].astype(str) \
                + " is never pooled"
        else:
            reasons[hit] = reason
        undecided &= ~hit
    return reasons


def outcome_effects(facts: pd.DataFrame) -> pd.DataFrame:
    """``int_outcomes_classified`` rows -> ``int_outcome_effects`` rows."""
    out = pd.DataFrame(index=facts.index)
    for name in ("outcome_fact_id", "source", "study_id", "cohort_id", "trial_id",
                 "publication_id", "publication_year", "arm", "therapy_class", "msc_source",
                 "diabetes_type", "outcome", "definition_source", "population", "window_id",
                 "timepoint_months", "timepoint_text", "followup_basis", "followup_months",
                 "followup_months_min", "followup_months_max", "duration_months", "measure",
                 "verification_status", "overlap_reason", "source_url"):
        out[name] = facts[name]
    out["definition_id"] = facts["pooled_definition_id"]
    out["definition_as_reported_id"] = facts["definition_id"]
    out["unit"] = facts["unit_normalised"]
    for flag in FLAGS:
        out[flag] = truthy(facts[flag])
    out["suspected_overlap_with"] = [list(v) if isinstance(v, list | tuple | np.ndarray) else None
                                     for v in facts["suspected_overlap_with"]]

    n = facts["n_analyzed"]
    counted = (facts["measure"] == "proportion") & facts["events_used"].notna() & n.notna() \
        & (n > 0)
    events = facts["events_used"].where(counted)
    low, high = clopper_pearson(events[counted].to_numpy(dtype=float),
                                n[counted].to_numpy(dtype=float))
    reported = facts["ci_low"].notna() & facts["ci_high"].notna()
    out["events"] = events.astype("Int64")
    out["participants"] = n.astype("Int64")
    out["estimate"] = facts["value_normalised"].astype(float)
    out["ci_low"] = facts["ci_low"].where(reported).astype(float)
    out["ci_high"] = facts["ci_high"].where(reported).astype(float)
    out["interval_method"] = pd.Series(np.where(reported, "as reported", None), index=facts.index,
                                       dtype=object)
    out.loc[counted, "estimate"] = (events[counted] / n[counted]).astype(float)
    out.loc[counted, "ci_low"] = low
    out.loc[counted, "ci_high"] = high
    out.loc[counted, "interval_method"] = "Clopper-Pearson exact"

    reasons = not_poolable_reasons(facts)
    out["is_poolable"] = reasons.isna()
    out["not_poolable_reason"] = reasons
    return out[list(OUTPUT_TYPES)].reset_index(drop=True)
