import _paths  # noqa: F401
import streamlit as st

from dashboards import data

st.set_page_config(page_title="Betacell: Results reporting", layout="wide")
data.use_the_page_width()
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
st.dataframe(reporting[["trial_id", "therapy_class", "overall_status",
                        "reference_completion_date", "reference_date_precision",
                        "months_since_completion", "has_results_posted",
                        "has_linked_result_publication", "source_url", "brief_title"]]
             .sort_values("months_since_completion", ascending=False),
             hide_index=True, width="stretch",
             column_config={"trial_id": st.column_config.TextColumn("trial"),
                            "brief_title": st.column_config.TextColumn("title", width="large"),
                            "therapy_class": st.column_config.TextColumn("class"),
                            "overall_status": st.column_config.TextColumn("status"),
                            "reference_completion_date": st.column_config.DateColumn(
                                "completion", format="YYYY-MM-DD"),
                            "reference_date_precision": st.column_config.TextColumn("precision"),
                            "months_since_completion": st.column_config.NumberColumn("months"),
                            "has_results_posted": st.column_config.CheckboxColumn(
                                "results posted"),
                            "has_linked_result_publication": st.column_config.CheckboxColumn(
                                "result publication"),
                            "source_url": st.column_config.LinkColumn(
                                "registry", display_text="record")})
