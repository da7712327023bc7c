"""The stages of a refresh, as plain functions (the flow in :mod:`flows.refresh` wraps each in a
Prefect task). They carry the per-source failure policy: a critical source's failure stops the
run (nothing is published); any other source's failure is recorded in ``raw.ingest_runs``
(status ``failed``, with the error), its rows of this run are removed, and the run goes on with
its last good data, marked stale."""

from __future__ import annotations

from typing import Any

import duckdb

from flows.closure import resolve
from flows.db import connect, ensure_raw_schema
from flows.errors import BetacellError
from flows.landing import utc_now
from flows.load import record_ledger
from flows.quality import GateResult, raise_for_failures, run_gate
from flows.report import RefreshSummary, SourceReport
from flows.settings import Settings
from flows.sources import catalog
from flows.sources.catalog import Ingested, Loaded, SourceSpec


def is_critical(settings: Settings, source: str) -> bool:
    return source in settings.critical_sources


def note_failure(settings: Settings, summary: RefreshSummary, spec: SourceSpec,
                 error: BaseException) -> None:
    """Record a failed source in the summary; re-raise when the source is critical."""
    if is_critical(settings, spec.name):
        raise error
    summary.sources[spec.name] = SourceReport(
        spec.name, "failed", message=f"{type(error).__name__}: {error}")


def load_sources(con: duckdb.DuckDBPyConnection, settings: Settings,
                 ingested: dict[str, Ingested], summary: RefreshSummary) -> dict[str, list[str]]:
    """Load every source's landed runs; returns this run's run ids per source."""
    ensure_raw_schema(con)
    run_ids: dict[str, list[str]] = {}
    for name, landed in ingested.items():
        spec = next(s for s in catalog.SOURCES if s.name == name)
        try:
            loaded = spec.load(con, landed, settings)
        except Exception as exc:  # noqa: BLE001 - the failure policy decides
            note_failure(settings, summary, spec, exc)
            continue
        run_ids[name] = loaded.run_ids
        summary.sources[name] = _report(landed, loaded)
        summary.warnings += _odd_record_notes(spec, loaded)
    return run_ids


def _odd_record_notes(spec: SourceSpec, loaded: Loaded) -> list[str]:
    """What the summary says about records loaded with something odd about them."""
    notes = []
    if loaded.records_superseded:
        notes.append(f"{spec.label}: {loaded.records_superseded} study version(s) came twice in "
                     "one run with other content; the newest is loaded, the other is recorded "
                     "as superseded in marts.rejected_records")
    if dates := loaded.impossible_dates:
        notes.append(f"{spec.label}: {len(dates)} date(s) name no real day and are NULL "
                     f"(their text is kept): {'; '.join(dates[:5])}"
                     + (f"; and {len(dates) - 5} more" if len(dates) > 5 else ""))
    return notes


def _report(landed: Ingested, loaded: Loaded) -> SourceReport:
    status = "loaded" if loaded.run_ids else "skipped"
    rejected = [d for d in loaded.details if d.get("status") in catalog.REJECTED_SHEET]
    if rejected:  # a rejected outcome sheet: its previous version stays in effect (stale)
        return SourceReport(landed.source, "failed", landed.records_landed,
                            loaded.records_loaded, len(rejected), loaded.run_ids,
                            "; ".join(f"{d['sheet']} rejected: {d['message']}" for d in rejected),
                            details=loaded.details, mode=landed.mode,
                            alert_key="rejected sheet content " + ",".join(sorted(
                                str(d.get("sheet_sha256") or d["message"]) for d in rejected)))
    return SourceReport(landed.source, status, landed.records_landed, loaded.records_loaded,
                        loaded.records_rejected, loaded.run_ids, landed.skipped_reason,
                        loaded.rejects[:5], loaded.details, landed.mode, landed.pages_landed,
                        landed.resumed_from_page, len(loaded.impossible_dates))


def record_failures(con: duckdb.DuckDBPyConnection, summary: RefreshSummary, mode: str) -> None:
    """One ``failed`` ledger row per failed source, so ``status`` and the dashboard show it
    (a source whose load recorded its own failure, e.g. a rejected sheet, has its row)."""
    for report in (r for r in summary.stale_sources if not r.run_ids):
        record_ledger(con, {"run_id": f"failed-{report.source}-{utc_now():%Y%m%dT%H%M%S%fZ}",
                            "source": report.source, "mode": mode, "status": "failed",
                            "records_landed": report.records_landed, "records_loaded": 0,
                            "records_rejected": 0, "message": report.message})


