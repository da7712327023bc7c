"""Harm rates per therapy class x harm category, counted honestly:

- the unit is the cohort; control arms, unverified rows and reports set aside as possible
  overlaps (seed cohort_overlaps) are left out; one report per cohort (the one with a count and
  the most participants at risk, then the later publication), arms of a cohort summed;
- the denominator holds only cohorts that report the harm with a count or an explicit zero; a
  percentage with its n counts as a derived count (flagged); a percentage without n is left out
  and counted; cohorts that report harms but not this one are 'not reported', never zero;
- events / at risk with the exact Clopper-Pearson 95 % interval (statsmodels).
"""

import pandas as pd
from statsmodels.stats.proportion import proportion_confint

OUTPUT_TYPES = {
    "therapy_class": "varchar", "harm_category": "varchar",
    "cohorts_with_count": "integer", "cohorts_reporting_qualitatively": "integer",
    "cohorts_without_count": "integer", "cohorts_not_reporting": "integer",
    "participants_affected": "integer", "participants_at_risk": "integer",
    "proportion": "double", "ci_low": "double", "ci_high": "double",
    "includes_derived_counts": "boolean", "includes_secondary_sources": "boolean",
    "registry_affected": "integer", "registry_at_risk": "integer",
    "publication_affected": "integer", "publication_at_risk": "integer",
    "reporting_study_ids": "varchar[]", "adverse_event_fact_ids": "varchar[]",
}
STATUS_ORDER = {"reported": 0, "reported_without_count": 1, "reported_qualitative": 2,
                "not_reported": 3}


def cohort_report(cohort):
    """The report a cohort contributes for one harm: its best status, then most at risk."""
    by_study = []
    for study_id, study in cohort.groupby("study_id", sort=True):
        status = min(study["reporting_status"], key=STATUS_ORDER.get)
        counted = study[study["reporting_status"] == "reported"]
        by_study.append((STATUS_ORDER[status], -int(counted["at_risk_count"].fillna(0).sum()),
                         -int(study["publication_year"].fillna(0).max()), study_id, status,
                         counted))
    by_study.sort(key=lambda s: s[:3])
    return by_study[0]


def model(dbt, session):
    dbt.config(materialized="table")
    harms = dbt.ref("int_harm_facts").df()
    harms = harms[~harms["is_control_arm"].astype(bool)
                  & ~harms["is_set_aside_overlap"].astype(bool)
                  & (harms["verification_status"] != "no")]
    rows = []
    for (therapy_class, harm), group in harms.groupby(["therapy_class", "harm_category"],
                                                     sort=True):
        tallies = {"reported": 0, "reported_qualitative": 0, "reported_without_count": 0,
                   "not_reported": 0}
        affected = at_risk = 0
        by_source = {"registry_results": [0, 0], "publication": [0, 0]}
        derived = secondary = False
        studies, facts = [], []
        for _, cohort in group.groupby("cohort_id", sort=True):
            _, _, _, study_id, status, counted = cohort_report(cohort)
            tallies[status] += 1
            if status != "reported":
                continue
            events = int(counted["affected_count"].fillna(0).sum())
            risk = int(counted["at_risk_count"].fillna(0).sum())
            affected, at_risk = affected + events, at_risk + risk
            source = counted["source"].iloc[0]
            by_source[source][0] += events
            by_source[source][1] += risk
            derived |= bool(counted["is_count_derived"].any())
            secondary |= bool((counted["verification_status"] == "secondary").any())
            studies.append(study_id)
            facts += counted["adverse_event_fact_id"].tolist()
        low = high = proportion = None
        if at_risk > 0:
            proportion = affected / at_risk
            low, high = (float(v) for v in proportion_confint(affected, at_risk, method="beta"))
        rows.append({
            "therapy_class": therapy_class, "harm_category": harm,
            "cohorts_with_count": tallies["reported"],
            "cohorts_reporting_qualitatively": tallies["reported_qualitative"],
            "cohorts_without_count": tallies["reported_without_count"],
            "cohorts_not_reporting": tallies["not_reported"],
            "participants_affected": affected if tallies["reported"] else None,
            "participants_at_risk": at_risk if tallies["reported"] else None,
            "proportion": proportion, "ci_low": low, "ci_high": high,
            "includes_derived_counts": derived, "includes_secondary_sources": secondary,
            "registry_affected": by_source["registry_results"][0] or None,
            "registry_at_risk": by_source["registry_results"][1] or None,
            "publication_affected": by_source["publication"][0] or None,
            "publication_at_risk": by_source["publication"][1] or None,
            "reporting_study_ids": sorted(studies), "adverse_event_fact_ids": sorted(facts)})
    if not rows:
        nulls = ", ".join(f"cast(null as {kind}) as {name}" for name, kind in OUTPUT_TYPES.items())
        return session.sql(f"select {nulls} where false")
    frame = pd.DataFrame(rows, columns=list(OUTPUT_TYPES)).astype(object)
    frame = frame.where(pd.notna(frame), None)
    casts = ", ".join(f"cast({name} as {kind}) as {name}" for name, kind in OUTPUT_TYPES.items())
    return session.from_df(frame).select(casts)
