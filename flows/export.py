"""``betacell export``: the study-level rows behind published estimates, for the analyst's tools.

One row per cohort behind each selected row of ``marts.therapy_outcome_comparison``: its
events and participants exactly as the estimate used them (the facts it names in
``outcome_fact_ids``, the arms of one cohort summed), with definition, window, timepoints and
the ids of the facts, studies, trials and publications they come from. Three layouts:

- ``metafor``: a CSV for ``escalc(measure = "PLO", xi = xi, ni = ni, slab = study)`` then
  ``rma()`` / ``rma.glmm()``; ``comparison_id`` groups the rows of several estimates;
- ``revman``: the layout of RevMan's dichotomous data (one row per study: Study ID, year,
  events and total of the experimental group, of the control group). RevMan pools comparisons
  only: single-group proportions leave the control group empty, and the logit proportion with
  its standard error is given for a generic inverse variance outcome;
- ``csv``: everything above and the estimate's own row, one line per cohort.

Reads the published warehouse read-only; computes nothing but sums of published counts (and,
for RevMan's generic inverse variance columns, the logit and its standard error).
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from flows.errors import BetacellError
from flows.settings import Settings

FORMATS = ("metafor", "revman", "csv")
FILTER_PAIR = re.compile(r"^\s*([a-z_]+)\s*=\s*(.*?)\s*$")
ROW_COLUMNS = ("comparison_id", "therapy_label", "outcome", "definition_id", "definition_label",
               "window_id", "window_label", "diabetes_type", "is_headline", "k_cohorts",
               "n_participants", "n_events", "estimate", "ci_low", "ci_high", "method",
               "certainty")


@dataclass(frozen=True)
class Export:
    text: str
    comparison_ids: list[str]
    cohorts: int


def export_comparison(settings: Settings, selector: str, layout: str) -> Export:
    """The study-level rows behind the comparison row(s) ``selector`` names (a comparison_id,
    or ``column=value`` pairs separated by commas), in ``layout``."""
    if layout not in FORMATS:
        raise BetacellError(f"unknown export format {layout!r}: use one of {', '.join(FORMATS)}")
    if not settings.warehouse_path.exists():
        raise BetacellError(f"nothing is published at {settings.warehouse_path} yet: run "
                            "`betacell run` first, then export")
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        rows = select_rows(con, selector)
        cohorts = [cohort for row in rows for cohort in cohort_rows(con, row)]
    finally:
        con.close()
    writer = {"metafor": metafor_csv, "revman": revman_csv, "csv": full_csv}[layout]
    return Export(writer(cohorts), [r["comparison_id"] for r in rows], len(cohorts))


def select_rows(con: duckdb.DuckDBPyConnection, selector: str) -> list[dict[str, Any]]:
    columns = [name for (name,) in con.execute(
        "select column_name from information_schema.columns where table_schema = 'marts' "
        "and table_name = 'therapy_outcome_comparison'").fetchall()]
    if "=" in selector:
        where, values = [], []
        for part in selector.split(","):
            match = FILTER_PAIR.match(part)
            if not match or match.group(1) not in columns:
                raise BetacellError(
                    f"cannot read the filter {part.strip()!r} of --comparison {selector!r}: "
                    "write column=value pairs separated by commas, with columns of "
                    "marts.therapy_outcome_comparison (e.g. outcome=insulin_independence,"
                    "therapy_class=msc,is_headline=true)")
            where.append(f'lower(cast("{match.group(1)}" as varchar)) = lower(?)')
            values.append(match.group(2))
        sql_filter = " and ".join(where)
    else:
        sql_filter, values = "comparison_id = ?", [selector.strip()]
    selected = ", ".join(f'"{c}"' for c in ROW_COLUMNS if c in columns)
    frame = con.execute(
        f"select {selected}, outcome_fact_ids from marts.therapy_outcome_comparison "
        f"where estimate is not null and {sql_filter} order by comparison_id", values).fetchdf()
    if frame.empty:
        raise BetacellError(
            f"no comparison row with an estimate matches --comparison {selector!r}. A row id "
            "looks like 'all_sources:no_overlaps:any_design:msc:all sources:T1D:"
            "insulin_independence:ii_at_timepoint:m6_18'; list them with `make query "
            "SQL=\"select comparison_id from marts.therapy_outcome_comparison where "
            "is_headline\"`, or filter with column=value pairs")
    return [{k: _plain(v) for k, v in r.items()} for r in frame.to_dict("records")]


def cohort_rows(con: duckdb.DuckDBPyConnection, row: dict[str, Any]) -> list[dict[str, Any]]:
    """The cohorts behind one estimate, from the published outcome_effects of its facts."""
    frame = con.execute("""
        select
            effects.cohort_id,
            list(distinct effects.study_id order by effects.study_id) as study_ids,
            list(distinct effects.trial_id order by effects.trial_id)
                filter (where effects.trial_id is not null) as trial_ids,
            list(distinct effects.publication_id order by effects.publication_id)
                filter (where effects.publication_id is not null) as publication_ids,
            list(distinct coalesce(effects.arm, '(all)') order by coalesce(effects.arm, '(all)'))
                as arms,
            list(distinct effects.timepoint_text order by effects.timepoint_text)
                filter (where effects.timepoint_text is not null) as timepoints,
            sum(effects.events)::bigint as events,
            sum(effects.participants)::bigint as participants,
            bool_or(effects.is_randomised) as is_randomised,
            list(distinct effects.verification_status order by effects.verification_status)
                as verification,
            list(effects.outcome_fact_id order by effects.outcome_fact_id) as outcome_fact_ids,
            list(distinct effects.source_url order by effects.source_url)
                filter (where effects.source_url is not null) as source_urls,
            min(publications.first_author) as first_author,
            min(coalesce(effects.publication_year, publications.publication_year)) as year
        from marts.outcome_effects effects
        left join marts.dim_publications publications using (publication_id)
        where list_contains(?, effects.outcome_fact_id)
        group by effects.cohort_id
        order by effects.cohort_id""", [row["outcome_fact_ids"]]).fetchdf()
    cohorts = []
    for cohort in frame.to_dict("records"):
        cohort = {k: _plain(v) for k, v in cohort.items()}
        cohort["study"] = study_label(cohort)
        cohorts.append({**{k: v for k, v in row.items() if k != "outcome_fact_ids"},
                        **cohort})
    return cohorts


def study_label(cohort: dict[str, Any]) -> str:
    """"Author year" when a publication names one, else the trial id, else the curator's key."""
    author = (cohort.get("first_author") or "").split(" ")[0]
    if author and cohort.get("year"):
        return f"{author} {cohort['year']}"
    if cohort.get("trial_ids"):
        return cohort["trial_ids"][0]
    return cohort["study_ids"][0] if cohort.get("study_ids") else cohort["cohort_id"]


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _joined(values: Any) -> str:
    return "; ".join(str(v) for v in values or [])


