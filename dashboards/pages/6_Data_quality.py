import _paths  # noqa: F401
import streamlit as st

from dashboards import data
from flows.settings import get_settings

st.title("Data quality")

st.subheader("Sources")
sources = data.mart("source_status")
stale = sources[sources["is_stale"]]
if not stale.empty:
    st.error("Stale sources — their latest attempt failed; the warehouse keeps their last good "
             "data: " + "; ".join(f"{r.source_label}: {r.last_error}" for r in stale.itertuples()))
st.dataframe(sources, hide_index=True, width="stretch")

reports = data.gate_reports()
if not reports:
    st.info("No gate results yet: run `make run`.")
for gate, report in reports.items():
    status = "passed" if report["passed"] else "FAILED"
    st.subheader(f"{gate.capitalize()} gate: {status}")
    st.caption(f"Validated {report.get('validated_at')}: {report['expectations']} expectations "
               f"in {report['checks']} checks; {len(report['warnings'])} warning(s).")
    if report["critical_failures"]:
        st.error("Critical failures")
        st.dataframe(report["critical_failures"], width="stretch")
    if report["warnings"]:
        st.warning("Warnings")
        st.dataframe(report["warnings"], width="stretch")
    if report["skipped"]:
        st.caption("Skipped: " + "; ".join(report["skipped"]))

st.subheader("Unresolved references")
unresolved = data.mart("unresolved_references")
st.caption(f"{len(unresolved)} trial id(s) named by curated sheets, curated links, secondary ids "
           "or PubMed DataBank entries that no registry record in the warehouse carries, even "
           "after fetching them by id.")
st.dataframe(unresolved[["registry_id", "registry", "unresolved_reason", "referenced_by",
                         "last_checked_at"]], hide_index=True, width="stretch")

st.subheader("Classification review queue")
queue = data.mart("classification_review_queue")
open_items = queue[queue["review_status"] == "open"]
st.caption(f"{len(open_items)} open item(s): registry records too thin to classify (no "
           "intervention listed, or products named only by codes). A row in "
           "dbt_project/seeds/classification_overrides.csv closes an item.")
st.dataframe(open_items[["trial_id", "registry", "brief_title", "product_names",
                         "review_reason"]], hide_index=True, width="stretch")

docs = get_settings().quality_dir / "data_docs" / "index.html"
st.subheader("Great Expectations Data Docs")
if docs.exists():
    st.markdown(f"Open the Data Docs: `{docs}` (file link: [index.html]({docs.as_uri()}))")
else:
    st.caption("Data Docs are built by the next run.")
rejects = (data.mart("rejected_records").sort_values("rejected_at", ascending=False)
           [["source", "run_id", "source_file", "source_line", "record_id", "reason"]].head(200))
st.subheader("Rejected records")
st.dataframe(rejects, hide_index=True, width="stretch")
