"""Harm rates per therapy class x diabetes type x harm category, counted at the grain the
sources give (the rules of ``int_harm_rates`` and ``marts.safety_signals``):

- the unit is the cohort; control arms, unverified rows and reports set aside as possible
  overlaps (seed cohort_overlaps) are left out; one report per cohort (its best reporting
  status, then the one with the most participants at risk, then the later publication, then
  the study id); the arms of the chosen report are summed (arms are different participants);
- the denominator holds only cohorts that report the harm with a count or an explicit zero; a
  percentage with its n counts as a derived count (flagged); a percentage without n is left out
  and counted; cohorts that report harms but not this one are 'not reported', never zero;
- a row of ``int_harm_facts`` carries an exact count (affected_low = affected_high) or, for a
  category spanning several adverse-event terms, bounds: at least the largest term's count, at
  most min(sum of the terms, at risk). Bounds add up across cohorts like counts do. A figure
  whose cohorts all give exact counts is 'exact' (a proportion with its exact Clopper-Pearson
  95 % interval); otherwise it is 'bounds': no point estimate, and the interval runs from the
  lower limit for the smallest possible count to the upper limit for the largest one.

Everything is computed with group-wise frame operations (no loop per cohort or per row).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

KEY = ["therapy_class", "diabetes_type", "harm_category"]
STATUS_ORDER = {"reported": 0, "reported_without_count": 1, "reported_qualitative": 2,
                "not_reported": 3}
SOURCES = ("registry_results", "publication")
NULL_KEY = "(not stated)"
OUTPUT_TYPES = {
    "therapy_class": "varchar", "diabetes_type": "varchar", "harm_category": "varchar",
    "cohorts_with_count": "integer", "cohorts_reporting_qualitatively": "integer",
    "cohorts_without_count": "integer", "cohorts_not_reporting": "integer",
    "cohorts_with_bounds": "integer", "count_basis": "varchar",
    "participants_affected": "integer", "participants_affected_low": "integer",
    "participants_affected_high": "integer", "participants_at_risk": "integer",
    "proportion": "double", "ci_low": "double", "ci_high": "double",
    "includes_derived_counts": "boolean", "includes_secondary_sources": "boolean",
    "registry_affected": "integer", "registry_at_risk": "integer",
    "publication_affected": "integer", "publication_at_risk": "integer",
    "reporting_study_ids": "varchar[]", "adverse_event_fact_ids": "varchar[]",
}


def eligible_rows(harms: pd.DataFrame) -> pd.DataFrame:
    """Rows that may enter a figure: not a control arm, not set aside, not unverified."""
    keep = (~harms["is_control_arm"].fillna(False).astype(bool)
            & ~harms["is_set_aside_overlap"].fillna(False).astype(bool)
            & (harms["verification_status"].fillna("") != "no"))
    rows = harms[keep].copy()
    # NULL keys become one plain string: a column that is NULL throughout arrives as float NaN,
    # and merges, groupbys and crosstabs each treat missing keys their own way.
    rows[KEY] = rows[KEY].astype(object).where(rows[KEY].notna(), NULL_KEY)
    return rows


def chosen_reports(rows: pd.DataFrame) -> pd.DataFrame:
    """One report (study) per cohort and harm: best status, most at risk, latest, study id."""
    rows["status_rank"] = rows["reporting_status"].map(STATUS_ORDER).astype(int)
    reported = rows["reporting_status"] == "reported"
    rows["risk_reported"] = rows["at_risk_count"].where(reported, 0).fillna(0)
    studies = (rows.groupby([*KEY, "cohort_id", "study_id"], dropna=False, sort=False)
               .agg(status_rank=("status_rank", "min"), risk=("risk_reported", "sum"),
                    year=("publication_year", "max"))
               .reset_index())
    studies["year"] = studies["year"].fillna(0)
    studies = studies.sort_values([*KEY, "cohort_id", "status_rank", "risk", "year", "study_id"],
                                  ascending=[True] * 4 + [True, False, False, True],
                                  na_position="first", kind="mergesort")
    chosen = studies.drop_duplicates([*KEY, "cohort_id"], keep="first")
    inverse = {rank: status for status, rank in STATUS_ORDER.items()}
    return chosen.assign(status=chosen["status_rank"].map(inverse))


def counted_rows(rows: pd.DataFrame, chosen: pd.DataFrame) -> pd.DataFrame:
    """The rows with a count of each cohort's chosen report."""
    reported = chosen[chosen["status"] == "reported"][[*KEY, "cohort_id", "study_id"]]
    return rows[rows["reporting_status"] == "reported"].merge(
        reported, on=[*KEY, "cohort_id", "study_id"], how="inner")


