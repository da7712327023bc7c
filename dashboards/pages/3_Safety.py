import _paths  # noqa: F401
import plotly.graph_objects as go
import streamlit as st

from dashboards import data

st.set_page_config(page_title="Betacell: Safety", layout="wide")
st.title("Safety")
st.caption("Participants affected / at risk per therapy class, diabetes type and harm, over "
           "the cohorts that report the harm with a count or an explicit zero, with exact "
           "(Clopper-Pearson) 95 % intervals, read from marts.safety_signals. Diabetes types are "
           "never pooled. NR (grey) means no cohort reports a count for this harm: it is not zero. "
           "A harm spanning several adverse-event terms shows bounds (low-high): a participant "
           "with two terms is counted by both, so the registry data give only the range. "
           "Tumour and thrombosis counts are rare in abstracts.")
signals = data.mart("safety_signals")
if signals.empty:
    st.info("No harm data yet.")
    st.stop()


def cell_text(row) -> str:
    if row["is_not_reported"]:
        return "NR"
    if row["count_basis"] == "bounds":
        return (f"{int(row['participants_affected_low'])}-{int(row['participants_affected_high'])}"
                f"/{int(row['participants_at_risk'])} bounds ({row['ci_low']:.2f}-"
                f"{row['ci_high']:.2f})")
    return (f"{int(row['participants_affected'])}/{int(row['participants_at_risk'])} "
            f"({row['ci_low']:.2f}-{row['ci_high']:.2f})")


signals = signals.assign(
    figure=signals.apply(cell_text, axis=1),
    row_label=signals["therapy_class"] + " · " + signals["diabetes_type"].fillna("type not stated"))
classes = sorted(signals["row_label"].unique())
harms = sorted(signals["harm_category"].unique())
lookup = signals.set_index(["row_label", "harm_category"])
z, text = [], []
for cls in classes:
    z.append([None if (cls, h) not in lookup.index or lookup.loc[(cls, h), "is_not_reported"]
              else lookup.loc[(cls, h), "proportion"] for h in harms])
    text.append([lookup.loc[(cls, h), "figure"] if (cls, h) in lookup.index else "" for h in harms])
nr = [[1 if t == "NR" else None for t in row] for row in text]
fig = go.Figure()
fig.add_trace(go.Heatmap(z=nr, x=harms, y=classes, colorscale=[[0, "#d9d9d9"], [1, "#d9d9d9"]],
                         showscale=False, hoverinfo="skip", name="not reported"))
fig.add_trace(go.Heatmap(z=z, x=harms, y=classes, text=text, texttemplate="%{text}",
                         colorscale="Reds", zmin=0, zmax=1, name="affected / at risk",
                         colorbar={"title": "proportion"}))
fig.update_layout(height=90 + 45 * len(classes), margin={"l": 10, "r": 10, "t": 10, "b": 10})
st.plotly_chart(fig, width="stretch")

table = signals[["therapy_class", "diabetes_type", "harm_category", "figure", "count_basis",
                 "cohorts_with_count", "cohorts_with_bounds",
                 "cohorts_reporting_qualitatively", "cohorts_without_count",
                 "cohorts_not_reporting", "participants_affected", "participants_at_risk",
                 "proportion", "ci_low", "ci_high", "includes_derived_counts",
                 "includes_secondary_sources"]]
st.dataframe(table.sort_values(["therapy_class", "diabetes_type", "harm_category"]),
             hide_index=True,
             width="stretch")

st.subheader("Rows behind the figures")
harms_rows = data.mart("fct_adverse_events")
harms_rows = harms_rows[harms_rows["reporting_status"] != "not_reported"]
st.dataframe(harms_rows[["study_id", "trial_id", "cohort_id", "arm", "diabetes_type",
                         "harm_category", "reporting_status", "count_basis", "affected_count",
                         "affected_low", "affected_high", "at_risk_count", "terms",
                         "is_count_derived", "verification_status", "source_url"]],
             hide_index=True, width="stretch",
             column_config={"source_url": st.column_config.LinkColumn("source")})
