"""Pooled proportions per scenario x therapy class (x MSC source, and all MSC sources) x diabetes
type x outcome x definition x follow-up window. Rules, in order:

1. Scenarios are precomputed: verified only (curator-verified and registry-posted rows, not
   'secondary' ones), include overlapping reports (those set aside by seed cohort_overlaps),
   randomised only; each combination is a row set of its own.
2. Only effects that can be pooled (int_outcome_effects.is_poolable) enter: a reviewed
   definition that may be pooled, all patients (not a subgroup), not a control arm, not
   unverified, a window, and counts.
3. The unit is the cohort: per cohort, the report with the most participants is used (then the
   later publication); reports of one cohort tied on both are a conflict: neither is used and
   the row says so. Within that report each arm uses its latest timepoint in the window, and
   arms of one cohort are combined (events and participants summed), never counted as studies.
4. One cohort: the raw proportion with its exact Clopper-Pearson interval. Two or more: random
   effects on the logit scale (0.5 continuity correction for 0/n and n/n) with Paule-Mandel tau2
   and Hartung-Knapp-Sidik-Jonkman interval (t, k-1 df) from statsmodels, DerSimonian-Laird
   beside it, and a 95 % prediction interval (t, k-2 df) from three cohorts on.
Diabetes types are never pooled together. Caveats are listed per row.
"""

import itertools
import math

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.meta_analysis import combine_effects
from statsmodels.stats.proportion import proportion_confint

SCENARIOS = list(itertools.product([False, True], repeat=3))  # verified_only, overlapping, rct
GROUP = ["therapy_class", "msc_source", "diabetes_type", "outcome", "definition_id", "window_id"]
VERIFIED = {"yes", "registry_posted"}
ALL_MSC = "all sources"


def expit(x):
    return 1 / (1 + math.exp(-x))


def logit_effects(events, totals):
    events = np.asarray(events, dtype=float)
    totals = np.asarray(totals, dtype=float)
    corrected = (events == 0) | (events == totals)
    e = np.where(corrected, events + 0.5, events)
    n = np.where(corrected, totals + 1.0, totals)
    return np.log(e / (n - e)), 1 / e + 1 / (n - e), bool(corrected.any())


def random_effects(effect, variance):
    """Paule-Mandel tau2 with an HKSJ interval; DerSimonian-Laird estimate and interval beside;
    a prediction interval for k >= 3. All on the logit scale."""
    k = len(effect)
    pm = combine_effects(effect, variance, method_re="pm", use_t=True)
    dl = combine_effects(effect, variance, method_re="dl", use_t=False)
    tau2 = max(float(pm.tau2), 0.0) if math.isfinite(pm.tau2) else 0.0
    frame = pm.summary_frame()
    hksj = frame.loc["random effect wls" if tau2 > 0 else "fixed effect wls"]
    dl_frame = dl.summary_frame()
    dl_tau2 = max(float(dl.tau2), 0.0) if math.isfinite(dl.tau2) else 0.0
    dl_row = dl_frame.loc["random effect" if dl_tau2 > 0 else "fixed effect"]
    mu = float(hksj["eff"])
    se_re = float(frame.loc["random effect" if tau2 > 0 else "fixed effect", "sd_eff"])
    prediction = (None, None)
    if k >= 3:
        half = stats.t.ppf(0.975, k - 2) * math.sqrt(tau2 + se_re ** 2)
        prediction = (mu - half, mu + half)
    q = float(pm.q)
    i2 = max(0.0, (q - (k - 1)) / q) if q > 0 else 0.0
    return {"mu": mu, "low": float(hksj["ci_low"]), "high": float(hksj["ci_upp"]),
            "tau2_pm": tau2, "tau2_dl": dl_tau2, "i2": i2, "mu_dl": float(dl_row["eff"]),
            "low_dl": float(dl_row["ci_low"]), "high_dl": float(dl_row["ci_upp"]),
            "pi": prediction}