def counted_cohorts(counted: pd.DataFrame) -> pd.DataFrame:
    """The counted rows of each cohort's chosen report, summed over its arms."""
    counted["is_secondary"] = counted["verification_status"] == "secondary"
    counted["is_count_derived"] = counted["is_count_derived"].fillna(False).astype(bool)
    cohorts = (counted.groupby([*KEY, "cohort_id", "study_id"], dropna=False, sort=False)
               .agg(low=("affected_low", "sum"), high=("affected_high", "sum"),
                    at_risk=("at_risk_count", "sum"), source=("source", "first"),
                    derived=("is_count_derived", "any"), secondary=("is_secondary", "any"))
               .reset_index())
    cohorts["is_bounds"] = cohorts["low"] != cohorts["high"]
    for source in SOURCES:
        mine = cohorts["source"] == source
        cohorts[f"{source}_low"] = cohorts["low"].where(mine)
        cohorts[f"{source}_at_risk"] = cohorts["at_risk"].where(mine)
        cohorts[f"{source}_bounds"] = cohorts["is_bounds"] & mine
    return cohorts


def exact_interval(low: np.ndarray, high: np.ndarray, at_risk: np.ndarray):
    """Clopper-Pearson 95 %: lower limit of the smallest count, upper of the largest."""
    lower, _ = proportion_confint(low, at_risk, alpha=0.05, method="beta")
    _, upper = proportion_confint(high, at_risk, alpha=0.05, method="beta")
    return np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)


def harm_rates(harms: pd.DataFrame) -> pd.DataFrame:
    """One row per therapy class x diabetes type x harm category (columns of OUTPUT_TYPES)."""
    rows = eligible_rows(harms)
    if rows.empty:
        return pd.DataFrame(columns=list(OUTPUT_TYPES))
    chosen = chosen_reports(rows)
    tallies = (pd.crosstab([chosen[k] for k in KEY], chosen["status"])
               .reindex(columns=list(STATUS_ORDER), fill_value=0))
    counted = counted_rows(rows, chosen)
    cohorts = counted_cohorts(counted)
    facts = (counted.groupby(KEY, sort=True)
             ["adverse_event_fact_id"].agg(sorted).rename("facts"))
    sums = (cohorts.groupby(KEY, sort=True)
            .agg(low=("low", "sum"), high=("high", "sum"), at_risk=("at_risk", "sum"),
                 bounds=("is_bounds", "sum"), derived=("derived", "any"),
                 secondary=("secondary", "any"), studies=("study_id", sorted),
                 **{f"{s}_{part}": (f"{s}_{part}", agg) for s in SOURCES
                    for part, agg in (("low", "sum"), ("at_risk", "sum"), ("bounds", "any"))},
                 **{f"{s}_n": (f"{s}_low", "count") for s in SOURCES}))
    sums = sums.join(facts)
    sums.index = sums.index.set_names(KEY)
    out = tallies.join(sums, how="left").reset_index()
    out[KEY] = out[KEY].where(out[KEY] != NULL_KEY, None)
    return _figures(out)


def _figures(out: pd.DataFrame) -> pd.DataFrame:
    counted = out["reported"] > 0
    at_risk = out["at_risk"].fillna(0).to_numpy(dtype=float)
    positive = counted & (at_risk > 0)
    low = out["low"].fillna(0).to_numpy(dtype=float)
    high = out["high"].fillna(0).to_numpy(dtype=float)
    exact = counted & (low == high)
    ci_low = np.full(len(out), np.nan)
    ci_high = np.full(len(out), np.nan)
    if positive.any():
        ci_low[positive], ci_high[positive] = exact_interval(low[positive], high[positive],
                                                             at_risk[positive])
    frame = pd.DataFrame({
        "therapy_class": out["therapy_class"], "diabetes_type": out["diabetes_type"],
        "harm_category": out["harm_category"],
        "cohorts_with_count": out["reported"],
        "cohorts_reporting_qualitatively": out["reported_qualitative"],
        "cohorts_without_count": out["reported_without_count"],
        "cohorts_not_reporting": out["not_reported"],
        "cohorts_with_bounds": out["bounds"].fillna(0).astype(int),
        "count_basis": np.where(~counted, None, np.where(exact, "exact", "bounds")),
        "participants_affected": pd.Series(low).where(exact),
        "participants_affected_low": pd.Series(low).where(counted),
        "participants_affected_high": pd.Series(high).where(counted),
        "participants_at_risk": pd.Series(at_risk).where(counted),
        "proportion": pd.Series(np.divide(low, at_risk, out=np.zeros_like(low),
                                          where=at_risk > 0)).where(exact & positive),
        "ci_low": ci_low, "ci_high": ci_high,
        "includes_derived_counts": out["derived"].fillna(False).astype(bool),
        "includes_secondary_sources": out["secondary"].fillna(False).astype(bool),
        "reporting_study_ids": [s if isinstance(s, list) else [] for s in out["studies"]],
        "adverse_event_fact_ids": [f if isinstance(f, list) else [] for f in out["facts"]],
    })
    for source, prefix in (("registry_results", "registry"), ("publication", "publication")):
        present = out[f"{source}_n"].fillna(0) > 0
        exact_source = present & ~out[f"{source}_bounds"].fillna(False).astype(bool)
        frame[f"{prefix}_affected"] = out[f"{source}_low"].where(exact_source)
        frame[f"{prefix}_at_risk"] = out[f"{source}_at_risk"].where(present)
    return frame[list(OUTPUT_TYPES)]
