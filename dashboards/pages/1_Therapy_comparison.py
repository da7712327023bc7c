import _paths  # noqa: F401
import plotly.graph_objects as go
import streamlit as st

from dashboards import data

st.set_page_config(page_title="Betacell: Therapy comparison", layout="wide")
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

outcomes = sorted(comparison["outcome"].unique())
c1, c2, c3 = st.columns(3)
outcome = c1.selectbox("Outcome", outcomes, index=outcomes.index("insulin_independence")
                       if "insulin_independence" in outcomes else 0)
of_outcome = comparison[comparison["outcome"] == outcome]
definitions = (of_outcome.drop_duplicates("definition_id")
               .sort_values("definition_id")[["definition_id", "definition_label"]])
headline = of_outcome[of_outcome["is_headline"]]
default_definition = (headline["definition_id"].iloc[0] if not headline.empty
                      else definitions["definition_id"].iloc[0])
definition = c2.selectbox("Definition", list(definitions["definition_id"]),
                          index=list(definitions["definition_id"]).index(default_definition),
                          format_func=lambda d: definitions.set_index("definition_id")
                          .loc[d, "definition_label"])
types = sorted(of_outcome["diabetes_type"].unique())
diabetes_type = c3.selectbox("Diabetes type (never pooled together)", types,
                             index=types.index("T1D") if "T1D" in types else 0)

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
default_window = "m6_18" if "m6_18" in set(windows["window_id"]) else windows["window_id"].iloc[0]
window = st.radio("Follow-up window", list(windows["window_id"]), horizontal=True,
                  index=list(windows["window_id"]).index(default_window),
                  format_func=lambda w: windows.set_index("window_id").loc[w, "window_label"])
rows = rows[rows["window_id"] == window].sort_values(["therapy_class", "msc_source"],
                                                     na_position="first")

fig = go.Figure()
labels = []
by_fact = effects.set_index("outcome_fact_id")
for _, row in rows.iterrows():
    name = row["therapy_label"] + (f" · {row['msc_source']}" if row["msc_source"]
                                   and row["msc_source"] != "all sources" else "")
    for fact_id in row["outcome_fact_ids"]:
        fact = by_fact.loc[fact_id]
        label = (f"{name} · {fact['study_id']} · {fact['arm'] or ''} "
                 f"({fact['events']}/{fact['participants']})")
        labels.append(label)
        fig.add_trace(go.Scatter(
            x=[fact["estimate"]], y=[label], mode="markers", showlegend=False,
            marker={"size": 8, "color": "#4c78a8"},
            error_x={"type": "data", "symmetric": False,
                     "array": [fact["ci_high"] - fact["estimate"]],
                     "arrayminus": [fact["estimate"] - fact["ci_low"]]}))
    label = (f"◆ {name}: k={row['k_cohorts']}, N={row['n_participants']}, "
             f"certainty {row['certainty']} (automatic)")
    labels.append(label)
    if row["pi_low"] == row["pi_low"]:  # a prediction interval exists
        fig.add_trace(go.Scatter(x=[row["pi_low"], row["pi_high"]], y=[label, label],
                                 mode="lines", line={"color": "#e45756", "dash": "dot"},
                                 showlegend=False))
    fig.add_trace(go.Scatter(
        x=[row["ci_low"], row["estimate"], row["ci_high"], row["estimate"], row["ci_low"]],
        y=[label] * 5, fill="toself", mode="lines+markers", showlegend=False,
        marker={"symbol": "diamond", "size": 12, "color": "#e45756"},
        line={"color": "#e45756"}))
fig.update_layout(height=max(300, 28 * len(labels)), xaxis={"range": [0, 1],
                  "title": f"{outcome}: {definition} (proportion, 95 % CI)"},
                  yaxis={"autorange": "reversed"}, margin={"l": 10, "r": 10, "t": 10, "b": 40})
st.plotly_chart(fig, width="stretch")

st.subheader("Estimates")
table = rows[["therapy_class", "therapy_label", "msc_source", "k_cohorts", "n_participants",
              "n_events", "estimate", "ci_low", "ci_high", "certainty", "pi_low", "pi_high",
              "method", "caveats", "timepoints_used", "study_ids"]].copy()
table["caveats"] = table["caveats"].map(lambda c: "; ".join(c) if c is not None else "")
table["timepoints_used"] = table["timepoints_used"].map(
    lambda c: ", ".join(c) if c is not None else "")
table["study_ids"] = table["study_ids"].map(lambda c: ", ".join(c) if c is not None else "")
st.dataframe(table, hide_index=True, width="stretch",
             column_config={**{c: st.column_config.NumberColumn(format="%.3f")
                               for c in ("estimate", "ci_low", "ci_high", "pi_low", "pi_high")},
                            "certainty": st.column_config.TextColumn(
                                "certainty (automatic)",
                                help="An automatic GRADE-style rating from fixed rules (README, "
                                     "'Certainty of the evidence'), not a guideline panel's "
                                     "judgement")})
with st.expander("Why each certainty: one reason per domain (an automatic rating, not a "
                 "guideline panel's judgement)"):
    reasons = rows[["therapy_label", "msc_source", "certainty", "certainty_design",
                    "certainty_risk_of_bias_reason", "certainty_inconsistency_reason",
                    "certainty_imprecision_reason", "certainty_indirectness_reason",
                    "certainty_publication_bias_reason"]]
    st.dataframe(reasons.rename(columns=lambda c: c.removeprefix("certainty_")
                                .removesuffix("_reason")),
                 hide_index=True, width="stretch")

st.subheader("The rows behind the plot")
used = effects[effects["outcome_fact_id"].isin(
    {f for ids in rows["outcome_fact_ids"] for f in ids})]
st.dataframe(used[["study_id", "cohort_id", "arm", "timepoint_text", "events", "participants",
                   "estimate", "ci_low", "ci_high", "verification_status", "is_count_derived",
                   "is_complement_converted", "source_url"]],
             hide_index=True, width="stretch",
             column_config={"source_url": st.column_config.LinkColumn("source")})
