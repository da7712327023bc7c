"""Prefect flows. The parent ``refresh-warehouse`` runs: ingest -> load raw -> dbt build -> publish.

Only this process writes, and it writes the build copy; the published file is replaced at the
very end, after everything passed. A failure anywhere leaves the published warehouse untouched.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

import httpx
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows import progress
from flows.db import connect, ensure_raw_schema
from flows.errors import SourceError
from flows.ingest import IngestOutcome, PreviousState, ingest_ctgov
from flows.landing import utc_now
from flows.load import LoadResult, load_ctgov_run, record_ledger
from flows.outcomes import SheetRejected, load_outcome_sheet
from flows.publications import (
    PublicationIngest,
    ingest_europepmc,
    ingest_pubmed,
    load_europepmc_run,
    load_pubmed_run,
)
from flows.publish import PublishResult, prepare_build_database, publish, refresh_lock
from flows.quality import run_gate
from flows.registries import RegistryIngest, ingest_ctis, ingest_ictrp, load_registry_run
from flows.settings import Settings, get_settings
from flows.sources.topic import load_topic
from flows.transform import DbtResult, run_dbt


@dataclass
class RefreshSummary:
    source: str
    mode: str = ""
    run_id: str | None = None
    skipped_reason: str | None = None
    pages_landed: int = 0
    records_landed: int = 0
    records_loaded: int = 0
    records_rejected: int = 0
    resumed_from_page: int | None = None
    publications_loaded: dict[str, int] = field(default_factory=dict)
    outcome_sheets: list[dict[str, Any]] = field(default_factory=list)
    dbt_status_counts: dict[str, int] = field(default_factory=dict)
    table_counts: dict[str, int] = field(default_factory=dict)
    warehouse: str = ""
    published_bytes: int = 0
    gates: dict[str, Any] = field(default_factory=dict)
    changes: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@task(name="read-previous-state", cache_policy=NO_CACHE)
def read_previous_state(settings: Settings) -> PreviousState:
    """Watermark and source data timestamp from the published warehouse (read-only)."""
    if not settings.warehouse_path.exists():
        return PreviousState()
    con = connect(settings.warehouse_path, settings, read_only=True)
    try:
        tables = {
            name
            for (name,) in con.execute(
                "select table_name from information_schema.tables where table_schema = 'raw'"
            ).fetchall()
        }
        if not {"ctgov_studies", "ingest_runs"} <= tables:
            return PreviousState()
        (watermark,) = con.execute(
            "select max(last_update_post_date) from raw.ctgov_studies"
        ).fetchone()
        row = con.execute(
            "select data_timestamp from raw.ingest_runs where source = 'ctgov' "
            "and status = 'loaded' and data_timestamp is not null "
            "order by finished_at desc limit 1"
        ).fetchone()
        return PreviousState(data_timestamp=row[0] if row else None, watermark=watermark)
    finally:
        con.close()


@task(name="ingest-ctgov", cache_policy=NO_CACHE)
def ingest_ctgov_task(
    settings: Settings, source: str, since: date | None, full: bool, previous: PreviousState
) -> IngestOutcome:
    logger = get_run_logger()
    report = progress.reporter()
    report.start("ClinicalTrials.gov pages")

    def on_progress(records: int, total: int | None) -> None:
        report.advance("ClinicalTrials.gov pages", records, total)

    outcome = ingest_ctgov(
        settings,
        source=source,
        since=since,
        full=full,
        previous=previous,
        on_progress=on_progress,
    )
    report.finish("ClinicalTrials.gov pages")
    if outcome.skipped_reason:
        logger.info(outcome.skipped_reason)
    else:
        logger.info(
            "landed %s records in %s pages under %s%s",
            outcome.records_landed,
            outcome.pages_landed,
            outcome.run.dir if outcome.run else "-",
            f" (resumed at page {outcome.resumed_from_page})" if outcome.resumed_from_page else "",
        )
    return outcome


@task(name="load-raw", cache_policy=NO_CACHE)
def load_raw_task(settings: Settings, build: Any, outcome: IngestOutcome) -> LoadResult | None:
    con = connect(build, settings)
    try:
        ensure_raw_schema(con)
        ledger = {
            "api_version": outcome.api_version,
            "data_timestamp": outcome.data_timestamp,
            "since_date": outcome.since,
            "query": outcome.query,
            "started_at": outcome.started_at,
            "topic_version": load_topic(settings.topic_file).version,
        }
        if outcome.run is None:
            record_ledger(
                con,
                {
                    **ledger,
                    "run_id": f"skipped-{outcome.started_at:%Y%m%dT%H%M%SZ}",
                    "source": "ctgov",
                    "mode": outcome.mode,
                    "status": "skipped_unchanged",
                    "pages": 0,
                    "records_landed": 0,
                    "records_loaded": 0,
                    "records_rejected": 0,
                    "message": outcome.skipped_reason,
                },
            )
            return None
        report = progress.reporter()
        report.start("Loading raw records", outcome.records_landed)
        result = load_ctgov_run(
            con,
            outcome.run,
            mode=outcome.mode,
            max_reject_share=settings.max_reject_share,
            batch_records=settings.load_batch_records,
            topic=load_topic(settings.topic_file),
            ledger=ledger,
            on_progress=lambda n: report.advance("Loading raw records", n),
        )
        report.finish("Loading raw records")
        if result.rejects:
            get_run_logger().warning(
                "%s records rejected (see raw.rejected_records): %s",
                result.records_rejected,
                "; ".join(f"line {r['source_line']}: {r['reason']}" for r in result.rejects[:3]),
            )
        return result
    finally:
        con.close()


@task(name="ingest-publications", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=30)
def ingest_publications_task(
    settings: Settings, source: str, since: date | None, full: bool, watermark: date | None
) -> list[PublicationIngest]:
    """PubMed (esearch windows + efetch) and Europe PMC (live only) into the raw landing."""
    logger = get_run_logger()
    outcomes = [ingest_pubmed(settings, source=source, since=since, full=full,
                              watermark=watermark)]
    outcomes.append(ingest_europepmc(settings, source=source))
    for outcome in outcomes:
        logger.info("%s: %s", outcome.source,
                    outcome.skipped_reason or f"landed {outcome.records_landed} records")
    return outcomes


@task(name="load-publications", cache_policy=NO_CACHE)
def load_publications_task(
    settings: Settings, build: Any, outcomes: list[PublicationIngest]
) -> dict[str, int]:
    con = connect(build, settings)
    loaded = {}
    try:
        for outcome in outcomes:
            if outcome.run is None:
                continue
            ledger = {"mode": outcome.mode, "started_at": outcome.started_at,
                      "query": outcome.query, "since_date": outcome.since}
            if outcome.source == "pubmed":
                result = load_pubmed_run(con, outcome.run,
                                         max_reject_share=settings.max_reject_share, ledger=ledger)
            else:
                result = load_europepmc_run(con, outcome.run, ledger=ledger)
            loaded[outcome.source] = result["loaded"]
    finally:
        con.close()
    return loaded


def _publications_watermark(settings: Settings) -> date | None:
    if not settings.warehouse_path.exists():
        return None
    con = connect(settings.warehouse_path, settings, read_only=True)
    try:
        row = con.execute(
            "select max(finished_at)::date from raw.ingest_runs "
            "where source = 'pubmed' and status = 'loaded'"
        ).fetchone()
        return row[0] if row else None
    except Exception:  # noqa: BLE001 - an older warehouse without the table
        return None
    finally:
        con.close()


@task(name="load-outcome-sheets", cache_policy=NO_CACHE)
def load_outcome_sheets_task(settings: Settings, build: Any, run_id: str) -> list[dict[str, Any]]:
    """Validate and load each curated sheet; a rejected sheet leaves its previous version in
    effect (the run goes on and reports every problem)."""
    logger = get_run_logger()
    sheets = sorted(
        p for p in settings.outcomes_path.glob("*")
        if p.suffix.lower() in {".csv", ".xlsx"} and not p.name.startswith(("~", "."))
    )
    results = []
    con = connect(build, settings)
    try:
        for sheet in sheets:
            try:
                result = load_outcome_sheet(con, sheet, run_id)
            except SheetRejected as exc:
                logger.warning("%s", exc)
                result = {"status": "rejected", "rows": 0, "message": str(exc)}
            results.append({"sheet": sheet.name, **result})
    finally:
        con.close()
    return results


@task(name="dbt-build", cache_policy=NO_CACHE)
def dbt_build_task(settings: Settings, build: Any) -> DbtResult:
    report = progress.reporter()
    report.start("dbt build")
    result = run_dbt(settings, ["build"], build)
    report.finish("dbt build")
    return result


@task(name="publish", cache_policy=NO_CACHE)
def publish_task(settings: Settings, build: Any) -> PublishResult:
    return publish(settings, build)


def _table_counts(settings: Settings) -> dict[str, int]:
    con = connect(settings.warehouse_path, settings, read_only=True)
    try:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema in ('raw', 'staging', 'intermediate', 'marts') "
            "order by table_schema, table_name"
        ).fetchall()
        return {
            f"{schema}.{name}": con.execute(f'select count(*) from "{schema}"."{name}"').fetchone()[
                0
            ]
            for schema, name in tables
        }
    finally:
        con.close()


def _transient_only(task, task_run, state) -> bool:
    """Retry network tasks only for failures that may pass (timeouts, 429, 5xx)."""
    try:
        state.result()
    except SourceError as exc:
        return exc.transient
    except Exception:  # noqa: BLE001
        return False
    return False


@flow(name="ingest-registries")
def ingest_registries_flow(
    settings: Settings, source: str, since: date | None, full: bool, previous: PreviousState
) -> IngestOutcome:
    return ingest_ctgov_task.with_options(
        retries=2, retry_delay_seconds=[60, 300], retry_condition_fn=_transient_only,
        timeout_seconds=6 * 3600,
    )(settings, source, since, full, previous)


@task(name="ingest-ictrp", cache_policy=NO_CACHE)
def ingest_ictrp_task(settings: Settings, source: str) -> RegistryIngest:
    outcome = ingest_ictrp(settings, source)
    get_run_logger().info("ictrp: %s", outcome.skipped_reason
                          or f"landed {outcome.records_landed} records from {outcome.files}")
    return outcome


@task(name="ingest-ctis", cache_policy=NO_CACHE)
def ingest_ctis_task(settings: Settings) -> RegistryIngest:
    """EU CTIS search (pages from 1) for the topic's condition, with each trial's detail."""
    return ingest_ctis(settings, {"medicalCondition": "diabetes"})


@flow(name="ingest-publications")
def ingest_publications_flow(
    settings: Settings, source: str, since: date | None, full: bool
) -> list[PublicationIngest]:
    return ingest_publications_task.with_options(
        retries=2, retry_delay_seconds=[60, 300], retry_condition_fn=_transient_only,
        timeout_seconds=6 * 3600,
    )(settings, source, since, full, _publications_watermark(settings))


@flow(name="load")
def load_flow(
    settings: Settings, build: Any, outcome: IngestOutcome | None,
    publications: list[PublicationIngest], run_id: str, load_sheets: bool,
    registries: list[RegistryIngest] | None = None,
) -> dict[str, Any]:
    registries = registries or []
    result: dict[str, Any] = {"ctgov": None, "publications": {}, "outcome_sheets": []}
    if outcome is not None:
        result["ctgov"] = load_raw_task(settings, build, outcome)
    for other in registries:
        if other.run is not None:
            con = connect(build, settings)
            try:
                if other.source == "ictrp":
                    result["ictrp"] = load_registry_run(
                        con, other.run, id_field="TrialID", table="ictrp_trials",
                        register_field="Source_Register")
                else:
                    result["ctis"] = load_registry_run(con, other.run, id_field="ctNumber",
                                                       table="ctis_trials")
            finally:
                con.close()
    result["publications"] = load_publications_task(settings, build, publications)
    if load_sheets:
        result["outcome_sheets"] = load_outcome_sheets_task(settings, build, run_id)
    return result


@flow(name="transform")
def transform_flow(settings: Settings, build: Any) -> DbtResult:
    return dbt_build_task(settings, build)


@flow(name="validate")
def validate_flow(settings: Settings, build: Any, gate: str, run_ids: dict) -> dict[str, Any]:
    return validate_task(settings, build, gate, run_ids)


@flow(name="publish")
def publish_flow(settings: Settings, build: Any) -> PublishResult:
    return publish_task(settings, build)


@task(name="validate-gate", cache_policy=NO_CACHE)
def validate_task(settings: Settings, build: Any, gate: str, run_ids: dict) -> dict[str, Any]:
    report = progress.reporter()
    report.start(f"{gate} gate (Great Expectations)")
    result = run_gate(settings, build, gate, run_ids).as_dict()
    report.finish(f"{gate} gate (Great Expectations)")
    for warning in result["warnings"]:
        get_run_logger().warning("%s gate warning: %s", gate, warning)
    return result


def _latest_run_ids(settings: Settings, build: Any, ctgov_run: str | None,
                    publications: list[PublicationIngest]) -> dict[str, str | None]:
    pubmed = next((p.run.run_id for p in publications if p.source == "pubmed" and p.run), None)
    return {"ctgov": ctgov_run, "pubmed": pubmed, "outcome": "current"}


def alert_on_failure(flow, flow_run, state) -> None:
    """Flow failure hook: write data/quality/last_failure.json and post to the alert webhook."""
    settings = get_settings()
    message = f"Betacell refresh {flow_run.name} failed: {state.message}"
    try:
        state.result()
    except Exception as exc:  # noqa: BLE001 - the failure being reported
        message = f"Betacell refresh {flow_run.name} failed: {exc}"
    settings.quality_dir.mkdir(parents=True, exist_ok=True)
    (settings.quality_dir / "last_failure.json").write_text(
        json.dumps({"flow_run": flow_run.name, "at": utc_now().isoformat(), "message": message},
                   indent=2))
    if settings.alert_webhook_url:
        try:
            httpx.post(settings.alert_webhook_url, json={"text": message}, timeout=10)
        except httpx.HTTPError as exc:
            get_run_logger().error("alert webhook failed: %s", exc)


@flow(name="refresh-warehouse", log_prints=True, on_failure=[alert_on_failure])
def refresh_warehouse(
    source: str = "snapshot",
    since: date | None = None,
    full: bool = False,
    stages: list[str] | None = None,
) -> dict[str, Any]:
    """Ingest -> load -> raw gate -> dbt build -> mart gate -> publish.

    ``stages`` limits what is ingested (registries, publications, outcomes); the build, the gates
    and the publish always run. Nothing is published unless every step passed.
    """
    settings = get_settings()
    stages = stages or ["registries", "publications", "outcomes"]
    summary = RefreshSummary(source=source)
    with refresh_lock(settings):
        outcome = None
        if "registries" in stages:
            previous = read_previous_state(settings)
            outcome = ingest_registries_flow(settings, source, since, full, previous)
            summary.mode = outcome.mode
            summary.skipped_reason = outcome.skipped_reason
            summary.pages_landed = outcome.pages_landed
            summary.records_landed = outcome.records_landed
            summary.resumed_from_page = outcome.resumed_from_page
            summary.run_id = outcome.run.run_id if outcome.run else None
        other_registries: list[RegistryIngest] = []
        if "registries" in stages:
            other_registries.append(ingest_ictrp_task(settings, source))
            if source == "live":
                other_registries.append(ingest_ctis_task.with_options(
                    retries=2, retry_delay_seconds=[60, 300], retry_condition_fn=_transient_only,
                    timeout_seconds=3600)(settings))
        publications: list[PublicationIngest] = []
        if "publications" in stages:
            publications = ingest_publications_flow(settings, source, since, full)

        build = prepare_build_database(settings)
        run_label = summary.run_id or f"run-{utc_now():%Y%m%dT%H%M%SZ}"
        loaded = load_flow(settings, build, outcome, publications, run_label,
                           "outcomes" in stages, other_registries)
        if loaded["ctgov"] is not None:
            summary.records_loaded = loaded["ctgov"].records_loaded
            summary.records_rejected = loaded["ctgov"].records_rejected
        summary.publications_loaded = loaded["publications"]
        summary.outcome_sheets = loaded["outcome_sheets"]
        run_ids = _latest_run_ids(settings, build, summary.run_id if outcome and outcome.run
                                  else None, publications)
        summary.gates["raw"] = validate_flow(settings, build, "raw", run_ids)
        dbt_result = transform_flow(settings, build)
        summary.dbt_status_counts = dbt_result.status_counts
        summary.gates["mart"] = validate_flow(settings, build, "mart", run_ids)
        published = publish_flow(settings, build)
        summary.warehouse = str(published.warehouse)
        summary.published_bytes = published.bytes
    summary.table_counts = _table_counts(settings)
    summary.changes = _changes(settings)
    create_markdown_artifact(
        key="refresh-warehouse-summary",
        markdown=_summary_markdown(summary),
        description="What the last refresh built",
    )
    return summary.as_dict()


def _changes(settings: Settings) -> dict[str, int]:
    con = connect(settings.warehouse_path, settings, read_only=True)
    try:
        return dict(con.execute(
            "select change_type, count(*) from marts.changes_since_last_run group by 1 order by 1"
        ).fetchall())
    except Exception:  # noqa: BLE001 - an older warehouse without the mart
        return {}
    finally:
        con.close()


def _summary_markdown(summary: RefreshSummary) -> str:
    lines = [
        f"# Refresh ({summary.source}, {summary.mode})",
        "",
        f"- run: `{summary.run_id or 'none'}`"
        + (f" — {summary.skipped_reason}" if summary.skipped_reason else ""),
        f"- landed: {summary.records_landed} records in {summary.pages_landed} pages",
        f"- loaded: {summary.records_loaded}, rejected: {summary.records_rejected}",
        f"- publications loaded: {summary.publications_loaded}",
        f"- outcome sheets: {summary.outcome_sheets}",
        f"- dbt: {summary.dbt_status_counts}",
        *(f"- {gate} gate: {'passed' if r.get('passed') else 'FAILED'} "
          f"({r.get('expectations', 0)} expectations, {len(r.get('warnings', []))} warnings)"
          for gate, r in summary.gates.items()),
        f"- changes since the last run: {summary.changes or 'none'}",
        "",
        "| table | rows |",
        "|---|---:|",
    ]
    lines += [f"| {name} | {count} |" for name, count in summary.table_counts.items()]
    return "\n".join(lines)
