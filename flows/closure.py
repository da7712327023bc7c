"""Referential closure: registry ids that the curated outcome sheets, the curated links, the
registries' secondary-id lists or PubMed DataBank entries name, but that this run did not fetch,
are fetched by id from their registry (ClinicalTrials.gov ``GET /studies/{nctId}``; EU CTIS
retrieve), landed and loaded like any page. Every attempt is recorded in
``raw.reference_checks``; what still cannot be resolved is listed by the mart
``unresolved_references`` (a gate warning, never a reason to publish nothing)."""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass, field

import duckdb
import orjson
import polars as pl

from flows.errors import SourceError
from flows.landing import LandingRun, new_run_id, utc_now
from flows.registry_ids import find_registry_ids
from flows.settings import REPO_DIR, Settings

CURATED_LINKS = REPO_DIR / "dbt_project" / "seeds" / "curated_publication_trial_links.csv"
FETCHABLE = {"ClinicalTrials.gov": "ctgov", "EU CT": "ctis"}

# Texts that name registry ids, per referencing source (raw tables; each query returns
# (referenced_by, text) rows). Only the current accepted version of each outcome sheet counts.
REFERENCE_TEXTS = {
    "outcome_sheet": """
        select 'outcome_sheet:' || r.sheet_file, r.trial_id
        from raw.outcome_sheet_rows r
        join (select sheet_file, sheet_sha256, status from raw.outcome_sheet_versions
              where status in ('accepted', 'withdrawn')
              qualify row_number() over (partition by sheet_file order by loaded_at desc) = 1) v
          using (sheet_file, sheet_sha256)
        where v.status = 'accepted' and r.trial_id is not null""",
    "ctgov_secondary_ids": """
        select 'ctgov_secondary_id:' || nct_id,
               unnest(json_extract_string(payload,
                   '$.protocolSection.identificationModule.secondaryIdInfos[*].id'))
        from raw.ctgov_studies""",
    "ictrp_secondary_ids": """
        select 'ictrp_secondary_id:' || record_id,
               concat_ws(' ; ', payload->>'Secondary_ID', payload->>'other_records')
        from raw.ictrp_trials""",
    "pubmed_databank": """
        select 'pubmed_databank:' || publication_key,
               unnest(json_extract_string(databank_accessions, '$[*].accession_number'))
        from raw.pubmed_articles""",
}
KNOWN_IDS = """
    select nct_id from raw.ctgov_studies
    union select record_id from raw.ictrp_trials
    union select regexp_replace(record_id, '^EUCTR|-[A-Z]{2,3}$', '', 'g') from raw.ictrp_trials
    union select record_id from raw.ctis_trials
"""


@dataclass
class ClosureResult:
    referenced: int = 0
    fetched: dict[str, int] = field(default_factory=dict)
    unresolved: list[dict[str, str]] = field(default_factory=list)
    runs: dict[str, list[LandingRun]] = field(default_factory=lambda: defaultdict(list))


def referenced_ids(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], set[str]]:
    """``(registry, id) -> {referenced_by, ...}`` for every id named by the referencing sources."""
    references: dict[tuple[str, str], set[str]] = defaultdict(set)
    for sql in REFERENCE_TEXTS.values():
        for referenced_by, text in con.execute(sql).fetchall():
            for registry, value in find_registry_ids(text):
                references[(registry, value)].add(referenced_by)
    with CURATED_LINKS.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            for registry, value in find_registry_ids(row.get("trial_id")):
                references[(registry, value)].add("curated_link")
    return references


def missing_references(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], set[str]]:
    known = {value for (value,) in con.execute(KNOWN_IDS).fetchall()}
    return {key: by for key, by in referenced_ids(con).items() if key[1] not in known}


def resolve(con: duckdb.DuckDBPyConnection, settings: Settings, mode: str,
            fetchers: dict[str, object], run_id: str) -> ClosureResult:
    """Fetch what is missing (as far as the fetchers allow) and record every check.

    ``fetchers`` maps a source name (``ctgov``, ``ctis``) to a callable ``id -> record | None``
    (None: the registry does not know the id). Landed records are loaded by the caller.
    """
    result = ClosureResult()
    missing = missing_references(con)
    result.referenced = len(missing)
    checks = []
    budget = settings.closure_max_fetches
    for (registry, value), referenced_by in sorted(missing.items()):
        source = FETCHABLE.get(registry)
        fetch = fetchers.get(source) if source else None
        status, reason, record = "unresolved", None, None
        if fetch is None:
            reason = (f"{registry} ids come only through WHO ICTRP exports; no export in the "
                      "inbox lists it" if source is None
                      else f"{registry} is not fetched by id in {mode} mode")
        elif budget <= 0:
            reason = f"not fetched: more than {settings.closure_max_fetches} missing ids this run"
        else:
            budget -= 1
            try:
                record = fetch(value)
            except SourceError as exc:
                reason = f"fetch failed: {exc}"
            else:
                if record is None:
                    reason = f"{registry} does not know {value} (not found)"
                else:
                    status = "fetched"
        if record is not None:
            _land(settings, result, source, record)
            result.fetched[source] = result.fetched.get(source, 0) + 1
        else:
            result.unresolved.append({"registry": registry, "registry_id": value,
                                      "reason": reason})
        checks.append({"registry": registry, "registry_id": value,
                       "referenced_by": sorted(referenced_by), "status": status,
                       "reason": reason, "run_id": run_id, "checked_at": utc_now()})
    for runs in result.runs.values():
        for run in runs:
            run.complete({"records": sum(e.record_count for e in run.entries())})
    _record_checks(con, checks)
    return result


def _land(settings: Settings, result: ClosureResult, source: str, record: dict) -> None:
    runs = result.runs[source]
    if not runs:
        run = LandingRun(settings.raw_dir, source, new_run_id())
        run.start({"run_id": run.run_id, "source": source, "mode": "by_id",
                   "purpose": "referential closure"})
        runs.append(run)
    run = runs[0]
    page = len(run.entries()) + 1
    run.land_records([orjson.dumps(record)], page=page, query={"by_id": True},
                     fetched_at=utc_now())


def _record_checks(con: duckdb.DuckDBPyConnection, checks: list[dict]) -> None:
    if not checks:
        return
    frame = pl.DataFrame(checks, schema={
        "registry": pl.String, "registry_id": pl.String, "referenced_by": pl.List(pl.String),
        "status": pl.String, "reason": pl.String, "run_id": pl.String,
        "checked_at": pl.Datetime("us", "UTC")})
    con.register("reference_checks_frame", frame)
    try:
        con.execute("insert into raw.reference_checks by name select * from reference_checks_frame")
    finally:
        con.unregister("reference_checks_frame")
