import _paths  # noqa: F401
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboards import data
from dashboards.presentation import (
    NOT_REPORTED,
    colour_of,
    count_text,
    is_missing,
    range_text,
    text_or,
    wrap_label,
)

st.set_page_config(page_title="Betacell: Safety", layout="wide")
data.use_the_page_width()
st.title("Safety")
st.caption("Participants affected / at risk per therapy class, diabetes type and harm, over "
           "the cohorts that report the harm with a count or an explicit zero, with exact "
           "(Clopper-Pearson) 95 % intervals, read from marts.safety_signals. Diabetes types are "
           "never pooled. NR (grey) means no cohort reports a count for this harm: it is not zero. "
           "A harm spanning several adverse-event terms shows bounds (low-high): a participant "
           "with two terms is counted by both, so the registry data give only the range. "
           "Tumour and thrombosis counts are rare in abstracts.")
signals = data.mart("safety_signals")


def affected_text(affected, low, high, at_risk) -> str:
    """An exact count, or the bounds a harm of several terms allows; '–' when not stated."""
    def whole(value):
        return text_or(value if is_missing(value) else int(value), "–")
    if is_missing(affected) and not is_missing(low):
        return f"{whole(low)}-{whole(high)}/{whole(at_risk)} bounds"
    return f"{whole(affected)}/{whole(at_risk)}"

if signals.empty:
    st.info("No harm data yet.")
    st.stop()


def cell_text(row) -> str:
    """Two lines a reader can read in a cell: affected / at risk, then the exact interval."""
    if row["is_not_reported"]:
        return NOT_REPORTED
    if row["count_basis"] == "bounds":
        return (f"{int(row['participants_affected_low'])}-"
                f"{int(row['participants_affected_high'])}/{int(row['participants_at_risk'])} "
                f"bounds<br>({range_text(row['ci_low'], row['ci_high'])})")
    return (f"{count_text(row['participants_affected'], row['participants_at_risk'])}<br>"
            f"({range_text(row['ci_low'], row['ci_high'])})")


labels = data.therapy_class_labels()
signals = signals.assign(
    figure=signals.apply(cell_text, axis=1),
    column=[(c, text_or(t, "type not stated"))
            for c, t in zip(signals["therapy_class"], signals["diabetes_type"], strict=True)])
classes = sorted(signals["column"].unique(), key=lambda c: (labels.get(c[0], c[0]), c[1]))
harms = sorted(signals["harm_category"].unique())
lookup = signals.set_index(["column", "harm_category"])
# harms down the side, classes across: the class labels are short enough to sit side by side
z, text = [], []
for harm in harms:
    z.append([None if (c, harm) not in lookup.index or lookup.loc[(c, harm), "is_not_reported"]
              else lookup.loc[(c, harm), "proportion"] for c in classes])
    text.append([lookup.loc[(c, harm), "figure"] if (c, harm) in lookup.index else ""
                 for c in classes])
nr = [[1 if t == NOT_REPORTED else None for t in row] for row in text]
colours = data.therapy_class_colours()
x_labels = [f"<span style='color:{colour_of(c, colours)}'>■</span><br>"
            + wrap_label(labels.get(c, c), 13) + f"<br>{dtype}" for c, dtype in classes]
y_labels = [h.replace("_", " ") for h in harms]
fig = go.Figure()
fig.add_trace(go.Heatmap(z=nr, x=x_labels, y=y_labels, colorscale=[[0, "#e6e6e6"], [1, "#e6e6e6"]],
                         showscale=False, hoverinfo="skip", name="not reported", xgap=2, ygap=2,
                         text=text, texttemplate="%{text}", textfont={"size": 13, "color": "#666"}))
fig.add_trace(go.Heatmap(z=z, x=x_labels, y=y_labels, text=text, texttemplate="%{text}",
                         textfont={"size": 13}, colorscale="Reds", zmin=0, zmax=1, xgap=2, ygap=2,
                         name="affected / at risk",
                         colorbar={"title": {"text": "proportion<br>affected"}, "len": 0.8}))