def cohort_effects(group):
    """One effect per cohort (rule 3): returns (effects, set-aside study ids, caveats)."""
    effects, set_aside, caveats = [], [], set()
    for cohort_id, cohort in group.groupby("cohort_id", sort=True):
        per_study = []
        for study_id, study in cohort.groupby("study_id", sort=True):
            # each arm: its latest timepoint in the window (a numeric order, never an id order)
            latest = (study.assign(_t=study["timepoint_months"].fillna(-1.0))
                      .sort_values("_t").groupby("arm", dropna=False).tail(1))
            per_study.append((study_id, latest, int(latest["participants"].sum()),
                              int(latest["publication_year"].fillna(0).max())))
        per_study.sort(key=lambda s: (s[2], s[3]), reverse=True)
        best = per_study[0]
        if len(per_study) > 1 and (per_study[1][2], per_study[1][3]) == (best[2], best[3]):
            set_aside += [s[0] for s in per_study]
            caveats.add("conflicting reports of one cohort (none used)")
            continue
        set_aside += [s[0] for s in per_study[1:]]
        if len(per_study) > 1:
            caveats.add("one report per cohort (the most complete)")
        arms = best[1]
        if len(arms) > 1:
            caveats.add("arms of one cohort combined")
        effects.append({"cohort_id": cohort_id, "study_id": best[0],
                        "events": int(arms["events"].sum()),
                        "participants": int(arms["participants"].sum()),
                        "fact_ids": arms["outcome_fact_id"].tolist(),
                        "timepoints": sorted({t for t in arms["timepoint_text"].dropna()}),
                        "randomised": bool(arms["is_randomised"].any()),
                        "secondary": bool((arms["verification_status"] == "secondary").any()),
                        "derived": bool(arms["is_count_derived"].any()),
                        "complement": bool(arms["is_complement_converted"].any()),
                        "overlap": bool(arms["is_set_aside_overlap"].any())})
    return effects, sorted(set(set_aside)), caveats


def cohort_columns(effects, weights):
    """What a forest plot draws per cohort, in cohort_ids order: its events, participants, raw
    proportion with its exact Clopper-Pearson interval, and its share of the pooled weight."""
    events = [e["events"] for e in effects]
    totals = [e["participants"] for e in effects]
    intervals = [proportion_confint(x, n, alpha=0.05, method="beta") for x, n in zip(events, totals)]
    return {"cohort_events": events, "cohort_participants": totals,
            "cohort_estimates": [x / n for x, n in zip(events, totals)],
            "cohort_ci_low": [float(low) for low, _ in intervals],
            "cohort_ci_high": [float(high) for _, high in intervals],
            "cohort_weights": [float(w) for w in weights]}


def random_effects_weights(variance, tau2):
    """Each cohort's share of the random-effects (inverse-variance plus tau2) weight."""
    raw = 1.0 / (np.asarray(variance, dtype=float) + tau2)
    return raw / raw.sum()


def pool(group, scenario):
    effects, set_aside, caveats = cohort_effects(group)
    k = len(effects)
    row = {"k_cohorts": k, "reports_set_aside": set_aside}
    if k == 0:
        return {**row, "n_participants": 0, "n_events": None, "estimate": None,
                "ci_low": None, "ci_high": None, "method": "no cohort left to pool",
                "caveats": sorted(caveats), **cohort_columns([], [])}
    events = [e["events"] for e in effects]
    totals = [e["participants"] for e in effects]
    row.update({"n_participants": int(sum(totals)), "n_events": int(sum(events)),
                "raw_proportion": sum(events) / sum(totals),
                "cohort_ids": [e["cohort_id"] for e in effects],
                "study_ids": sorted({e["study_id"] for e in effects}),
                "outcome_fact_ids": sorted(f for e in effects for f in e["fact_ids"]),
                "timepoints_used": sorted({t for e in effects for t in e["timepoints"]})})
    if k == 1:
        low, high = proportion_confint(events[0], totals[0], alpha=0.05, method="beta")
        row.update({"estimate": events[0] / totals[0], "ci_low": float(low),
                    "ci_high": float(high),
                    "method": "single cohort: raw proportion, Clopper-Pearson exact 95 % CI"})
        caveats.add("single cohort")
        row.update(cohort_columns(effects, [1.0]))
    else:
        effect, variance, corrected = logit_effects(events, totals)
        fit = random_effects(effect, variance)
        row.update(cohort_columns(effects, random_effects_weights(variance, fit["tau2_pm"])))
        row.update({
            "estimate": expit(fit["mu"]), "ci_low": expit(fit["low"]),
            "ci_high": expit(fit["high"]), "tau2": fit["tau2_pm"], "tau2_dl": fit["tau2_dl"],
            "i2": fit["i2"], "estimate_dl": expit(fit["mu_dl"]), "ci_low_dl": expit(fit["low_dl"]),
            "ci_high_dl": expit(fit["high_dl"]),
            "pi_low": None if fit["pi"][0] is None else expit(fit["pi"][0]),
            "pi_high": None if fit["pi"][1] is None else expit(fit["pi"][1]),
            "method": "random effects, logit scale: Paule-Mandel tau2, Hartung-Knapp-Sidik-"
                      "Jonkman 95 % CI (t, k-1 df); DerSimonian-Laird beside"
                      + ("; 95 % prediction interval (t, k-2 df)" if k >= 3 else "")
                      + ("; 0.5 continuity correction for 0/n or n/n" if corrected else "")})
        if k < 3:
            caveats.add("fewer than 3 cohorts (no prediction interval)")
        if fit["i2"] > 0.5:
            caveats.add("I2 above 50 %")
    if not any(e["randomised"] for e in effects):
        caveats.add("single-arm studies only")
    if any(e["secondary"] for e in effects):
        caveats.add("includes secondary sources")
    if any(e["overlap"] for e in effects):
        caveats.add("includes reports that may overlap another")
    if any(e["derived"] for e in effects):
        caveats.add("includes counts derived from a proportion and its n")
    if any(e["complement"] for e in effects):
        caveats.add("includes counts converted from the complementary definition")
    row["caveats"] = sorted(caveats)
    return row


