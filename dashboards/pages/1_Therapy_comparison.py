import _paths  # noqa: F401
import pandas as pd
import streamlit as st

from dashboards import data
from dashboards.forest_plot import forest_figure
from dashboards.presentation import (
    count_text,
    interval_text,
    is_missing,
    proportion,
    range_text,
    therapy_name,
)

st.set_page_config(page_title="Betacell: Therapy comparison", layout="wide")
data.use_the_page_width()
st.title("Therapy comparison")
st.caption("Every number here is read from marts.therapy_outcome_comparison and "
           "marts.outcome_effects; nothing is recomputed. Estimates come from small, mostly "
           "single-arm studies whose populations differ: read the caveats. One cohort shows its "
           "raw proportion with an exact interval; two or more are pooled (random effects, "
           "HKSJ interval; prediction interval from three cohorts).")

comparison = data.mart("therapy_outcome_comparison")
effects = data.mart("outcome_effects")
if comparison.empty:
    st.info("No pooled outcome yet: the warehouse holds no poolable outcome rows.")
    st.stop()

# a view can be linked: ?outcome=…&definition=…&diabetes_type=…&window=… (ids as in the mart)
asked = st.query_params


def default_index(options: list, parameter: str, preferred) -> int:
    """The option asked for in the URL, else the preferred one, else the first."""
    for choice in (asked.get(parameter), preferred):
        if choice in options:
            return options.index(choice)
    return 0


outcomes = sorted(comparison["outcome"].unique())
c1, c2, c3 = st.columns(3)
outcome = c1.selectbox("Outcome", outcomes,
                       index=default_index(outcomes, "outcome", "insulin_independence"))
of_outcome = comparison[comparison["outcome"] == outcome]
definitions = (of_outcome.drop_duplicates("definition_id")
               .sort_values("definition_id")[["definition_id", "definition_label"]])
headline = of_outcome[of_outcome["is_headline"]]
default_definition = (headline["definition_id"].iloc[0] if not headline.empty
                      else definitions["definition_id"].iloc[0])
definition_ids = list(definitions["definition_id"])
definition = c2.selectbox("Definition", definition_ids,
                          index=default_index(definition_ids, "definition", default_definition),
                          format_func=lambda d: definitions.set_index("definition_id")
                          .loc[d, "definition_label"])
types = sorted(of_outcome["diabetes_type"].unique())
diabetes_type = c3.selectbox("Diabetes type (never pooled together)", types,
                             index=default_index(types, "diabetes_type", "T1D"))

t1, t2, t3 = st.columns(3)
verified_only = t1.toggle("Verified only (no secondary sources)", value=False)
include_overlapping = t2.toggle("Include possibly overlapping reports", value=False)
randomised_only = t3.toggle("Randomised studies only", value=False)

rows = of_outcome[(of_outcome["definition_id"] == definition)
                  & (of_outcome["diabetes_type"] == diabetes_type)
                  & (of_outcome["verified_only"] == verified_only)
                  & (of_outcome["include_overlapping"] == include_overlapping)
                  & (of_outcome["randomised_only"] == randomised_only)]
windows = (rows.drop_duplicates("window_id").sort_values("window_order")
           [["window_id", "window_label"]])
if windows.empty:
    st.info("Nothing to show for this choice (no cohort in this scenario).")
    st.stop()
window_ids = list(windows["window_id"])
window = st.radio("Follow-up window", window_ids, horizontal=True,
                  index=default_index(window_ids, "window", "m6_18"),
                  format_func=lambda w: windows.set_index("window_id").loc[w, "window_label"])
rows = (rows[rows["window_id"] == window]
        .sort_values(["therapy_class", "msc_source"], na_position="first").reset_index(drop=True))

definition_label = definitions.set_index("definition_id").loc[definition, "definition_label"]
st.plotly_chart(forest_figure(rows, effects, data.therapy_class_colours(),
                              f"{definition_label}: proportion of participants (95 % CI)"),
                width="stretch", config={"displayModeBar": False})
st.caption("Squares: one per cohort at its raw proportion, area proportional to its weight in "
           "the pooled estimate, with its exact 95 % CI. Diamond: the pooled estimate, spanning "
           "its 95 % CI (none for a single cohort, which is not pooled). Dotted line: the 95 % "
           "prediction interval (three cohorts or more).")

st.subheader("Estimates")
joined = {"caveats": "; ", "timepoints_used": ", ", "study_ids": ", "}
lists = {c: rows[c].map(lambda v, sep=sep: sep.join(v) if v is not None else "")
         for c, sep in joined.items()}
st.table(pd.DataFrame({
    "therapy": [therapy_name(r.therapy_label, r.msc_source) for r in rows.itertuples()],
    "k": rows["k_cohorts"], "N": rows["n_participants"], "events": rows["n_events"],
    "estimate (95 % CI)": [interval_text(r.estimate, r.ci_low, r.ci_high)
                           for r in rows.itertuples()],
    "prediction interval": [range_text(r.pi_low, r.pi_high) for r in rows.itertuples()],
    "I²": [proportion(v) if not is_missing(v) else "" for v in rows["i2"]],
    "certainty (automatic)": rows["certainty"],
    "caveats": lists["caveats"]}).set_index("therapy"))
st.caption("Certainty: an automatic GRADE-style rating from fixed rules (README, 'Certainty of "
           "the evidence'), not a guideline panel's judgement.")
with st.expander("Why each certainty: one reason per domain (an automatic rating, not a "
                 "guideline panel's judgement)"):
    reasons = rows[["therapy_label", "msc_source", "certainty", "certainty_design",
                    "certainty_risk_of_bias_reason", "certainty_inconsistency_reason",
                    "certainty_imprecision_reason", "certainty_indirectness_reason",
                    "certainty_publication_bias_reason"]]
    st.dataframe(reasons.rename(columns=lambda c: c.removeprefix("certainty_")
                                .removesuffix("_reason")),
                 hide_index=True, width="stretch")
st.caption("How each estimate was made")
st.table(pd.DataFrame({
    "therapy": [therapy_name(r.therapy_label, r.msc_source) for r in rows.itertuples()],
    "method": rows["method"], "timepoints used": lists["timepoints_used"],
    "reports used": lists["study_ids"]}).set_index("therapy"))

st.subheader("The rows behind the plot")
used = effects[effects["outcome_fact_id"].isin(
    {f for ids in rows["outcome_fact_ids"] for f in ids})].reset_index(drop=True)
st.dataframe(pd.DataFrame({
    "report": used["study_id"], "arm": used["arm"], "timepoint": used["timepoint_text"],
    "events / N": [count_text(e, n) for e, n in zip(used["events"], used["participants"],
                                                    strict=True)],
    "proportion (95 % CI)": [interval_text(e, lo, hi) for e, lo, hi
                             in zip(used["estimate"], used["ci_low"], used["ci_high"],
                                    strict=True)],
    "verified": used["verification_status"],
    "counts": [", ".join(note for flag, note in ((d, "derived from a %"), (c, "complement"))
                         if flag) or "as reported"
               for d, c in zip(used["is_count_derived"], used["is_complement_converted"],
                               strict=True)],
    "source": used["source_url"], "cohort": used["cohort_id"]}),
    hide_index=True, width="stretch",
    column_config={"arm": st.column_config.TextColumn(width="small"),
                   "events / N": st.column_config.TextColumn(width="small"),
                   "verified": st.column_config.TextColumn(width="small"),
                   "counts": st.column_config.TextColumn(width="small"),
                   "source": st.column_config.LinkColumn(
                       "source", display_text=r"https?://(?:www\.)?([^/]+)/.*", width="small")})