fig.update_layout(height=170 + 52 * len(harms), margin={"l": 10, "r": 10, "t": 110, "b": 10},
                  xaxis={"side": "top", "tickfont": {"size": 13}, "tickangle": 0},
                  yaxis={"autorange": "reversed", "tickfont": {"size": 13}},
                  plot_bgcolor="white")
st.plotly_chart(fig, width="stretch", config={"displayModeBar": False})

table = signals.sort_values(["therapy_class", "diabetes_type", "harm_category"]).reset_index(
    drop=True)
notes = [", ".join(note for flag, note in ((derived, "derived counts"),
                                           (secondary, "secondary sources")) if flag)
         for derived, secondary in zip(table["includes_derived_counts"],
                                       table["includes_secondary_sources"], strict=True)]
st.dataframe(table.assign(
    therapy=table["therapy_class"].map(lambda c: labels.get(c, c)),
    harm=table["harm_category"].str.replace("_", " "),
    figure=table["figure"].str.replace("<br>", " "),
    notes=notes,
)[["therapy", "diabetes_type", "harm", "figure", "count_basis", "cohorts_with_count",
   "cohorts_with_bounds", "cohorts_reporting_qualitatively", "cohorts_without_count",
   "cohorts_not_reporting", "notes"]],
    hide_index=True, width="stretch", height=420,
    column_config={"figure": st.column_config.TextColumn("affected / at risk (95 % CI)"),
                   "diabetes_type": st.column_config.TextColumn("diabetes", width="small"),
                   "count_basis": st.column_config.TextColumn("basis", width="small"),
                   "cohorts_with_count": st.column_config.NumberColumn("counted",
                                                                       width="small"),
                   "cohorts_with_bounds": st.column_config.NumberColumn("bounded",
                                                                        width="small"),
                   "cohorts_reporting_qualitatively": st.column_config.NumberColumn(
                       "in words", width="small"),
                   "cohorts_without_count": st.column_config.NumberColumn("% only",
                                                                          width="small"),
                   "cohorts_not_reporting": st.column_config.NumberColumn("silent",
                                                                          width="small")})
st.caption("Cohorts per figure: counted (a count or an explicit zero), bounded (a harm of "
           "several terms, known only as low-high), in words (reported "
           "without a number), % only (a percentage without its n, left out of the "
           "denominator), silent (never mention the harm: not reported, not zero).")

st.subheader("Rows behind the figures")
harms_rows = data.mart("fct_adverse_events")
harms_rows = harms_rows[harms_rows["reporting_status"] != "not_reported"]
harms_rows = harms_rows.reset_index(drop=True)
st.dataframe(pd.DataFrame({
    "report": harms_rows["study_id"], "harm": harms_rows["harm_category"].str.replace("_", " "),
    "diabetes": harms_rows["diabetes_type"],
    "affected / at risk": [affected_text(a, low, high, n) for a, low, high, n in zip(
        harms_rows["affected_count"], harms_rows["affected_low"], harms_rows["affected_high"],
        harms_rows["at_risk_count"], strict=True)],
    "basis": harms_rows["count_basis"],
    "terms": harms_rows["terms"].map(lambda t: "; ".join(t) if t is not None else ""),
    "reported as": harms_rows["reporting_status"].str.replace("_", " "),
    "derived": harms_rows["is_count_derived"], "verified": harms_rows["verification_status"],
    "source": harms_rows["source_url"], "arm": harms_rows["arm"],
    "cohort": harms_rows["cohort_id"]}),
    hide_index=True, width="stretch",
    column_config={"derived": st.column_config.CheckboxColumn(width="small"),
                   "source": st.column_config.LinkColumn(
                       display_text=r"https?://(?:www\.)?([^/]+)/.*")})
