"""One odd record never stops the refresh: the mart gate with quarantine.

Records whose own numbers are impossible are quarantined where their rows are made (dbt model
``int_quarantined_records``): their results-derived rows stay out of the marts and the rest
publishes. The mart gate stays the last line of defence. When it fails, each failing row is
traced to the source records behind it (``TRACES``: the rows that break the check, through the
fact ids a pooled row lists, to the registry record or the sheet study). If the failures come
from at most ``BETACELL_MAX_QUARANTINE`` records and at most ``BETACELL_MAX_QUARANTINE_SHARE`` of
the trials, those records are quarantined (``raw.quarantine_requests``, for the version of the
record that failed), the models downstream of the quarantine are rebuilt without them, and the
gate runs again; the run then publishes with a warning that names them. A failure that cannot be
traced to a record, or more records than the limits allow (also counting the records quarantined
by their own numbers), is systemic: nothing is published, as before, and the error says why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from flows.db import connect
from flows.errors import GateFailed
from flows.landing import utc_now
from flows.quality import GateResult, raise_for_failures, run_gate
from flows.report import RefreshSummary, post_alert
from flows.settings import Settings

REBUILD_SELECTION = "stg_pipeline__quarantine_requests+"

# A fact row -> the record it was made from (ctgov record, or the study of an outcome sheet).
_RECORD = """case {t}.source when 'registry_results' then 'ctgov' else 'outcome_sheet' end as source,
             case {t}.source when 'registry_results' then {t}.trial_id else {t}.study_id end as record_id"""
_OUTCOME_ROW_BROKEN = "(o.value < 0 or o.value > 1 or o.n_events > o.n_analyzed or o.n_events < 0)"
_HARM_ROW_BROKEN = """(a.affected_low < 0 or a.affected_low > a.affected_high
                       or a.affected_high > a.at_risk_count or a.affected_count > a.at_risk_count
                       or a.events_count < a.affected_low)"""


def _through_facts(pooled: str, facts: str, ids: str, key: str, broken_row: str,
                   alias: str) -> str:
    """Failing pooled rows -> the facts they list: the facts that break a row-level invariant
    themselves, else (a pooled row without such a fact) all of its facts."""
    fact_id = ids.removesuffix("s")
    return f"""
        with bad as (
            select {key} as row_id, unnest({ids}) as fact_id from {pooled}
        ),
        behind as (
            select bad.row_id, {alias}.*, coalesce({broken_row}, false) as is_broken
            from bad join {facts} {alias} on {alias}.{fact_id} = bad.fact_id
        ),
        culprits as (
            select * from behind
            where is_broken or not exists (
                select 1 from behind b2 where b2.row_id = behind.row_id and b2.is_broken)
        )
        select {_RECORD.format(t='culprits')},
               'row ' || culprits.row_id || ': ' || culprits.{fact_id} as offending
        from culprits"""


TRACES: dict[str, str] = {
    "mart_outcome_proportions": f"""
        select {_RECORD.format(t='o')},
               o.outcome_fact_id || ' value=' || coalesce(o.value::varchar, 'null') || ', n_events='
               || coalesce(o.n_events::varchar, 'null') || ', n_analyzed='
               || coalesce(o.n_analyzed::varchar, 'null') as offending
        from marts.fct_outcomes o
        where o.measure = 'proportion' and {_OUTCOME_ROW_BROKEN}""",
    "mart_adverse_event_counts": f"""
        select {_RECORD.format(t='a')},
               a.adverse_event_fact_id || ' affected=' || coalesce(a.affected_low::varchar, 'null')
               || '..' || coalesce(a.affected_high::varchar, 'null') || ', at risk='
               || coalesce(a.at_risk_count::varchar, 'null') || ', events='
               || coalesce(a.events_count::varchar, 'null') as offending
        from marts.fct_adverse_events a
        where {_HARM_ROW_BROKEN}
        union all
        select 'ctgov', t.trial_id,
               t.adverse_event_term_id || ' affected=' || coalesce(t.affected_count::varchar, 'null')
               || ', at risk=' || coalesce(t.at_risk_count::varchar, 'null') || ', events='
               || coalesce(t.events_count::varchar, 'null')
        from marts.fct_adverse_event_terms t
        where t.affected_count < 0 or t.affected_count > t.at_risk_count
           or t.events_count < t.affected_count""",
    "mart_pooled_estimates": _through_facts(
        """(select * from marts.therapy_outcome_comparison where estimate is not null and (
               ci_high < estimate or estimate < ci_low or pi_high < estimate
               or estimate < pi_low or n_participants < n_events or k_cohorts < 1))""",
        "marts.fct_outcomes", "outcome_fact_ids", "comparison_id", _OUTCOME_ROW_BROKEN, "o"),
    "mart_proportion_estimates": _through_facts(
        """(select * from marts.therapy_outcome_comparison where estimate is not null and (
               estimate < 0 or estimate > 1 or ci_low < 0 or ci_low > 1
               or ci_high < 0 or ci_high > 1))""",
        "marts.fct_outcomes", "outcome_fact_ids", "comparison_id", _OUTCOME_ROW_BROKEN, "o")
    + " union all " + _through_facts(
        """(select * from marts.safety_signals where proportion is not null and (
               proportion < 0 or proportion > 1 or ci_low < 0 or ci_low > 1
               or ci_high < 0 or ci_high > 1))""",
        "marts.fct_adverse_events", "adverse_event_fact_ids",
        "concat_ws(':', therapy_class, diabetes_type, harm_category)", _HARM_ROW_BROKEN, "a"),
    "mart_safety_counts": _through_facts(
        """(select * from marts.safety_signals where participants_at_risk is not null
               and (participants_affected_high > participants_at_risk
                    or participants_affected_low > participants_affected_high))""",
        "marts.fct_adverse_events", "adverse_event_fact_ids",
        "concat_ws(':', therapy_class, diabetes_type, harm_category)", _HARM_ROW_BROKEN, "a"),
}


@dataclass(frozen=True)
class Quarantined:
    source: str
    record_id: str
    check_name: str
    offending_values: str | None
    detected_by: str
    first_seen_at: Any = None

    def describe(self) -> str:
        return (f"{self.record_id} ({self.source}): {self.check_name}"
                + (f" [{self.offending_values[:200]}]" if self.offending_values else ""))


def gate_marts_with_quarantine(settings: Settings, build: Path,
                               summary: RefreshSummary) -> GateResult:
    """The mart gate: pass, or quarantine the few records behind its failures and pass, or raise
    :class:`GateFailed` (nothing is published). Records quarantined are put in the summary and
    announced through the alert webhook."""
    from flows.transform import run_dbt

    result = run_gate(settings, build, "mart")
    if result.critical_failures:
        traced = trace_failures(build, result)
        check_limits(settings, build, {*records(quarantined_in(build)), *traced})
        request_quarantine(settings, build, traced, summary.refresh_id)
        run_dbt(settings, ["build", "--select", REBUILD_SELECTION], build)
        result = run_gate(settings, build, "mart")
        raise_for_failures(result)
    quarantined = quarantined_in(build)
    check_limits(settings, build, set(records(quarantined)))
    if quarantined:
        announce(settings, summary, quarantined)
    return result


def records(quarantined: list[Quarantined]) -> list[tuple[str, str]]:
    return [(q.source, q.record_id) for q in quarantined]


def trace_failures(build: Path, result: GateResult) -> dict[tuple[str, str], list[str]]:
    """Every critical failure -> the records behind its failing rows (record -> what failed).
    A failure of a check that cannot be traced, or whose failing rows lead to no record, is
    systemic: :class:`GateFailed`."""
    traced: dict[tuple[str, str], list[str]] = {}
    con = duckdb.connect(str(build), read_only=True)
    try:
        for check in sorted({o.check for o in result.critical_failures}):
            rows = con.execute(TRACES[check]).fetchall() if check in TRACES else []
            if not rows:
                raise GateFailed(
                    _systemic(result, f"the failures of check {check} cannot be traced to "
                                      "source records"))
            for source, record_id, offending in rows:
                if record_id is None:
                    raise GateFailed(_systemic(
                        result, f"a failing row of check {check} has no source record"))
                traced.setdefault((source, record_id), []).append(f"{check}: {offending}")
    finally:
        con.close()
    return traced


def check_limits(settings: Settings, build: Path, found: set[tuple[str, str]]) -> None:
    """More records than BETACELL_MAX_QUARANTINE, or than the share of the trials, is not one
    odd record: :class:`GateFailed`, naming them."""
    trials = _trial_count(build)
    share_limit = math.floor(settings.max_quarantine_share * trials + 1e-9)
    if len(found) <= min(settings.max_quarantine, share_limit):
        return
    listed = ", ".join(sorted(f"{record_id} ({source})" for source, record_id in found)[:25])
    raise GateFailed(
        f"{len(found)} records would have to be quarantined, more than the "
        f"{min(settings.max_quarantine, share_limit)} allowed (BETACELL_MAX_QUARANTINE="
        f"{settings.max_quarantine} records and at most {settings.max_quarantine_share:.0%} of "
        f"the {trials} trials): that is systemic - a changed source format or a defect - not an "
        f"odd record, so nothing was published and the previous warehouse stays in place. "
        f"Records: {listed}. See marts.quarantined_records in the build copy "
        f"({build}) for the checks they failed.")


def request_quarantine(settings: Settings, build: Path,
                       traced: dict[tuple[str, str], list[str]], refresh_id: str) -> None:
    """Record the traced records in raw.quarantine_requests, for their current version."""
    con = connect(build, settings)
    try:
        now = utc_now()
        for (source, record_id), problems in sorted(traced.items()):
            for check_name in sorted({p.split(":", 1)[0] for p in problems}):
                details = "; ".join(p.split(": ", 1)[-1] for p in problems
                                    if p.startswith(check_name + ":"))
                con.execute(
                    "insert into raw.quarantine_requests values (?, ?, ?, ?, ?, ?, ?)",
                    [source, record_id, _record_version(con, source, record_id), check_name,
                     details[:1000], refresh_id or "manual", now])
    finally:
        con.close()


def quarantined_in(build: Path) -> list[Quarantined]:
    """The records marts.quarantined_records lists (empty if the mart does not exist)."""
    con = duckdb.connect(str(build), read_only=True)
    try:
        exists = con.execute("select count(*) from information_schema.tables where "
                             "table_schema = 'marts' and table_name = 'quarantined_records'"
                             ).fetchone()[0]
        if not exists:
            return []
        rows = con.execute(
            "select source, record_id, check_name, offending_values, detected_by, first_seen_at "
            "from marts.quarantined_records order by record_id, check_name").fetchall()
    finally:
        con.close()
    return [Quarantined(*row) for row in rows]


def announce(settings: Settings, summary: RefreshSummary,
             quarantined: list[Quarantined]) -> None:
    """Say so loudly: the run summary (warnings and its own list) and the alert webhook."""
    summary.quarantined = [{"source": q.source, "record_id": q.record_id,
                            "check_name": q.check_name, "offending_values": q.offending_values,
                            "detected_by": q.detected_by,
                            "first_seen_at": str(q.first_seen_at)} for q in quarantined]
    ids = sorted({q.record_id for q in quarantined})
    message = (f"Betacell refresh {summary.refresh_id}: {len(ids)} record(s) quarantined - their "
               f"results rows are kept out of the marts, the rest publishes: "
               + "; ".join(q.describe() for q in quarantined[:10])
               + ". See marts.quarantined_records.")
    summary.warnings.append(message)
    if problem := post_alert(settings, message):
        summary.warnings.append(problem)


def _record_version(con: duckdb.DuckDBPyConnection, source: str, record_id: str) -> str | None:
    if source == "ctgov":
        row = con.execute("select payload_md5 from staging.base_ctgov__latest_studies "
                          "where nct_id = ?", [record_id]).fetchone()
    else:
        row = con.execute("select max(sheet_sha256) from staging.stg_outcomes__published_outcomes "
                          "where study_id = ?", [record_id]).fetchone()
    return row[0] if row else None


def _trial_count(build: Path) -> int:
    con = duckdb.connect(str(build), read_only=True)
    try:
        return int(con.execute("select count(*) from marts.dim_trials").fetchone()[0])
    finally:
        con.close()


def _systemic(result: GateResult, why: str) -> str:
    failures = "; ".join(f"check {o.check}: {o.expectation} on {o.column} failed for "
                         f"{o.unexpected_count} row(s), e.g. {o.sample}"
                         for o in result.critical_failures[:6])
    return (f"mart gate failed (stage: validate-mart) and {why}: that is systemic, so nothing "
            f"was published and the previous warehouse stays in place. {failures}"
            + (f". Data Docs: {result.data_docs}" if result.data_docs else ""))