def _csv(header: list[str], rows: list[list[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    return out.getvalue()


def metafor_csv(cohorts: list[dict[str, Any]]) -> str:
    header = ["comparison_id", "study", "cohort_id", "xi", "ni", "definition_id", "window_id",
              "timepoints", "outcome_fact_ids", "study_ids", "trial_ids", "publication_ids"]
    return _csv(header, [[c["comparison_id"], c["study"], c["cohort_id"], c["events"],
                          c["participants"], c["definition_id"], c["window_id"],
                          _joined(c["timepoints"]), _joined(c["outcome_fact_ids"]),
                          _joined(c["study_ids"]), _joined(c["trial_ids"]),
                          _joined(c["publication_ids"])] for c in cohorts])


def revman_csv(cohorts: list[dict[str, Any]]) -> str:
    header = ["Study ID", "Year", "Experimental events", "Experimental total", "Control events",
              "Control total", "Logit proportion", "SE", "Outcome", "Comparison"]
    labels: list[str] = []
    for comparison_id in dict.fromkeys(c["comparison_id"] for c in cohorts):  # in order
        labels += unique_study_ids([c["study"] for c in cohorts
                                    if c["comparison_id"] == comparison_id])
    rows = []
    for label, c in zip(labels, cohorts, strict=True):
        logit, se = logit_and_se(c["events"], c["participants"])
        rows.append([label, c.get("year"), c["events"], c["participants"], None, None,
                     f"{logit:.6f}", f"{se:.6f}",
                     f"{c['outcome']}: {c.get('definition_label') or c['definition_id']}, "
                     f"{c.get('window_label') or c['window_id']}",
                     f"{c.get('therapy_label') or ''} ({c['diabetes_type']}) [{c['comparison_id']}]"])
    return _csv(header, rows)


def unique_study_ids(labels: list[str]) -> list[str]:
    """RevMan's study ids are unique within an analysis: 'Smith 2001a', 'Smith 2001b' when two
    cohorts of one estimate share a label."""
    seen: dict[str, int] = {}
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
    suffix: dict[str, int] = {}
    out = []
    for label in labels:
        if seen[label] == 1:
            out.append(label)
            continue
        suffix[label] = suffix.get(label, 0) + 1
        out.append(f"{label}{chr(ord('a') + suffix[label] - 1)}")
    return out


def logit_and_se(events: int, total: int) -> tuple[float, float]:
    """The logit proportion and its standard error (0.5 added to events and non-events for 0/n
    and n/n, as escalc and the pooling do)."""
    if events in (0, total):
        events, total = events + 0.5, total + 1.0
    return math.log(events / (total - events)), math.sqrt(1 / events + 1 / (total - events))


def full_csv(cohorts: list[dict[str, Any]]) -> str:
    header = [*ROW_COLUMNS, "study", "cohort_id", "events", "participants", "is_randomised",
              "arms", "timepoints", "verification", "outcome_fact_ids", "study_ids", "trial_ids",
              "publication_ids", "source_urls"]
    rows = []
    for c in cohorts:
        rows.append([*(c.get(name) for name in ROW_COLUMNS), c["study"], c["cohort_id"],
                     c["events"], c["participants"], c["is_randomised"], _joined(c["arms"]),
                     _joined(c["timepoints"]), _joined(c["verification"]),
                     _joined(c["outcome_fact_ids"]), _joined(c["study_ids"]),
                     _joined(c["trial_ids"]), _joined(c["publication_ids"]),
                     _joined(c["source_urls"])])
    return _csv(header, rows)


def write_export(export: Export, output: Path | None) -> None:
    if output is None:
        import sys

        sys.stdout.write(export.text)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(export.text, encoding="utf-8")
