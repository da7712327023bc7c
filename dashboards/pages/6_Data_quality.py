import _paths  # noqa: F401
import streamlit as st

from dashboards import data
from flows.settings import get_settings

st.title("Data quality")
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
        st.dataframe(report["critical_failures"], use_container_width=True)
    if report["warnings"]:
        st.warning("Warnings")
        st.dataframe(report["warnings"], use_container_width=True)
    if report["skipped"]:
        st.caption("Skipped: " + "; ".join(report["skipped"]))
docs = get_settings().quality_dir / "data_docs" / "index.html"
st.subheader("Great Expectations Data Docs")
if docs.exists():
    st.markdown(f"Open the Data Docs: `{docs}` (file link: [index.html]({docs.as_uri()}))")
else:
    st.caption("Data Docs are built by the next run.")
rejects = data.query("select source, run_id, source_file, source_line, record_id, reason "
                     "from raw.rejected_records order by rejected_at desc limit 200")
st.subheader("Rejected records")
st.dataframe(rejects, hide_index=True, use_container_width=True)
