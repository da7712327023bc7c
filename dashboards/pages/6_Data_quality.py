import _paths  # noqa: F401
import streamlit as st

from dashboards import data
from dashboards.presentation import timestamp_text

st.set_page_config(page_title="Betacell: Data quality", layout="wide")
data.use_the_page_width()
st.title("Data quality")

st.subheader("Sources")
sources = data.mart("source_status")
stale = sources[sources["is_stale"]]
if stale.empty:
    st.caption("No stale source: every source's latest attempt succeeded (or it was never "
               "attempted).")
else:
    st.error(f"{len(stale)} stale source(s) — their latest attempt failed; the warehouse keeps "
             "their last good data: "
             + "; ".join(f"{r.source_label}: {r.last_error}" for r in stale.itertuples()))
    st.dataframe(stale[["source_label", "last_attempt_at", "last_loaded_at", "last_error"]],
                 hide_index=True, width="stretch", key="stale_sources")
st.dataframe(sources[[c for c in sources.columns if c not in {"source", "last_error"}]
                     + ["last_error"]],
             hide_index=True, width="stretch", key="sources",
             column_config=data.column_config(sources))

st.subheader("Quarantined records")
quarantined = data.mart("quarantined_records")
if quarantined.empty:
    st.caption("No record is quarantined: no record states impossible numbers, and the mart gate "
               "traced no failure to a record.")
else:
    st.error(f"{quarantined['record_id'].nunique()} record(s) quarantined - their results rows "
             "are kept out of every mart, the rest is published: "
             + "; ".join(f"{r.record_id}: {r.check_name}" for r in quarantined.itertuples()))
    st.dataframe(quarantined[["record_id", "source", "check_name", "offending_values",
                              "detected_by", "first_seen_at", "source_url"]],
                 hide_index=True, width="stretch", key="quarantined_records",
                 column_config={"source_url": st.column_config.LinkColumn("source")})

reports = data.gate_reports()
if not reports:
    st.info("No gate results yet: run `make run`.")
for gate, report in reports.items():
    status = "passed" if report["passed"] else "FAILED"
    st.subheader(f"{gate.capitalize()} gate: {status}")
    st.caption(f"Validated {timestamp_text(report.get('validated_at'))}: "
               f"{report['expectations']} expectations "
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
                         "last_checked_at"]], hide_index=True, width="stretch",
             column_config=data.column_config(unresolved))

st.subheader("Classification review queue")
queue = data.mart("classification_review_queue")
open_items = queue[queue["review_status"] == "open"]
st.caption(f"{len(open_items)} open item(s): registry records the rules cannot place (a named "
           "product no class fits, conflicting signals, a cell product no rule places, or a "
           "record too thin to tell). A row in dbt_project/seeds/classification_overrides.csv "
           "closes an item.")
st.dataframe(open_items[["trial_id", "registry", "brief_title", "product_names", "review_kind",
                         "review_reason"]], hide_index=True, width="stretch")

st.subheader("Outcome sheet warnings and errors")
problems = data.mart("outcome_sheet_problems")
if problems.empty:
    st.caption("The current outcome sheets have no warnings.")
for (sheet, status), group in problems.groupby(["sheet_file", "sheet_status"], sort=True):
    warnings = int((group["severity"] == "warning").sum())
    errors = int((group["severity"] == "error").sum())
    st.caption(f"{sheet}: {status}, {warnings} warning(s), {errors} error(s) in its current "
               "version. Warnings are kept and reported; an error rejects the sheet and the "
               "previous accepted version stays in effect.")
    st.dataframe(group[["severity", "sheet_row", "sheet_column", "problem"]], hide_index=True,
                 width="stretch", height=320, key=f"sheet_problems_{sheet}")

docs_url = data.data_docs_url()
st.subheader("Great Expectations Data Docs")
if docs_url:
    st.markdown(f"[Open the Data Docs]({docs_url}) — every expectation of both gates and its "
                "latest result, served by this app.")
else:
    st.caption("Data Docs are built by the next run.")
rejects = (data.mart("rejected_records").sort_values("rejected_at", ascending=False)
           [["source", "run_id", "source_file", "source_line", "record_id", "reason"]].head(200))
st.subheader("Rejected records")
st.caption(f"{len(rejects)} record(s), line(s) or sheet row(s) rejected by the loader, with the "
           "reason (latest first).")
st.dataframe(rejects, hide_index=True, width="stretch", key="rejected_records")