def discard_runs(con: duckdb.DuckDBPyConnection, spec: SourceSpec, run_ids: list[str]) -> None:
    """Remove what a source loaded in this run (its last good data stays)."""
    con.execute("begin transaction")
    try:
        for table in spec.raw_tables:
            con.execute(f"delete from raw.{table} where list_contains(?, run_id)", [run_ids])
        for table in ("rejected_records", "ingest_runs"):
            con.execute(f"delete from raw.{table} where list_contains(?, run_id)", [run_ids])
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def gate_raw(settings: Settings, build, run_ids: dict[str, list[str]],
             summary: RefreshSummary) -> GateResult:
    """Raw gate on this run's loads; a non-critical source failing it is discarded and stale."""
    result = run_gate(settings, build, "raw", run_ids)
    critical = {s for s in result.failed_sources() if is_critical(settings, s)}
    raise_for_failures(result, critical | {None})  # checks without a source count as critical
    failed = result.failed_sources() - critical
    if failed:
        con = connect(build, settings)
        try:
            for name in failed:
                spec = next(s for s in catalog.SOURCES if s.name == name)
                discard_runs(con, spec, run_ids.pop(name, []))
                problems = "; ".join(f"{o.check}: {o.expectation} on {o.column}"
                                     for o in result.critical_failures if o.source == name)
                summary.sources[name] = SourceReport(
                    name, "failed", message=f"raw gate failed ({problems}); this run's "
                    "records were not kept")
        finally:
            con.close()
    return result


def gate_marts(settings: Settings, build) -> GateResult:
    """Mart gate: any critical failure stops the run before publish."""
    result = run_gate(settings, build, "mart")
    raise_for_failures(result)
    return result


def resolve_references(con: duckdb.DuckDBPyConnection, settings: Settings, mode: str,
                       summary: RefreshSummary, run_ids: dict[str, list[str]]) -> None:
    """Referential closure: fetch referenced ids by id, land and load them like any page."""
    from flows.sources import ctgov, ctis
    from flows.sources.catalog import closure_clients

    run_label = f"closure-{utc_now():%Y%m%dT%H%M%SZ}"
    with closure_clients(settings, mode) as clients:
        fetchers: dict[str, Any] = {}
        if "ctgov" in clients:
            fetchers["ctgov"] = lambda nct_id: ctgov.fetch_study(clients["ctgov"], nct_id)
        if "ctis" in clients:
            fetchers["ctis"] = lambda number: ctis.fetch_trial(clients["ctis"], number)
        result = resolve(con, settings, mode, fetchers, run_label)
    summary.fetched_by_id = result.fetched
    summary.unresolved_references = result.unresolved
    for source, runs in result.runs.items():
        spec = next(s for s in catalog.SOURCES if s.name == source)
        landed = Ingested(source, "by_id", runs, records_landed=result.fetched.get(source, 0))
        try:
            loaded = spec.load(con, landed, settings)
        except BetacellError as exc:
            note_failure(settings, summary, spec, exc)
            continue
        run_ids.setdefault(source, []).extend(loaded.run_ids)


def _brings_nothing_new(report: SourceReport) -> bool:
    if report.details:  # outcome sheets: each unchanged, or rejected before and left as it was
        return all(d.get("status") in catalog.UNCHANGED_SHEET for d in report.details)
    return (report.status in {"loaded", "skipped"} and not report.records_loaded
            and not report.records_rejected)


def record_refresh(con: duckdb.DuckDBPyConnection, summary: RefreshSummary) -> None:
    """One raw.refreshes row: "changes since the last run" count from its start."""
    ensure_raw_schema(con)
    con.execute("insert into raw.refreshes values (?, ?, ?)",
                [summary.refresh_id, summary.started_at, summary.source])


def nothing_changed(settings: Settings, summary: RefreshSummary) -> bool:
    """True when this run would build exactly what is published: every source succeeded and
    loaded nothing new, no sheet version was recorded (a sheet rejected before and left as it
    was is no news), no id was fetched by id, and the code and topic that shape the warehouse
    are the ones the published version was built with."""
    from flows.publish import code_fingerprint, published_fingerprint

    if settings.lake_catalog:  # the lake may lag the file (e.g. newly configured): rebuild
        return False
    if not summary.sources or not all(map(_brings_nothing_new, summary.sources.values())):
        return False
    if any(summary.fetched_by_id.values()):
        return False
    published = published_fingerprint(settings)
    return published is not None and published == code_fingerprint(settings)
