import _paths  # noqa: F401
import plotly.express as px
import streamlit as st

from dashboards import data

st.set_page_config(page_title="Betacell: Publications", layout="wide")
st.title("Publications")
trends = data.mart("publication_trends")
st.plotly_chart(px.bar(trends.dropna(subset=["publication_year"]), x="publication_year",
                       y="publication_count", color="therapy_class",
                       title="Publications per therapy class and year"),
                width="stretch")
publications = data.mart("dim_publications")
st.metric("Publications", len(publications))
publications = publications.assign(
    link=publications["publication_id"].map(data.publication_link),
    linked_trials=publications["linked_trial_ids"].map(lambda ids: ", ".join(ids)))
st.dataframe(publications[["publication_id", "first_author", "journal", "publication_year",
                           "therapy_class", "linked_trials", "outcome_rows", "link"]],
             hide_index=True, width="stretch",
             column_config={"link": st.column_config.LinkColumn("PubMed / DOI")})
st.subheader("Trial ↔ publication links")
links = data.mart("trial_publication_links")
st.dataframe(links.assign(trial=links["trial_id"].map(data.nct_link))[
    ["trial_id", "publication_id", "confidence", "link_sources", "trial"]],
    hide_index=True, width="stretch",
    column_config={"trial": st.column_config.LinkColumn("registry")})
