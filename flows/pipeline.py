"""Prefect flows. The parent ``refresh-warehouse`` runs: ingest -> load raw -> dbt build -> publish.

Only this process writes, and it writes the build copy; the published file is replaced at the
very end, after everything passed. A failure anywhere leaves the published warehouse untouched.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows import progress
from flows.db import connect, ensure_raw_schema
from flows.ingest import IngestOutcome, PreviousState, ingest_ctgov
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


@flow(name="refresh-warehouse", log_prints=True)
def refresh_warehouse(
    source: str = "snapshot", since: date | None = None, full: bool = False
) -> dict[str, Any]:
    """Ingest -> load raw -> dbt build -> publish. Publishes nothing unless every step passed."""
    settings = get_settings()
    summary = RefreshSummary(source=source)
    with refresh_lock(settings):
        previous = read_previous_state(settings)
        outcome = ingest_ctgov_task(settings, source, since, full, previous)
        summary.mode = outcome.mode
        summary.skipped_reason = outcome.skipped_reason
        summary.pages_landed = outcome.pages_landed
        summary.records_landed = outcome.records_landed
        summary.resumed_from_page = outcome.resumed_from_page
        summary.run_id = outcome.run.run_id if outcome.run else None

        publications = ingest_publications_task(
            settings, source, since, full, _publications_watermark(settings)
        )

        build = prepare_build_database(settings)
        loaded = load_raw_task(settings, build, outcome)
        summary.publications_loaded = load_publications_task(settings, build, publications)
        summary.outcome_sheets = load_outcome_sheets_task(
            settings, build, summary.run_id or f"run-{outcome.started_at:%Y%m%dT%H%M%SZ}"
        )
        if loaded is not None:
            summary.records_loaded = loaded.records_loaded
            summary.records_rejected = loaded.records_rejected
        dbt_result = dbt_build_task(settings, build)
        summary.dbt_status_counts = dbt_result.status_counts
        published = publish_task(settings, build)
        summary.warehouse = str(published.warehouse)
        summary.published_bytes = published.bytes
    summary.table_counts = _table_counts(settings)
    create_markdown_artifact(
        key="refresh-warehouse-summary",
        markdown=_summary_markdown(summary),
        description="What the last refresh built",
    )
    return summary.as_dict()


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
        "",
        "| table | rows |",
        "|---|---:|",
    ]
    lines += [f"| {name} | {count} |" for name, count in summary.table_counts.items()]
    return "\n".join(lines)
