import _paths  # noqa: F401
import plotly.express as px
import streamlit as st

from dashboards import data

st.title("Safety")
st.caption("Harms per therapy class: participants affected / at risk where a source reports a "
           "count; 'not reported' means the source reports harms but not this one — it is not "
           "zero. Tumour and thrombosis counts are rare in abstracts.")
signals = data.mart("safety_signals")
pivot = signals.pivot_table(index="therapy_class", columns="harm_category",
                            values="studies_reporting", aggfunc="sum", fill_value=0)
st.plotly_chart(px.imshow(pivot, text_auto=True, color_continuous_scale="Blues",
                          title="Studies reporting each harm (with a count)"),
                use_container_width=True)
table = signals[["therapy_class", "harm_category", "studies_reporting",
                 "studies_reporting_qualitatively", "studies_not_reporting",
                 "participants_affected", "participants_at_risk"]]
st.dataframe(table.sort_values(["therapy_class", "harm_category"]), hide_index=True,
             use_container_width=True)

st.subheader("Rows behind the figures")
harms = data.mart("fct_adverse_events")
harms = harms[harms["reporting_status"] != "not_reported"]
st.dataframe(harms[["study_id", "trial_id", "arm", "harm_category", "reporting_status",
                    "affected_count", "at_risk_count", "verification_status", "source_url"]],
             hide_index=True, use_container_width=True,
             column_config={"source_url": st.column_config.LinkColumn("source")})
