import _paths  # noqa: F401
import plotly.express as px
import streamlit as st

from dashboards import data
from dashboards.country_map import CAPTION, PLOT_CONFIG, country_map

st.set_page_config(page_title="Betacell: Trial landscape", layout="wide")
st.title("Trial landscape")
trials = data.mart("dim_trials")
classes = st.multiselect("Therapy class", sorted(trials["therapy_class"].unique()),
                         default=sorted(trials["therapy_class"].unique()))
trials = trials[trials["therapy_class"].isin(classes)]
st.metric("Trials", len(trials))

left, right = st.columns(2)
by_phase = trials.fillna({"highest_phase": "(not registered)"}).groupby(
    ["therapy_class", "highest_phase"]).size().rename("trials").reset_index()
left.plotly_chart(px.bar(by_phase, x="therapy_class", y="trials", color="highest_phase",
                         title="By class and highest phase"), width="stretch")
by_status = trials.fillna({"overall_status": "(not reported)"}).groupby(
    ["overall_status"]).size().rename("trials").reset_index()
right.plotly_chart(px.bar(by_status, x="overall_status", y="trials", title="By status"),
                   width="stretch")

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

left, right = st.columns(2)
years = trials.assign(start_year=trials["start_date"].astype("datetime64[ns]").dt.year)
by_year = years.dropna(subset=["start_year"]).groupby(["start_year", "therapy_class"]).size()
left.plotly_chart(px.bar(by_year.rename("trials").reset_index(), x="start_year", y="trials",
                         color="therapy_class", title="By start year"), width="stretch")
by_sponsor = trials.fillna({"sponsor_class": "(not reported)"}).groupby("sponsor_class").size()
right.plotly_chart(px.bar(by_sponsor.rename("trials").reset_index(), x="sponsor_class",
                          y="trials", title="By sponsor class"), width="stretch")

st.subheader("Trials")
table = trials[["trial_id", "brief_title", "therapy_class", "msc_source", "diabetes_type",
                "phase", "overall_status", "enrollment_count", "enrollment_type",
                "source_url"]]
st.dataframe(table, hide_index=True, width="stretch",
             column_config={"source_url": st.column_config.LinkColumn("registry record")})
