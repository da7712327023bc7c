"""The Prefect flow ``refresh-warehouse``, a list of task calls: extract (a task per source) ->
load raw -> referential closure -> raw gate -> dbt build -> mart gate -> publish (-> lake).

Only this process writes, and it writes a build copy; the published files are replaced at the
very end, after everything passed. A critical failure anywhere leaves the published warehouse
untouched; a non-critical source that fails keeps its last good data, marked stale."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from flows import closure, digest, lake, publish, quarantine, raw_loader, report, sources, transform
from flows import stages as stage
from flows import state as published_state
from flows.db import connect
from flows.preflight import check_configuration
from flows.redaction import install_log_redaction, masking_secrets
from flows.runlock import refresh_lock
from flows.settings import Settings, get_settings
from flows.sources.base import ExtractRequest, Resource, SourceRun, SourceState

install_log_redaction()  # Prefect's handlers exist now: no log line carries a secret


@task(cache_policy=NO_CACHE, retry_condition_fn=stage.transient_only, timeout_seconds=6 * 3600)
@masking_secrets
def extract(resource: Resource, request: ExtractRequest) -> SourceRun:
    return resource.extract(request)


@task(name="load-raw", cache_policy=NO_CACHE)
@masking_secrets
def load_raw(settings: Settings, build: Path, landed: list[tuple[Resource, SourceRun]],
             summary: report.RefreshSummary) -> dict[str, list[str]]:
    con = connect(build, settings)
    try:
        stage.record_refresh(con, summary)
        digest.snapshot_previous_version(con)  # before dbt replaces the published marts
        for resource, run in landed:
            try:
                raw_loader.load(con, settings, resource, run)
            except Exception as exc:  # noqa: BLE001 - the failure policy decides
                stage.note_failure(settings, summary, resource.name, exc)
                continue
            report.add_source(summary, resource, run)
        return {name: list(run.run_ids) for name, run in summary.sources.items() if run.run_ids}
    finally:
        con.close()


@task(name="referential-closure", cache_policy=NO_CACHE)
@masking_secrets
def close_references(settings: Settings, build: Path, mode: str, summary: report.RefreshSummary,
                     run_ids: dict[str, list[str]]) -> None:
    closure.close_references(settings, build, mode, summary, run_ids)


@task(name="raw-gate", cache_policy=NO_CACHE)
@masking_secrets
def raw_gate(settings: Settings, build: Path, run_ids: dict[str, list[str]],
             summary: report.RefreshSummary) -> dict[str, Any]:
    return report.gate_report("raw", stage.gate_raw(settings, build, run_ids, summary))


@task(name="dbt-build", cache_policy=NO_CACHE)
@masking_secrets
def dbt_build(settings: Settings, build: Path) -> dict[str, int]:
    return transform.build(settings, build).status_counts


@task(name="mart-gate", cache_policy=NO_CACHE)
@masking_secrets
def mart_gate(settings: Settings, build: Path, summary: report.RefreshSummary) -> dict[str, Any]:
    return report.gate_report("mart", quarantine.gate_marts_with_quarantine(settings, build, summary))


@task(name="publish", cache_policy=NO_CACHE)
@masking_secrets
def publish_build(settings: Settings, build: Path, summary: report.RefreshSummary) -> None:
    published = publish.publish(settings, build)
    report.note_published(summary, published, digest.publish_digest(settings, published.version))


@task(name="lake-publish", cache_policy=NO_CACHE)
@masking_secrets
def lake_publish(settings: Settings) -> dict[str, Any]:
    """After the single-file publish: the published warehouse -> one DuckLake snapshot."""
    result = lake.publish_run(settings, str(flow_run.get_id() or "manual"), flow_run.get_name())
    get_run_logger().info("lake: snapshot %s, %s tables (attempt %s)", result.snapshot_id,
                          len(result.tables), result.attempts)
    return result.as_dict()


@flow(name="refresh-warehouse", log_prints=True, on_failure=[report.alert_on_failure])
def refresh_warehouse(source: str = "snapshot", since: date | None = None, full: bool = False,
                      stages: list[str] | None = None) -> dict[str, Any]:
    """``stages`` limits what is extracted (registries, publications, outcomes); the build, the
    gates and the publish always run. Nothing is published unless every critical step passed.
    """
    return _refresh(source, since, full, stages)


@masking_secrets  # an exception's secrets are masked before Prefect records or logs it
def _refresh(mode: str, since: date | None, full: bool,
             stages: list[str] | None) -> dict[str, Any]:
    settings = get_settings()
    topic = check_configuration(settings, mode)
    if settings.lake_catalog:
        lake.check(settings)
    summary = report.RefreshSummary(source=mode, refresh_id=report.refresh_id())
    with refresh_lock(settings) as stopped, publish.stopping_on_full_disk(settings):
        report.note_orphans(stopped)
        states = published_state.read_source_states(settings)
        landed = [(resource, run) for resource in sources.plan(mode, stages) if (run := _extract(
            settings, resource, summary, ExtractRequest(
                settings, mode, since, full, states.get(resource.name, SourceState()), topic)))]
        build = publish.prepare_build_database(settings)
        run_ids = load_raw(settings, build, landed, summary)
        close_references(settings, build, mode, summary, run_ids)
        if not full and stage.nothing_changed(settings, summary):
            stage.skip_unchanged(settings, summary)
        else:
            summary.gates["raw"] = raw_gate(settings, build, run_ids, summary)
            summary.dbt_status_counts = dbt_build(settings, build)
            summary.gates["mart"] = mart_gate(settings, build, summary)
            publish_build(settings, build, summary)
            if settings.lake_catalog:  # after the single file is published; one lake snapshot
                lake_publish(settings)
    report.finish(settings, summary)
    return summary.as_dict()


def _extract(settings: Settings, resource: Resource, summary: report.RefreshSummary,
             request: ExtractRequest) -> SourceRun | None:
    """One source's extract task (retried on transient failures); None when it failed."""
    delays = settings.source_retry_delays_seconds
    outcome = extract.with_options(name=f"ingest-{resource.name}", retries=len(delays),
                                   retry_delay_seconds=delays or 0,
                                   )(resource, request, return_state=True)
    if outcome.is_failed():
        stage.note_failure(settings, summary, resource.name,
                           outcome.result(raise_on_failure=False))
        return None
    return report.note_landed(summary, outcome.result())
