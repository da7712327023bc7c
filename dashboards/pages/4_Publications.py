import _paths  # noqa: F401
import plotly.express as px
import streamlit as st

from dashboards import data
from dashboards.presentation import colours_by_label

st.set_page_config(page_title="Betacell: Publications", layout="wide")
data.use_the_page_width()
st.title("Publications")
trends = data.mart("publication_trends")
colours, labels = data.therapy_class_colours(), data.therapy_class_labels()
trends = trends.dropna(subset=["publication_year"]).assign(
    **{"class": trends["therapy_class"].map(lambda c: labels.get(c, c))})
st.plotly_chart(px.bar(trends, x="publication_year", y="publication_count", color="class",
                       color_discrete_map=colours_by_label(colours, labels),
                       category_orders={"class": sorted(trends["class"].unique())},
                       labels={"publication_year": "year", "publication_count": "publications"},
                       title="Publications per therapy class and year"),
                width="stretch")
publications = data.mart("dim_publications")
st.metric("Publications", len(publications))
publications = publications.assign(
    link=publications["publication_id"].map(data.publication_link),
    linked_trials=publications["linked_trial_ids"].map(lambda ids: ", ".join(ids)))
st.dataframe(publications[["publication_id", "first_author", "publication_year",
                           "therapy_class", "outcome_rows", "link", "linked_trials", "journal"]],
             hide_index=True, width="stretch",
             column_config={"publication_id": st.column_config.TextColumn("publication"),
                            "first_author": st.column_config.TextColumn("first author"),
                            "publication_year": st.column_config.NumberColumn(
                                "year", format="%d"),
                            "therapy_class": st.column_config.TextColumn("class"),
                            "outcome_rows": st.column_config.NumberColumn("outcome rows"),
                            "link": st.column_config.LinkColumn(
                                "PubMed / DOI", display_text=r"https?://(?:www\.)?([^/]+)/.*"),
                            "linked_trials": st.column_config.TextColumn("linked trials")})
st.subheader("Trial ↔ publication links")
links = data.mart("trial_publication_links")
st.dataframe(links.assign(trial=links["trial_id"].map(data.nct_link))[
    ["trial_id", "publication_id", "confidence", "link_sources", "trial"]],
    hide_index=True, width="stretch",
    column_config={"trial": st.column_config.LinkColumn("registry", display_text="record")})
