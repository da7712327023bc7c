"""The sources a refresh runs: for each, its stage, whether it runs offline, the raw tables it
fills, the raw-gate checks that cover it, and how it is ingested (fetched and landed) and loaded
(landed runs -> raw tables). Whether a source is critical is a setting
(``BETACELL_CRITICAL_SOURCES``, ClinicalTrials.gov by default)."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any

import duckdb

from flows import progress
from flows.landing import LandingRun, utc_now
from flows.settings import REPO_DIR, Settings
from flows.sources.topic import Topic
from flows.state import PreviousState


@dataclass(frozen=True)
class IngestRequest:
    settings: Settings
    mode: str  # snapshot | live
    since: date | None
    full: bool
    previous: PreviousState
    topic: Topic


@dataclass
class Ingested:
    """What one source landed in this run (or why it landed nothing)."""

    source: str
    mode: str
    runs: list[LandingRun] = field(default_factory=list)
    skipped_reason: str | None = None
    records_landed: int = 0
    pages_landed: int = 0
    resumed_from_page: int | None = None
    ledger: dict[str, Any] = field(default_factory=dict)  # extra fields for raw.ingest_runs
    started_at: Any = field(default_factory=utc_now)
    warnings: list[str] = field(default_factory=list)  # said in the run summary and the log


@dataclass
class Loaded:
    source: str
    run_ids: list[str] = field(default_factory=list)
    records_loaded: int = 0
    records_rejected: int = 0
    rejects: list[dict[str, Any]] = field(default_factory=list)
    details: list[dict[str, Any]] = field(default_factory=list)
    records_superseded: int = 0  # a study twice in one run: the older version, not loaded
    impossible_dates: list[str] = field(default_factory=list)  # kept as text, NULL as dates


@dataclass(frozen=True)
class SourceSpec:
    name: str
    live_only: bool
    raw_tables: tuple[str, ...]
    gate_checks: tuple[str, ...]
    ingest: Callable[[IngestRequest], Ingested]
    load: Callable[[duckdb.DuckDBPyConnection, Ingested, Settings], Loaded]

    @property
    def label(self) -> str:
        return source_seed()[self.name]["label"]

    @property
    def stage(self) -> str:
        return source_seed()[self.name]["stage"]


@lru_cache(maxsize=1)
def source_seed() -> dict[str, dict[str, str]]:
    """Labels and stages of the sources: the dbt seed `sources` is their one home."""
    with (REPO_DIR / "dbt_project" / "seeds" / "sources.csv").open(newline="") as handle:
        return {row["source"]: row for row in csv.DictReader(handle)}


# -- ClinicalTrials.gov ------------------------------------------------------------------------
def _missing_from_snapshot(request: IngestRequest, source: str, label: str) -> Ingested | None:
    folder = request.settings.snapshot_path / source
    if request.mode == "snapshot" and not folder.is_dir():
        return Ingested(source, "snapshot", skipped_reason=f"the snapshot has no {label} data "
                        f"({folder} does not exist)", ledger={"status": "skipped"})
    return None


def _ingest_ctgov(request: IngestRequest) -> Ingested:
    from flows.ingest import ingest_ctgov

    if absent := _missing_from_snapshot(request, "ctgov", "ClinicalTrials.gov"):
        return absent
    report = progress.reporter()
    report.start("ClinicalTrials.gov pages")
    outcome = ingest_ctgov(
        request.settings, source=request.mode, since=request.since, full=request.full,
        previous=request.previous,
        on_progress=lambda n, total: report.advance("ClinicalTrials.gov pages", n, total))
    report.finish("ClinicalTrials.gov pages")
    skip_status = {"status": "skipped_unchanged"} if outcome.skipped_reason else {}
    return Ingested(
        "ctgov", outcome.mode, [outcome.run] if outcome.run else [],
        skipped_reason=outcome.skipped_reason, records_landed=outcome.records_landed,
        pages_landed=outcome.pages_landed, resumed_from_page=outcome.resumed_from_page,
        started_at=outcome.started_at, warnings=outcome.warnings,
        ledger={"api_version": outcome.api_version, "data_timestamp": outcome.data_timestamp,
                "since_date": outcome.since, "query": outcome.query,
                "topic_version": request.topic.version,
                "topic_fingerprint": request.topic.fingerprint, **skip_status})


def _load_ctgov(con: duckdb.DuckDBPyConnection, ingested: Ingested, settings: Settings) -> Loaded:
    from flows.load import load_ctgov_run, record_ledger
    from flows.sources.topic import load_topic

    loaded = Loaded("ctgov")
    ledger = {**ingested.ledger, "started_at": ingested.started_at}
    if not ingested.runs:
        record_ledger(con, {"status": "skipped", **ledger,
                            "run_id": f"skipped-{ingested.started_at:%Y%m%dT%H%M%SZ}",
                            "source": "ctgov", "mode": ingested.mode, "pages": 0,
                            "records_landed": 0, "records_loaded": 0, "records_rejected": 0,
                            "message": ingested.skipped_reason})
        return loaded
    ledger.pop("status", None)
    report = progress.reporter()
    for run in ingested.runs:
        report.start("Loading raw records", ingested.records_landed)
        result = load_ctgov_run(
            con, run, mode=ingested.mode, max_reject_share=settings.max_reject_share,
            batch_records=settings.load_batch_records, topic=load_topic(settings.topic_file),
            ledger=ledger, on_progress=lambda n: report.advance("Loading raw records", n))
        report.finish("Loading raw records")
        loaded.run_ids.append(run.run_id)
        loaded.records_loaded += result.records_loaded
        loaded.records_rejected += result.records_rejected
        loaded.rejects += result.rejects[:20]
        loaded.records_superseded += result.records_superseded
        loaded.impossible_dates += result.impossible_dates
    return loaded


# -- WHO ICTRP exports and EU CTIS ---------------------------------------------------------------
def _ingest_ictrp(request: IngestRequest) -> Ingested:
    from flows.registries import ingest_ictrp

    outcome = ingest_ictrp(request.settings, request.mode)
    return Ingested("ictrp", "files", [outcome.run] if outcome.run else [],
                    skipped_reason=outcome.skipped_reason,
                    records_landed=outcome.records_landed, pages_landed=len(outcome.files),
                    ledger={"query": {"files": outcome.files}}, warnings=outcome.warnings)


def _ingest_ctis(request: IngestRequest) -> Ingested:
    from flows.registries import ingest_ctis

    outcome = ingest_ctis(request.settings,
                          {"medicalCondition": request.topic.ctis_medical_condition})
    return Ingested("ctis", "api", [outcome.run] if outcome.run else [],
                    skipped_reason=outcome.skipped_reason,
                    records_landed=outcome.records_landed)


def _registry_loader(table: str, id_field: str, register_field: str | None = None):
    def load(con: duckdb.DuckDBPyConnection, ingested: Ingested, settings: Settings) -> Loaded:
        from flows.registries import load_registry_run

        loaded = Loaded(ingested.source)
        for run in ingested.runs:
            result = load_registry_run(con, run, id_field=id_field, table=table,
                                       register_field=register_field)
            loaded.run_ids.append(run.run_id)
            loaded.records_loaded += result["loaded"]
            loaded.records_rejected += result["rejected"]
        return loaded

    return load


# -- PubMed and Europe PMC ------------------------------------------------------------------------
def _ingest_pubmed(request: IngestRequest) -> Ingested:
    from flows.publications import ingest_pubmed

    if absent := _missing_from_snapshot(request, "pubmed", "PubMed"):
        return absent
    outcome = ingest_pubmed(request.settings, source=request.mode, since=request.since,
                            full=request.full, watermark=request.previous.publications_watermark)
    return Ingested("pubmed", outcome.mode, [outcome.run] if outcome.run else [],
                    skipped_reason=outcome.skipped_reason,
                    records_landed=outcome.records_landed, pages_landed=outcome.pages_landed,
                    started_at=outcome.started_at, warnings=outcome.warnings,
                    ledger={"query": outcome.query, "since_date": outcome.since})


def _load_pubmed(con: duckdb.DuckDBPyConnection, ingested: Ingested, settings: Settings) -> Loaded:
    from flows.publications import load_pubmed_run

    loaded = Loaded("pubmed")
    for run in ingested.runs:
        result = load_pubmed_run(con, run, max_reject_share=settings.max_reject_share,
                                 ledger={"mode": ingested.mode, "started_at": ingested.started_at,
                                         **ingested.ledger})
        loaded.run_ids.append(run.run_id)
        loaded.records_loaded += result["loaded"]
        loaded.records_rejected += result["rejected"]
    return loaded


def _ingest_europepmc(request: IngestRequest) -> Ingested:
    from flows.publications import ingest_europepmc

    outcome = ingest_europepmc(request.settings, source=request.mode)
    return Ingested("europepmc", outcome.mode, [outcome.run] if outcome.run else [],
                    skipped_reason=outcome.skipped_reason,
                    records_landed=outcome.records_landed, pages_landed=outcome.pages_landed,
                    started_at=outcome.started_at, ledger={"query": outcome.query})


def _load_europepmc(con: duckdb.DuckDBPyConnection, ingested: Ingested,
                    settings: Settings) -> Loaded:
    from flows.publications import load_europepmc_run

    loaded = Loaded("europepmc")
    for run in ingested.runs:
        result = load_europepmc_run(con, run, ledger={"started_at": ingested.started_at,
                                                      **ingested.ledger})
        loaded.run_ids.append(run.run_id)
        loaded.records_loaded += result["loaded"]
    return loaded


# -- Curated outcome sheets -----------------------------------------------------------------------
SHEET_SUFFIXES = {".csv", ".xlsx", ".xlsm"}
REJECTED_SHEET = {"rejected", "still_rejected"}  # the sheet's previous version stays in effect
UNCHANGED_SHEET = {"unchanged", "still_rejected"}  # nothing new to build from


def _ingest_outcomes(request: IngestRequest) -> Ingested:
    folder = request.settings.outcomes_path
    sheets = sorted(p for p in folder.glob("*") if p.suffix.lower() in SHEET_SUFFIXES
                    and not p.name.startswith(("~", ".")) and p.is_file()) \
        if folder.is_dir() else []
    return Ingested("outcomes", "files", skipped_reason=None if sheets else
                    f"no outcome sheet in {folder}" + ("" if folder.is_dir() else
                                                       " (folder not found: sheets already "
                                                       "loaded stay in effect)"),
                    records_landed=len(sheets),
                    ledger={"sheets": [str(p) for p in sheets], "folder_found": folder.is_dir()})


def _load_outcomes(con: duckdb.DuckDBPyConnection, ingested: Ingested,
                   settings: Settings) -> Loaded:
    """Each sheet is validated whole; a rejected sheet leaves its previous version in effect."""
    from pathlib import Path

    from flows.load import record_ledger
    from flows.outcomes import SheetRejected, load_outcome_sheet, withdraw_missing_sheets
    from flows.publish import code_fingerprint, published_fingerprint

    loaded = Loaded("outcomes")
    run_id = f"sheets-{ingested.started_at:%Y%m%dT%H%M%SZ}"
    sheets = list(map(Path, ingested.ledger.get("sheets", [])))
    seen: dict[str, str] = {}
    # a rejection is remembered while the code that validated it is the published one
    same_validation = published_fingerprint(settings) == code_fingerprint(settings)
    for sheet in sheets:
        try:
            result = load_outcome_sheet(con, sheet, run_id, seen,
                                        remember_rejections=same_validation)
        except SheetRejected as exc:
            result = {"status": "rejected", "rows": 0, "message": str(exc),
                      "sheet_sha256": exc.sheet_sha256}
        loaded.details.append({"sheet": sheet.name, **result})
        loaded.records_loaded += result.get("rows", 0)
    if ingested.ledger.get("folder_found"):
        loaded.details += withdraw_missing_sheets(con, {p.name for p in sheets}, run_id)
    rejected = [d for d in loaded.details if d["status"] in REJECTED_SHEET]
    if loaded.details:
        status = ("failed" if rejected else "loaded"
                  if any(d["status"] in {"accepted", "withdrawn"} for d in loaded.details)
                  else "skipped_unchanged")
        record_ledger(con, {"run_id": run_id, "source": "outcomes", "mode": "files",
                            "status": status, "started_at": ingested.started_at,
                            "records_landed": len(loaded.details),
                            "records_loaded": loaded.records_loaded,
                            "records_rejected": len(rejected),
                            "message": "; ".join(f"{d['sheet']}: {d['message']}"
                                                 for d in rejected)[:2000] or None})
        loaded.run_ids.append(run_id)
    return loaded


SOURCES: tuple[SourceSpec, ...] = (
    SourceSpec("ctgov", False, ("ctgov_studies",), ("raw_ctgov_studies", "raw_ctgov_row_count"),
               _ingest_ctgov, _load_ctgov),
    SourceSpec("ictrp", False, ("ictrp_trials",), (), _ingest_ictrp,
               _registry_loader("ictrp_trials", "TrialID", "Source_Register")),
    SourceSpec("ctis", True, ("ctis_trials",), (), _ingest_ctis,
               _registry_loader("ctis_trials", "ctNumber")),
    SourceSpec("pubmed", False, ("pubmed_articles",), ("raw_pubmed_articles",), _ingest_pubmed,
               _load_pubmed),
    SourceSpec("europepmc", True, ("europepmc_records",), (), _ingest_europepmc,
               _load_europepmc),
    SourceSpec("outcomes", False, ("outcome_sheet_rows", "outcome_sheet_versions"),
               ("raw_outcome_sheet",), _ingest_outcomes, _load_outcomes),
)
SOURCE_NAMES = tuple(spec.name for spec in SOURCES)


def plan(mode: str, stages: list[str] | None) -> list[SourceSpec]:
    """The sources this run ingests: those of the requested stages that can run in this mode."""
    stages = stages or ["registries", "publications", "outcomes"]
    return [spec for spec in SOURCES
            if spec.stage in stages and (mode == "live" or not spec.live_only)]


@contextmanager
def closure_clients(settings: Settings, mode: str) -> Iterator[dict[str, Any]]:
    """Clients that can fetch one record by id, per source, for the referential closure."""
    from flows.ingest import make_ctgov_client
    from flows.sources.ctis import make_ctis_client

    clients: dict[str, Any] = {}
    if mode == "live" or (settings.snapshot_path / "ctgov").is_dir():
        clients["ctgov"] = make_ctgov_client(settings, mode)
    if mode == "live":
        clients["ctis"] = make_ctis_client(settings)
    try:
        yield clients
    finally:
        for client in clients.values():
            client.close()
