"""The Prefect flow ``refresh-warehouse``: a task per stage.

ingest (one task per source) -> load -> referential closure -> raw gate -> dbt build -> mart gate
-> publish. Only this process writes, and it writes a build copy; the published files are
replaced at the very end, after everything passed. A critical failure anywhere leaves the
published warehouse untouched; a non-critical source that fails keeps its last good data,
marked stale (see :mod:`flows.stages`).
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows import digest, lake, progress, quarantine, report, state
from flows.db import connect
from flows.errors import DiskFull, SourceError, is_disk_full
from flows.preflight import check_configuration
from flows.publish import (
    prepare_build_database,
    publish,
    published_version,
    remove_build_copy,
)
from flows.redaction import install_log_redaction, mask_exception, masking_secrets
from flows.runlock import refresh_lock
from flows.settings import Settings, get_settings
from flows.sources import catalog
from flows.sources.catalog import Ingested, IngestRequest
from flows.stages import (
    gate_raw,
    load_sources,
    note_failure,
    nothing_changed,
    record_failures,
    record_refresh,
    resolve_references,
)
from flows.transform import run_dbt

install_log_redaction()  # Prefect's handlers exist now: no log line carries a secret


def _transient_only(task, task_run, state) -> bool:
    """Retry network tasks only for failures that may pass (timeouts, 429, 5xx)."""
    try:
        state.result()
    except SourceError as exc:
        return exc.transient
    except Exception:  # noqa: BLE001
        return False
    return False


@task(cache_policy=NO_CACHE, retry_condition_fn=_transient_only, timeout_seconds=6 * 3600)
@masking_secrets
def ingest(name: str, request: IngestRequest) -> Ingested:
    spec = next(s for s in catalog.SOURCES if s.name == name)
    landed = spec.ingest(request)
    get_run_logger().info("%s: %s", name, landed.skipped_reason
                          or f"landed {landed.records_landed} records")
    return landed


@task(name="load-raw", cache_policy=NO_CACHE)
@masking_secrets
def load(settings: Settings, build: Path, ingested: dict[str, Ingested], mode: str,
         summary: report.RefreshSummary) -> dict[str, list[str]]:
    con = connect(build, settings)
    try:
        record_refresh(con, summary)
        digest.snapshot_previous_version(con)  # before dbt replaces the published marts
        run_ids = load_sources(con, settings, ingested, summary)
        resolve_references(con, settings, mode, summary, run_ids)
        return run_ids
    finally:
        con.close()


@task(name="raw-gate", cache_policy=NO_CACHE)
@masking_secrets
def raw_gate(settings: Settings, build: Path, run_ids: dict[str, list[str]],
             summary: report.RefreshSummary) -> dict[str, Any]:
    result = gate_raw(settings, build, run_ids, summary)
    con = connect(build, settings)
    try:  # before dbt, so marts.source_status shows the stale sources of this run
        record_failures(con, summary, summary.source)
    finally:
        con.close()
    return _gate_report("raw", result)


@task(name="dbt-build", cache_policy=NO_CACHE)
@masking_secrets
def dbt_build(settings: Settings, build: Path) -> dict[str, int]:
    progress.reporter().start("dbt build")
    result = run_dbt(settings, ["build"], build)
    progress.reporter().finish("dbt build")
    return result.status_counts


@task(name="mart-gate", cache_policy=NO_CACHE)
@masking_secrets
def mart_gate(settings: Settings, build: Path, summary: report.RefreshSummary) -> dict[str, Any]:
    return _gate_report("mart", quarantine.gate_marts_with_quarantine(settings, build, summary))


@task(name="publish", cache_policy=NO_CACHE)
@masking_secrets
def publish_build(settings: Settings, build: Path, summary: report.RefreshSummary) -> None:
    published = publish(settings, build)
    summary.warehouse, summary.published_bytes = str(published.warehouse), published.bytes
    summary.published_version = published.version
    published.warnings += digest.publish_digest(settings, published.version)
    for warning in published.warnings:
        get_run_logger().warning(warning)
        summary.warnings.append(warning)


@task(name="lake-publish", cache_policy=NO_CACHE)
@masking_secrets
def lake_publish(settings: Settings) -> dict[str, Any]:
    """After the single-file publish: the published warehouse -> one DuckLake snapshot."""
    from prefect.runtime import flow_run

    result = lake.publish_run(settings, str(flow_run.get_id() or "manual"), flow_run.get_name())
    get_run_logger().info("lake: snapshot %s, %s tables (attempt %s)", result.snapshot_id,
                          len(result.tables), result.attempts)
    return result.as_dict()


def _gate_report(gate: str, result) -> dict[str, Any]:
    for warning in result.warnings:
        get_run_logger().warning("%s gate warning: %s", gate, warning)
    return result.as_dict()


def alert_on_failure(flow, flow_run, flow_state) -> None:
    """Flow failure hook: the alert webhook, then data/quality/last_failure.json."""
    settings = get_settings()
    message = f"Betacell refresh {flow_run.name} failed: {flow_state.message}"
    try:
        flow_state.result()
    except Exception as exc:  # noqa: BLE001 - the failure being reported
        message = f"Betacell refresh {flow_run.name} failed: {mask_exception(exc)}"
    for problem in report.alert_failure(settings, flow_run.name, message):
        get_run_logger().error(problem)


@flow(name="refresh-warehouse", log_prints=True, on_failure=[alert_on_failure])
def refresh_warehouse(source: str = "snapshot", since: date | None = None, full: bool = False,
                      stages: list[str] | None = None) -> dict[str, Any]:
    """Ingest -> load -> raw gate -> dbt build -> mart gate -> publish.

    ``stages`` limits what is ingested (registries, publications, outcomes); the build, the gates
    and the publish always run. Nothing is published unless every critical step passed.
    """
    try:
        return _refresh(source, since, full, stages)
    except BaseException as exc:  # its secrets masked before Prefect records or logs it
        mask_exception(exc)
        raise


def _refresh(source: str, since: date | None, full: bool,
             stages: list[str] | None) -> dict[str, Any]:
    settings = get_settings()
    topic = check_configuration(settings, source)
    if settings.lake_catalog:
        lake.check(settings)
    summary = report.RefreshSummary(source=source, refresh_id=_refresh_id())
    with refresh_lock(settings) as stopped:
        for orphan in stopped:
            get_run_logger().warning("stopped %s, left running by a killed refresh", orphan)
        try:
            _ingest_to_publish(settings, source, since, full, stages, topic, summary)
        except Exception as exc:
            if is_disk_full(exc):
                raise _disk_full(settings) from exc
            raise
    try:  # the new version is live: nothing below may turn the run into a failure
        _finish(settings, summary)
    except Exception as exc:  # noqa: BLE001
        warning = (f"published version {summary.published_version}, but the run summary could "
                   f"not be completed: {type(exc).__name__}: {exc}")
        get_run_logger().error(warning)
        summary.warnings.append(warning)
    return summary.as_dict()


def _ingest_to_publish(settings: Settings, source: str, since: date | None, full: bool,
                       stages: list[str] | None, topic: Any,
                       summary: report.RefreshSummary) -> None:
    request = IngestRequest(settings, source, since, full,
                            state.read_previous_state(settings), topic)
    ingested: dict[str, Ingested] = {}
    for spec in catalog.plan(source, stages):
        delays = settings.source_retry_delays_seconds
        outcome = ingest.with_options(
            name=f"ingest-{spec.name}", retries=len(delays), retry_delay_seconds=delays or 0,
        )(spec.name, request, return_state=True)
        if outcome.is_failed():
            note_failure(settings, summary, spec, outcome.result(raise_on_failure=False))
            continue
        ingested[spec.name] = outcome.result()
        for warning in ingested[spec.name].warnings:
            get_run_logger().warning(warning)
            summary.warnings.append(warning)
    build = prepare_build_database(settings)
    run_ids = load(settings, build, ingested, source, summary)
    if not full and nothing_changed(settings, summary):
        summary.nothing_changed = True
        summary.skipped_reason = (
            f"nothing changed since the published version "
            f"{published_version(settings) or '(unversioned)'}: no new record, sheet or id, and "
            "the same code and topic; nothing rebuilt or republished")
        remove_build_copy(settings)
        get_run_logger().info(summary.skipped_reason)
        return
    summary.gates["raw"] = raw_gate(settings, build, run_ids, summary)
    summary.dbt_status_counts = dbt_build(settings, build)
    summary.gates["mart"] = mart_gate(settings, build, summary)
    publish_build(settings, build, summary)
    if settings.lake_catalog:  # after the single file is published; one lake snapshot
        lake_publish(settings)


def _refresh_id() -> str:
    from prefect.runtime import flow_run

    return str(flow_run.get_name() or flow_run.get_id() or f"{report.utc_now():%Y%m%dT%H%M%S%fZ}")


def _disk_full(settings: Settings) -> DiskFull:
    """One paragraph; the build copy (what filled the disk last) is removed."""
    freed = remove_build_copy(settings)
    try:
        free = shutil.disk_usage(settings.data_path).free
    except OSError:
        free = 0
    return DiskFull(
        f"The disk holding {settings.data_path} is full, so this refresh stopped and nothing was "
        f"published: the last good warehouse stays live. The build copy was removed "
        f"({freed / 1e6:,.1f} MB freed; {free / 1e6:,.0f} MB free now). Free some space on that "
        f"disk and run again (keep {settings.raw_dir}: it records what was loaded).")


def _finish(settings: Settings, summary: report.RefreshSummary) -> None:
    if ctgov := summary.sources.get("ctgov"):
        summary.mode, summary.run_id = ctgov.mode, (ctgov.run_ids or [None])[0]
        if not summary.nothing_changed:
            summary.skipped_reason = ctgov.message if ctgov.status == "skipped" else None
        summary.pages_landed, summary.resumed_from_page = (ctgov.pages_landed,
                                                           ctgov.resumed_from_page)
        summary.records_landed = ctgov.records_landed
        summary.records_loaded, summary.records_rejected = (ctgov.records_loaded,
                                                            ctgov.records_rejected)
        summary.impossible_dates = ctgov.impossible_dates
    if sheets := summary.sources.get("outcomes"):
        summary.outcome_sheets = sheets.details
    summary.publications_loaded = {name: summary.sources[name].records_loaded
                                   for name in ("pubmed", "europepmc") if name in summary.sources}
    summary.table_counts = state.published_table_counts(settings)
    summary.changes = {} if summary.nothing_changed else state.published_changes(settings)
    create_markdown_artifact(key="refresh-warehouse-summary",
                             markdown=report.summary_markdown(summary),
                             description="What the last refresh built")
    if alert := report.stale_sources_alert(summary):
        get_run_logger().warning(alert)
        if problem := report.post_alert_at_most_daily(settings, alert,
                                                      report.stale_alert_key(summary)):
            get_run_logger().error(problem)
    if problem := report.settle_failure_record(settings):
        get_run_logger().warning(problem)