OUTPUT_TYPES = {
    "verified_only": "boolean", "include_overlapping": "boolean", "randomised_only": "boolean",
    "therapy_class": "varchar", "msc_source": "varchar", "diabetes_type": "varchar",
    "outcome": "varchar", "definition_id": "varchar", "window_id": "varchar",
    "k_cohorts": "integer", "n_participants": "integer", "n_events": "integer",
    "estimate": "double", "ci_low": "double", "ci_high": "double", "pi_low": "double",
    "pi_high": "double", "tau2": "double", "tau2_dl": "double", "i2": "double",
    "estimate_dl": "double", "ci_low_dl": "double", "ci_high_dl": "double",
    "raw_proportion": "double", "method": "varchar", "caveats": "varchar[]",
    "cohort_ids": "varchar[]", "study_ids": "varchar[]", "outcome_fact_ids": "varchar[]",
    "timepoints_used": "varchar[]", "reports_set_aside": "varchar[]",
    "cohort_events": "integer[]", "cohort_participants": "integer[]",
    "cohort_estimates": "double[]", "cohort_ci_low": "double[]", "cohort_ci_high": "double[]",
    "cohort_weights": "double[]",
}


def scenario_rows(effects, verified_only, include_overlapping, randomised_only):
    rows = effects
    if verified_only:
        rows = rows[rows["verification_status"].isin(VERIFIED)]
    if not include_overlapping:
        rows = rows[~rows["is_set_aside_overlap"].astype(bool)]
    if randomised_only:
        rows = rows[rows["is_randomised"].astype(bool)]
    msc = rows[rows["therapy_class"] == "msc"].assign(msc_source=ALL_MSC)
    return pd.concat([rows, msc], ignore_index=True)


def model(dbt, session):
    dbt.config(materialized="table")
    effects = dbt.ref("int_outcome_effects").df()
    effects = effects[effects["is_poolable"].astype(bool)].copy()
    effects["msc_source"] = effects["msc_source"].fillna("")
    out = []
    for verified_only, include_overlapping, randomised_only in SCENARIOS:
        rows = scenario_rows(effects, verified_only, include_overlapping, randomised_only)
        for key, group in rows.groupby(GROUP, dropna=False, sort=True):
            therapy_class, msc_source, diabetes_type, outcome, definition_id, window_id = key
            base = {"verified_only": verified_only, "include_overlapping": include_overlapping,
                    "randomised_only": randomised_only, "therapy_class": therapy_class,
                    "msc_source": msc_source or None, "diabetes_type": diabetes_type,
                    "outcome": outcome, "definition_id": definition_id, "window_id": window_id}
            out.append({**base, **pool(group, (verified_only, include_overlapping,
                                               randomised_only))})
    return typed_relation(session, out)


def typed_relation(session, rows):
    """Explicit types, also for an empty result (an untyped empty frame breaks contracts)."""
    if not rows:
        nulls = ", ".join(f"cast(null as {kind}) as {name}" for name, kind in OUTPUT_TYPES.items())
        return session.sql(f"select {nulls} where false")
    frame = pd.DataFrame(rows, columns=list(OUTPUT_TYPES)).astype(object)
    frame = frame.where(pd.notna(frame), None)
    casts = ", ".join(f"cast({name} as {kind}) as {name}" for name, kind in OUTPUT_TYPES.items())
    return session.from_df(frame).select(casts)
