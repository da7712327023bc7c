import _paths  # noqa: F401
import streamlit as st

from dashboards import data
from flows.prisma import prisma_svg

st.set_page_config(page_title="Betacell: PRISMA flow", layout="wide")
st.title("PRISMA 2020 flow")
st.caption("How the studies of this published version were found, screened and included, "
           "drawn from marts.prisma_flow as the PRISMA 2020 diagram for reviews that searched "
           "registers and databases and used other methods (here: the curated outcome "
           "sheets). Screening is done by the classifier's rules; records it cannot classify go "
           "to a curator's review. The same diagram is written beside every published version "
           "(prisma_flow.svg).")

flow = data.mart("prisma_flow")
if flow.empty:
    st.info("The flow is empty: nothing was identified.")
    st.stop()
flow = flow.sort_values(["stage_order", "stage", "path", "source", "reason"])
svg = prisma_svg(flow.to_dict("records"))

counts = st.columns(4)
screened = flow[(flow["stage"] == "screened") & (flow["record_type"] == "trial")]["count"].sum()
counts[0].metric("Trials screened", int(screened))
counts[1].metric("Excluded", int(flow[flow["stage"] == "excluded"]["count"].sum()))
counts[2].metric("Sent to review", int(flow[flow["stage"] == "sent_to_review"]["count"].sum()))
counts[3].metric("Studies with outcome data",
                 int(flow[flow["stage"] == "with_outcome_data"]["count"].sum()))

st.image(svg, width="content")
st.download_button("Download the diagram (SVG)", svg, file_name="prisma_flow.svg",
                   mime="image/svg+xml")

st.subheader("The numbers behind the diagram")
st.dataframe(flow[["stage", "path", "source", "record_type", "count", "reason"]],
             hide_index=True, width="stretch")
