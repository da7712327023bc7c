"""Betacell dashboard: `make dashboard` (streamlit run dashboards/Overview.py). This file is the
Overview page; the other pages are dashboards/pages/*.py (one file per page)."""

import _paths  # noqa: F401  (puts the repo root on sys.path)
import streamlit as st

st.set_page_config(page_title="Betacell", page_icon="🧬", layout="wide")

from dashboards import data  # noqa: E402 - after set_page_config

st.title("Betacell — stem-cell therapies for diabetes")
st.caption("Evidence warehouse: registry records, publications and outcomes, with the source of "
           "every number. Estimates are labelled as such; 'not reported' is never shown as zero.")

trials = data.mart("dim_trials")
publications = data.mart("dim_publications")
outcomes = data.mart("fct_outcomes")
cols = st.columns(4)
cols[0].metric("Trials", len(trials))
cols[1].metric("Publications", len(publications))
cols[2].metric("Outcome rows", len(outcomes))
cols[3].metric("Therapy classes with trials", trials["therapy_class"].nunique())

st.subheader("Freshness of each source")
freshness = data.query("""
    select source, max(finished_at) as last_loaded, max(data_timestamp) as source_data_timestamp,
           sum(records_loaded) as records_loaded
    from raw.ingest_runs where status = 'loaded' group by source order by source""")
st.dataframe(freshness, hide_index=True, use_container_width=True)
version = data.query("select version_id, published_at from meta.published_version")
if not version.empty:
    st.caption(f"Published version {version.iloc[0]['version_id']} at "
               f"{version.iloc[0]['published_at']}")

st.subheader("What changed since the last run")
changes = data.mart("changes_since_last_run")
if changes.empty:
    st.info("Nothing changed in the latest run.")
else:
    summary = changes.groupby("change_type").size().rename("count").reset_index()
    st.dataframe(summary, hide_index=True)
    st.dataframe(changes.head(200), hide_index=True, use_container_width=True)
