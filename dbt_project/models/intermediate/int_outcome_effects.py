"""One effect per outcome fact: the proportion (events / participants) with its exact
Clopper-Pearson 95 % interval (statsmodels), or the reported value and interval for other
measures; the definition and follow-up window it belongs to, and whether and why it can enter
a pooled estimate. Nothing is pooled here."""

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
    "timepoint_months": "double", "timepoint_text": "varchar", "measure": "varchar",
    "unit": "varchar", "events": "integer", "participants": "integer", "estimate": "double",
    "ci_low": "double", "ci_high": "double", "interval_method": "varchar",
    "is_count_derived": "boolean", "is_complement_converted": "boolean",
    "is_control_arm": "boolean", "is_randomised": "boolean", "verification_status": "varchar",
    "is_set_aside_overlap": "boolean", "suspected_overlap_with": "varchar[]",
    "overlap_reason": "varchar", "is_poolable": "boolean", "not_poolable_reason": "varchar",
    "source_url": "varchar",
}


def listed(value):
    return list(value) if isinstance(value, list | tuple | np.ndarray) else None


def truthy(value):
    return False if value is None or value is pd.NA or (isinstance(value, float)
                                                        and np.isnan(value)) else bool(value)


def not_poolable_reason(row):
    """Why a fact cannot enter a pooled estimate (None when it can); first reason only."""
    if row["measure"] != "proportion":
        return "not a proportion (means lack a dispersion or a reviewed definition)"
    if row["outcome"] == "other":
        return "catch-all outcome 'other'"
    if row["definition_id"] is None or pd.isna(row["definition_id"]):
        return "no reviewed outcome definition"
    if not truthy(row["is_definition_poolable"]):
        return f"definition {row['definition_id']} is never pooled"
    if row["population"] != "all":
        return "a subgroup of a reported cohort"
    if truthy(row["is_control_arm"]):
        return "control arm (not the product)"
    if row["verification_status"] == "no":
        return "unverified (not confirmed in a source about the primary study)"
    if row["window_id"] is None or pd.isna(row["window_id"]):
        return "timepoint not a number of months"
    if pd.isna(row["events_used"]) or pd.isna(row["n_analyzed"]) or row["n_analyzed"] <= 0:
        return "no count of events and participants"
    return None


def effect(row):
    if row["measure"] == "proportion" and not pd.isna(row["events_used"]) \
            and not pd.isna(row["n_analyzed"]) and row["n_analyzed"] > 0:
        events, total = int(row["events_used"]), int(row["n_analyzed"])
        low, high = proportion_confint(events, total, alpha=0.05, method="beta")
        return events, total, events / total, float(low), float(high), "Clopper-Pearson exact"
    value = row["value_normalised"]
    reported = not pd.isna(row["ci_low"]) and not pd.isna(row["ci_high"])
    return (None, None if pd.isna(row["n_analyzed"]) else int(row["n_analyzed"]),
            None if pd.isna(value) else float(value),
            float(row["ci_low"]) if reported else None,
            float(row["ci_high"]) if reported else None,
            "as reported" if reported else None)


def model(dbt, session):
    dbt.config(materialized="table")
    facts = dbt.ref("int_outcomes_classified").df()
    rows = []
    for _, row in facts.iterrows():
        events, participants, estimate, low, high, method = effect(row)
        reason = not_poolable_reason(row)
        rows.append({
            "outcome_fact_id": row["outcome_fact_id"], "source": row["source"],
            "study_id": row["study_id"], "cohort_id": row["cohort_id"],
            "trial_id": row["trial_id"], "publication_id": row["publication_id"],
            "publication_year": row["publication_year"], "arm": row["arm"],
            "therapy_class": row["therapy_class"], "msc_source": row["msc_source"],
            "diabetes_type": row["diabetes_type"], "outcome": row["outcome"],
            "definition_id": row["pooled_definition_id"],
            "definition_as_reported_id": row["definition_id"],
            "definition_source": row["definition_source"], "population": row["population"],
            "window_id": row["window_id"], "timepoint_months": row["timepoint_months"],
            "timepoint_text": row["timepoint_text"], "measure": row["measure"],
            "unit": row["unit_normalised"], "events": events, "participants": participants,
            "estimate": estimate, "ci_low": low, "ci_high": high, "interval_method": method,
            "is_count_derived": truthy(row["is_count_derived"]),
            "is_complement_converted": truthy(row["is_complement_converted"]),
            "is_control_arm": truthy(row["is_control_arm"]),
            "is_randomised": truthy(row["is_randomised"]),
            "verification_status": row["verification_status"],
            "is_set_aside_overlap": truthy(row["is_set_aside_overlap"]),
            "suspected_overlap_with": listed(row["suspected_overlap_with"]),
            "overlap_reason": row["overlap_reason"], "is_poolable": reason is None,
            "not_poolable_reason": reason, "source_url": row["source_url"],
        })
    return typed_relation(session, rows)


def typed_relation(session, rows):
    """Explicit types, also for an empty result (an untyped empty frame breaks contracts)."""
    if not rows:
        nulls = ", ".join(f"cast(null as {kind}) as {name}" for name, kind in OUTPUT_TYPES.items())
        return session.sql(f"select {nulls} where false")
    frame = pd.DataFrame(rows, columns=list(OUTPUT_TYPES)).astype(object)
    frame = frame.where(pd.notna(frame), None)
    casts = ", ".join(f"cast({name} as {kind}) as {name}" for name, kind in OUTPUT_TYPES.items())
    return session.from_df(frame).select(casts)
