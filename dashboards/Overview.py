"""Betacell dashboard: `make dashboard` (streamlit run dashboards/Overview.py). This file is the
Overview page; the other pages are dashboards/pages/*.py (one file per page)."""

import _paths  # noqa: F401  (puts the repo root on sys.path)
import streamlit as st

st.set_page_config(page_title="Betacell", page_icon="🧬", layout="wide")

from dashboards import data  # noqa: E402 - after set_page_config

data.use_the_page_width()

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
sources = data.mart("source_status")
stale = sources[sources["is_stale"]]
if not stale.empty:
    st.error("Stale: " + "; ".join(f"{r.source_label} ({r.last_error})" for r in stale.itertuples()))
shown = sources[["source_label", "is_stale", "last_loaded_at", "last_attempt_at",
                  "source_data_timestamp", "records_loaded"]]
st.dataframe(shown, hide_index=True, width="stretch", column_config=data.column_config(shown))
if published := data.published_at():
    st.caption(f"Published {published}")

st.subheader("What changed since the last run")
changes = data.mart("changes_since_last_run")
if changes.empty:
    st.info("Nothing changed in the latest run.")
else:
    summary = changes.groupby("change_type").size().rename("count").reset_index()
    st.dataframe(summary, hide_index=True, width="content")
    shown = changes.head(200)
    leading = [c for c in ("change_type", "entity_type", "entity_id", "changed_at")
               if c in shown.columns]
    st.dataframe(shown[leading + [c for c in shown.columns if c not in leading]],
                 hide_index=True, width="stretch", column_config=data.column_config(shown))
