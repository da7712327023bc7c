"""The per-source failure policy and the decisions between stages, as plain functions (the flow
in :mod:`flows.refresh` wraps each stage in a Prefect task). A critical source's failure stops
the run (nothing is published); any other source's failure is recorded in ``raw.ingest_runs``
(status ``failed``, with the error), its rows of this run are removed, and the run goes on with
its last good data, marked stale. Nothing here knows a source by name."""

from __future__ import annotations

from pathlib import Path

import duckdb

from flows.db import connect, ensure_raw_schema
from flows.errors import SourceError
from flows.landing import utc_now
from flows.publish import (
    code_fingerprint,
    published_fingerprint,
    published_version,
    remove_build_copy,
)
from flows.quality import GateResult, raise_for_failures, run_gate
from flows.raw_loader import record_ledger
from flows.report import RefreshSummary, logger
from flows.settings import Settings
from flows.sources.base import UNCHANGED_SHEET, SourceRun


def transient_only(task, task_run, state) -> bool:
    """Retry an extract only for failures that may pass (timeouts, 429, 5xx)."""
    try:
        state.result()
    except SourceError as exc:
        return exc.transient
    except Exception:  # noqa: BLE001
        return False
    return False


def is_critical(settings: Settings, source: str) -> bool:
    return source in settings.critical_sources


def note_failure(settings: Settings, summary: RefreshSummary, source: str,
                 error: BaseException) -> None:
    """Record a failed source in the summary; re-raise when the source is critical."""
    if is_critical(settings, source):
        raise error
    summary.sources[source] = SourceRun(source, "", status="failed",
                                        message=f"{type(error).__name__}: {error}")


def record_refresh(con: duckdb.DuckDBPyConnection, summary: RefreshSummary) -> None:
    """One raw.refreshes row: "changes since the last run" count from its start."""
    ensure_raw_schema(con)
    con.execute("insert into raw.refreshes values (?, ?, ?)",
                [summary.refresh_id, summary.started_at, summary.source])


def record_failures(con: duckdb.DuckDBPyConnection, summary: RefreshSummary, mode: str) -> None:
    """One ``failed`` ledger row per failed source, so ``status`` and the dashboard show it
    (a source whose load recorded its own failure, e.g. a rejected sheet, has its row)."""
    for report in (r for r in summary.stale_sources if not r.run_ids):
        record_ledger(con, {"run_id": f"failed-{report.source}-{utc_now():%Y%m%dT%H%M%S%fZ}",
                            "source": report.source, "mode": mode, "status": "failed",
                            "records_landed": report.records_landed, "records_loaded": 0,
                            "records_rejected": 0, "message": report.message})


def discard_runs(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> None:
    """Remove what a source loaded in this run from every raw table (its last good data stay)."""
    tables = [name for (name,) in con.execute(
        "select table_name from information_schema.columns where table_schema = 'raw' "
        "and column_name = 'run_id' order by table_name").fetchall()]
    con.execute("begin transaction")
    try:
        for table in tables:
            con.execute(f"delete from raw.{table} where list_contains(?, run_id)", [run_ids])
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def gate_raw(settings: Settings, build: Path, run_ids: dict[str, list[str]],
             summary: RefreshSummary) -> GateResult:
    """Raw gate on this run's loads; a non-critical source failing it is discarded and stale.
    Then a ledger row per failed source, before dbt, so ``marts.source_status`` shows it."""
    result = run_gate(settings, build, "raw", run_ids)
    critical = {s for s in result.failed_sources() if is_critical(settings, s)}
    raise_for_failures(result, critical | {None})  # checks without a source count as critical
    con = connect(build, settings)
    try:
        for name in result.failed_sources() - critical:
            discard_runs(con, run_ids.pop(name, []))
            problems = "; ".join(f"{o.check}: {o.expectation} on {o.column}"
                                 for o in result.critical_failures if o.source == name)
            summary.sources[name] = SourceRun(
                name, "", status="failed", message=f"raw gate failed ({problems}); this "
                "run's records were not kept")
        record_failures(con, summary, summary.source)
    finally:
        con.close()
    return result


def gate_marts(settings: Settings, build: Path) -> GateResult:
    """Mart gate: any critical failure stops the run before publish."""
    result = run_gate(settings, build, "mart")
    raise_for_failures(result)
    return result


def brings_nothing_new(run: SourceRun) -> bool:
    if run.details:  # outcome sheets: each unchanged, or rejected before and left as it was
        return all(d.get("status") in UNCHANGED_SHEET for d in run.details)
    return (run.status in {"loaded", "skipped"} and not run.records_loaded
            and not run.records_rejected)


def nothing_new_loaded(summary: RefreshSummary) -> bool:
    """Every source succeeded and loaded nothing new (no record, sheet version or reject)."""
    return bool(summary.sources) and all(map(brings_nothing_new, summary.sources.values()))


def nothing_changed(settings: Settings, summary: RefreshSummary) -> bool:
    """True when this run would build exactly what is published: every source succeeded and
    loaded nothing new, no sheet version was recorded (a sheet rejected before and left as it
    was is no news), no id was fetched by id or newly answered "not found" (recorded, so the
    negative cache holds: at most one such rebuild per id and wait), and the code and topic that shape the warehouse
    are the ones the published version was built with."""
    if settings.lake_catalog:  # the lake may lag the file (e.g. newly configured): rebuild
        return False
    if (not nothing_new_loaded(summary) or any(summary.fetched_by_id.values())
            or summary.not_found_by_id):
        return False
    published = published_fingerprint(settings)
    return published is not None and published == code_fingerprint(settings)


def skip_unchanged(settings: Settings, summary: RefreshSummary) -> None:
    """Nothing rebuilt or republished: the build copy goes, the summary says why."""
    summary.nothing_changed = True
    summary.skipped_reason = (
        f"nothing changed since the published version "
        f"{published_version(settings) or '(unversioned)'}: no new record, sheet or id, and "
        "the same code and topic; nothing rebuilt or republished")
    remove_build_copy(settings)
    logger().info(summary.skipped_reason)
