import importlib.util

import _paths
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboards import data

spec = importlib.util.spec_from_file_location(
    "pooling", _paths.ROOT / "dbt_project/models/intermediate/int_pooled_outcomes.py")
pooling = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pooling)

st.title("Therapy comparison")
st.caption("Proportions pooled per therapy class with DerSimonian–Laird random effects on the "
           "logit scale (statsmodels), back-transformed: these are ESTIMATES from small, "
           "mostly single-arm studies whose populations differ. Points are study arms with "
           "95 % CIs; diamonds are pooled estimates; a single-study class has no diamond. Control arms (placebo, standard care) are not shown.")

facts = data.query("""
    select o.*, p.design, p.randomized
    from intermediate.int_outcomes_classified o
    left join staging.stg_outcomes__published_outcomes p on p.outcome_row_id = o.source_record_id
    where o.measure = 'proportion' and o.n_events is not null and o.n_analyzed > 0
      and not o.is_control_arm""")

outcomes = sorted(facts["outcome"].unique())
default = outcomes.index("insulin_independence") if "insulin_independence" in outcomes else 0
left, right = st.columns(2)
outcome = left.selectbox("Outcome", outcomes, index=default)
diabetes = right.multiselect("Diabetes type", sorted(facts["diabetes_type"].dropna().unique()),
                             default=sorted(facts["diabetes_type"].dropna().unique()))
c1, c2, c3 = st.columns(3)
verified_only = c1.toggle("Verified only (exclude 'secondary' and 'no')", value=False)
include_overlapping = c2.toggle("Include overlapping cohorts", value=False)
randomized_only = c3.toggle("Randomized designs only", value=False)

rows = facts[(facts["outcome"] == outcome) & facts["diabetes_type"].isin(diabetes)]
excluded_unverified = int((rows["verification_status"] == "no").sum())
rows = rows[rows["verification_status"] != "no"]
if verified_only:
    rows = rows[rows["verification_status"].isin(["yes", "registry_posted"])]
excluded_overlap = int(rows["is_overlapping_cohort"].sum()) if not include_overlapping else 0
if not include_overlapping:
    rows = rows[~rows["is_overlapping_cohort"]]
if randomized_only:
    rows = rows[rows["randomized"].fillna("").str.startswith("yes")]
rows = (rows.assign(_t=rows["timepoint_months"].fillna(-1))
        .sort_values(["study_id", "arm", "_t"], ascending=[True, True, False])
        .drop_duplicates(["study_id", "arm"]))

st.caption(f"Excluded: {excluded_unverified} unverified row(s)"
           + (f", {excluded_overlap} overlapping-cohort row(s)" if excluded_overlap else ""))

summary = []
fig = go.Figure()
y_labels = []
for therapy_class, group in rows.groupby("therapy_class"):
    for _, row in group.iterrows():
        est, low, high, _, _ = pooling.pool_proportions([row["n_events"]], [row["n_analyzed"]])
        label = f"{row['study_id']} · {row['arm'] or ''} (n={int(row['n_analyzed'])})"
        y_labels.append(label)
        fig.add_trace(go.Scatter(x=[row["n_events"] / row["n_analyzed"]], y=[label],
                                 error_x={"type": "data", "symmetric": False,
                                          "array": [high - row["n_events"] / row["n_analyzed"]],
                                          "arrayminus": [row["n_events"] / row["n_analyzed"] - low]},
                                 mode="markers", marker={"size": 8, "color": "#4c78a8"},
                                 showlegend=False))
    estimate, low, high, tau2, i2 = pooling.pool_proportions(group["n_events"], group["n_analyzed"])
    k, n = group["study_id"].nunique(), int(group["n_analyzed"].sum())
    summary.append({"therapy_class": therapy_class, "k": k, "N": n,
                    "estimate": round(estimate, 3), "ci_low": round(low, 3),
                    "ci_high": round(high, 3), "I2": None if i2 is None else round(i2, 2),
                    "single_study": k == 1,
                    "studies": ", ".join(sorted(group["study_id"].unique()))})
    if k > 1:
        label = f"◆ {therapy_class} pooled (k={k}, N={n})"
        y_labels.append(label)
        fig.add_trace(go.Scatter(x=[low, estimate, high, estimate, low],
                                 y=[label, label, label, label, label], fill="toself",
                                 mode="lines+markers", marker={"symbol": "diamond", "size": 12,
                                                               "color": "#e45756"},
                                 line={"color": "#e45756"}, showlegend=False))
fig.update_layout(height=max(300, 28 * len(y_labels)), xaxis={"range": [0, 1],
                  "title": f"{outcome} (proportion, 95 % CI)"},
                  yaxis={"autorange": "reversed"}, margin={"l": 10, "r": 10, "t": 10, "b": 40})
st.plotly_chart(fig, use_container_width=True)

st.subheader("Per class")
st.dataframe(pd.DataFrame(summary), hide_index=True, use_container_width=True)

st.subheader("The rows behind the plot")
table = rows[["study_id", "arm", "therapy_class", "n_events", "n_analyzed", "value",
              "verification_status", "citation_quality", "source_url"]].copy()
st.dataframe(table, hide_index=True, use_container_width=True,
             column_config={"source_url": st.column_config.LinkColumn("source")})
