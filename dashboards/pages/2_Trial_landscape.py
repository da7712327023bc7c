import _paths  # noqa: F401
import pandas as pd
import plotly.express as px
import streamlit as st

from dashboards import data
from dashboards.country_map import CAPTION, PLOT_CONFIG, country_map
from dashboards.presentation import (
    colours_by_label,
    enrollment_text,
    phase_colours,
    phase_rank,
    therapy_name,
)

st.set_page_config(page_title="Betacell: Trial landscape", layout="wide")
data.use_the_page_width()
st.title("Trial landscape")
trials = data.mart("dim_trials")
colours, labels = data.therapy_class_colours(), data.therapy_class_labels()
all_classes = sorted(trials["therapy_class"].unique(), key=lambda c: labels.get(c, c))
classes = st.multiselect("Therapy class", all_classes, default=all_classes,
                         format_func=lambda c: labels.get(c, c))
trials = trials[trials["therapy_class"].isin(classes)]
st.metric("Trials", len(trials))

by_phase = trials.fillna({"highest_phase": "(not registered)"}).groupby(
    ["therapy_class", "highest_phase"]).size().rename("trials").reset_index()
by_phase["therapy"] = by_phase["therapy_class"].map(lambda c: labels.get(c, c))
phases = sorted(by_phase["highest_phase"].unique(), key=phase_rank)
st.plotly_chart(px.bar(by_phase, x="trials", y="therapy", color="highest_phase",
                       orientation="h", title="By class and highest phase",
                       color_discrete_map=phase_colours(phases),
                       category_orders={"therapy": [labels.get(c, c) for c in classes],
                                        "highest_phase": phases},
                       labels={"therapy": "", "highest_phase": "highest phase"},
                       height=120 + 28 * len(classes)),
                width="stretch")
by_status = trials.fillna({"overall_status": "(not reported)"}).groupby(
    ["overall_status"]).size().rename("trials").reset_index()
left, right = st.columns(2)
left.plotly_chart(px.bar(by_status, x="overall_status", y="trials", title="By status",
                         labels={"overall_status": "status"}), width="stretch")
by_sponsor = trials.fillna({"sponsor_class": "(not reported)"}).groupby("sponsor_class").size()
right.plotly_chart(px.bar(by_sponsor.rename("trials").reset_index(), x="sponsor_class",
                          y="trials", title="By sponsor class",
                          labels={"sponsor_class": "sponsor class"}), width="stretch")

countries = trials.explode("countries").dropna(subset=["countries"]).groupby("countries").size()
countries = countries.rename("trials").reset_index().rename(columns={"countries": "country"})
st.subheader("Where trials recruit")
figure, unplaced = country_map(countries["country"], countries["trials"])
st.caption("Sites by country (a trial with sites in several countries counts once per country; "
           "places too small for the map are dots). " + CAPTION)
st.plotly_chart(figure, width="stretch", config=PLOT_CONFIG)
if unplaced:
    st.caption("Not on the map: " + ", ".join(sorted(unplaced)))
st.dataframe(countries.sort_values("trials", ascending=False), hide_index=True, width="stretch",
             height=250)

years = trials.assign(start_year=trials["start_date"].astype("datetime64[ns]").dt.year)
by_year = years.dropna(subset=["start_year"]).groupby(["start_year", "therapy_class"]).size()
by_year = by_year.rename("trials").reset_index()
by_year["class"] = by_year["therapy_class"].map(lambda c: labels.get(c, c))
st.plotly_chart(px.bar(by_year, x="start_year", y="trials", color="class",
                       color_discrete_map=colours_by_label(colours, labels),
                       category_orders={"class": [labels.get(c, c) for c in classes]},
                       labels={"start_year": "start year"}, title="By start year"),
                width="stretch")


st.subheader("Trials")
trials = trials.reset_index(drop=True)
table = pd.DataFrame({
    "trial": trials["trial_id"], "title": trials["brief_title"],
    "class": [therapy_name(c, source) for c, source
              in zip(trials["therapy_class"], trials["msc_source"], strict=True)],
    "diabetes": trials["diabetes_type"], "phase": trials["phase"],
    "status": trials["overall_status"],
    "enrolled": [enrollment_text(n, kind) for n, kind
                 in zip(trials["enrollment_count"], trials["enrollment_type"], strict=True)],
    "registry": trials["source_url"]})
st.dataframe(table, hide_index=True, width="stretch",
             column_config={"title": st.column_config.TextColumn(width="medium"),
                            "registry": st.column_config.LinkColumn(display_text="record")})
