import _paths  # noqa: F401
import streamlit as st

from dashboards import data

st.set_page_config(page_title="Betacell: What changed", layout="wide")
st.title("What changed")
st.caption("What moved since the previously published version, read from "
           "marts.evidence_changes: comparison rows that are new, removed, or whose estimate, "
           "95 % CI, number of cohorts or certainty moved (before → after, with the outcome "
           "facts added or removed), and trials that are new, changed status, posted results or "
           "became overdue. Each published version with changes also writes digest.md and an "
           "Atom feed (feed.atom) beside it, and sends the digest to the alert webhook.")

changes = data.mart("evidence_changes")
published = data.published_at()
if changes.empty:
    st.info("Nothing moved since the previous published version (or this is the first "
            f"version, with nothing to compare with). Published {published or 'not yet'}.")
    st.stop()

previous = changes["previous_version_id"].iloc[0]
st.markdown(f"Compared with version `{previous}`; published {published}.")
kinds = changes["change_type"].value_counts()
labels = {"comparison_moved": "Estimates moved", "comparison_new": "New rows",
          "comparison_removed": "Rows removed", "trial_new": "New trials",
          "trial_status_changed": "Status changed", "trial_results_posted": "Results posted",
          "trial_became_overdue": "Became overdue"}
columns = st.columns(len(labels))
for column, (kind, label) in zip(columns, labels.items(), strict=True):
    column.metric(label, int(kinds.get(kind, 0)))

comparisons = changes[changes["entity_type"] == "comparison"].copy()
headline = comparisons[comparisons["is_headline"].fillna(False)]
if not headline.empty:
    st.subheader("Headline rows")
    st.markdown("\n".join(
        f"- **{row.label}**: {row.before or 'new'} → {row.after or 'removed'}"
        + (f" (facts added: {', '.join(row.fact_ids_added)})"
           if row.fact_ids_added is not None and len(row.fact_ids_added) else "")
        for row in headline.itertuples()))
if not comparisons.empty:
    st.subheader("All comparison rows")
    headline_only = st.toggle("Headline rows only", value=False)
    if headline_only:
        comparisons = comparisons[comparisons["is_headline"].fillna(False)]
    for column in ("fact_ids_added", "fact_ids_removed"):
        comparisons[column] = comparisons[column].map(
            lambda ids: ", ".join(ids) if ids is not None else "")
    for column in ("before", "after"):  # nothing before a new row, nothing after a removed one
        comparisons[column] = comparisons[column].fillna("—")
    st.dataframe(comparisons.sort_values(["is_headline", "change_type"], ascending=[False, True])
                 [["change_type", "before", "after", "label", "is_headline", "fact_ids_added",
                   "fact_ids_removed", "k_before", "k_after", "certainty_before",
                   "certainty_after", "entity_id"]],
                 hide_index=True, width="stretch",
                 column_config={"entity_id": st.column_config.TextColumn("comparison_id"),
                                "before": st.column_config.TextColumn(width="medium"),
                                "after": st.column_config.TextColumn(width="medium"),
                                "label": st.column_config.TextColumn(width="large"),
                                "is_headline": st.column_config.CheckboxColumn("headline")})

trials = changes[changes["entity_type"] == "trial"].copy()
if not trials.empty:
    st.subheader("Trials")
    trials["registry record"] = trials["entity_id"].map(data.nct_link)
    trials["before"] = trials["before"].fillna("—")
    st.dataframe(trials[["change_type", "entity_id", "label", "before", "after",
                         "registry record"]],
                 hide_index=True, width="stretch",
                 column_config={"registry record": st.column_config.LinkColumn()})
