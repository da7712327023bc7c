import _paths  # noqa: F401
import streamlit as st

from dashboards import data

st.set_page_config(page_title="Betacell: Results reporting", layout="wide")
st.title("Results reporting")
st.caption("Completed or terminated trials: months since (primary) completion, and whether "
           "results were posted or a result publication is linked.")
reporting = data.mart("results_reporting")
cols = st.columns(3)
cols[0].metric("Completed / terminated trials", len(reporting))
cols[1].metric("Overdue > 12 months", int(reporting["is_overdue_12_months"].fillna(False).sum()))
cols[2].metric("Overdue > 24 months", int(reporting["is_overdue_24_months"].fillna(False).sum()))
only_overdue = st.toggle("Only overdue (> 24 months)", value=True)
if only_overdue:
    reporting = reporting[reporting["is_overdue_24_months"].fillna(False)]
st.dataframe(reporting[["trial_id", "brief_title", "therapy_class", "overall_status",
                        "reference_completion_date", "reference_date_precision",
                        "months_since_completion", "has_results_posted",
                        "has_linked_result_publication", "source_url"]]
             .sort_values("months_since_completion", ascending=False),
             hide_index=True, width="stretch",
             column_config={"source_url": st.column_config.LinkColumn("registry record")})
