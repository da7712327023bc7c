"""ClinicalTrials.gov as a resource: ``raw.ctgov_studies``, keyed by ``nct_id`` with a content
hash (loading the same study content again adds no row), the incremental cursor
``lastUpdatePostDate`` (watermark minus ``BETACELL_CTGOV_OVERLAP_DAYS``), one study by id, the
raw-gate checks, and the extract: the topic search paged into the raw landing (resumed where an
interrupted run stopped) or, with ``--full --source live``, the whole-registry archive.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from itertools import islice
from pathlib import Path
from typing import Any

import orjson

from flows import progress
from flows.checks import PARTIAL_DATE, WARNING, Check, Expect
from flows.errors import SourceError
from flows.landing import LandingRun, find_resumable_run, new_run_id, utc_now
from flows.settings import Settings
from flows.sources.base import ExtractRequest, Fetch, Incremental, Resource, SourceRun, skipped
from flows.sources.ctgov import client
from flows.sources.ctgov.parse import check_study_line, topic_filter_sql
from flows.sources.http import PoliteClient
from flows.sources.topic import Topic, load_topic

SOURCE = "ctgov"
ARCHIVE_CHUNK_RECORDS = 20_000
PAGES = "ClinicalTrials.gov pages"  # the progress bar
CURSOR = Incremental("last_update_post_date", overlap_setting="ctgov_overlap_days")
# A resume token the registry refuses: tokens expire (HTTP 400 "Invalid pageToken").
TOKEN_REFUSED = frozenset({400, 404, 410})

ProgressFn = Callable[[int, int | None], None]  # (records just landed, total if known)


def extract(request: ExtractRequest, client_: PoliteClient | None = None,
            on_progress: ProgressFn | None = None) -> SourceRun:
    """``GET /version`` first: unchanged source data (same ``dataTimestamp``, same topic) fetch
    nothing. Otherwise the topic search (incremental from the cursor) or the bulk archive."""
    settings = request.settings
    folder = settings.snapshot_path / SOURCE
    if request.mode == "snapshot" and not folder.is_dir():
        return skipped(request, SOURCE, f"the snapshot has no ClinicalTrials.gov data ({folder} "
                       "does not exist)", status="skipped")
    topic = load_topic(settings.topic_file)
    mode = ("bulk" if (request.full and request.mode == "live")
            else "snapshot" if request.mode == "snapshot" else "api")
    report = progress.reporter() if on_progress is None else None
    if report is not None:
        report.start(PAGES)

        def on_progress(records: int, total: int | None) -> None:
            report.advance(PAGES, records, total)
    own_client = client_ is None
    api = client_ or client.make_client(settings, request.mode, bulk=mode == "bulk")
    try:
        version = client.fetch_version(api)
        run = SourceRun(SOURCE, mode, ledger={
            "api_version": version.get("apiVersion"), "data_timestamp": version.get("dataTimestamp"),
            "topic_version": topic.version, "topic_fingerprint": topic.fingerprint})
        previous = request.state.last_run
        topic_changed = (previous.get("topic_fingerprint") is not None
                         and previous.get("topic_fingerprint") != topic.fingerprint)
        unchanged = (previous.get("data_timestamp") is not None
                     and run.ledger["data_timestamp"] == previous.get("data_timestamp")
                     and not topic_changed)
        if topic_changed and request.since is None:
            # a new topic can match records of any age: search everything, not the window
            request = replace(request, state=replace(request.state, watermark=None))
        if unchanged and not request.full and request.since is None:
            run.skipped_reason = (f"source data unchanged since the last run (dataTimestamp "
                                  f"{run.ledger['data_timestamp']}); nothing fetched")
            run.ledger["status"] = "skipped_unchanged"
            return run
        fingerprint = _fingerprint(topic, mode)
        if mode == "bulk":
            run.load_filter = topic_filter_sql(topic)
            return _extract_bulk(settings, api, topic, fingerprint, run, on_progress)
        run.ledger["since_date"] = CURSOR.since(request)
        return _extract_pages(settings, api, topic, fingerprint, run, on_progress)
    finally:
        if report is not None:
            report.finish(PAGES)
        if own_client:
            api.close()


def _fingerprint(topic: Topic, mode: str) -> str:
    return hashlib.sha256(f"{topic.fingerprint}|{mode}".encode()).hexdigest()[:16]


def _extract_pages(settings: Settings, api: PoliteClient, topic: Topic, fingerprint: str,
                   run: SourceRun, on_progress: ProgressFn | None) -> SourceRun:
    """Page the topic search into a landing run, resuming an interrupted one where it stopped.

    A resumed run whose token the registry refuses (or whose last page lost its token in a
    crash) restarts the search from page one: its landed pages are kept when the run's query is
    the one a fresh search sends now (a study landed twice is loaded once, its newest version),
    otherwise the run is abandoned and a new one starts."""
    fresh_since = run.ledger["since_date"]
    fresh_params = client.build_search_params(topic, fresh_since, settings.ctgov_page_size)
    landing = find_resumable_run(settings.raw_dir, SOURCE, fingerprint, run.warnings)
    if landing is None:
        landing = _start_landing(settings, topic, fingerprint, run, fresh_params)
        return _land_pages(landing, api, fresh_params, None, 1, run, on_progress,
                           settings.ctgov_max_records)
    meta = landing.meta()
    params = meta["params"]
    run.ledger["since_date"] = date.fromisoformat(meta["since"]) if meta.get("since") else None
    entries = landing.entries()
    if not entries:
        return _land_pages(landing, api, params, None, 1, run, on_progress,
                           settings.ctgov_max_records)
    last = entries[-1]
    run.resumed_from_page = last.page + 1
    run.pages_landed = len(entries)
    run.records_landed = sum(e.record_count for e in entries)
    if last.next_page_lost:
        reason = f"the token of page {last.page + 1} was lost in a crash"
    elif last.next_page_token is None:  # every page landed; the crash came before completion
        run.runs = [landing]
        return _finish(landing, run, params)
    else:
        try:
            return _land_pages(landing, api, params, last.next_page_token, last.page + 1,
                               run, on_progress, settings.ctgov_max_records,
                               seen=_landed_ids(landing), counted=run.records_landed)
        except SourceError as exc:
            if exc.status not in TOKEN_REFUSED or landing.entries()[-1] != last:
                raise
            reason = (f"the registry refused the stored resume token of page {last.page + 1} "
                      f"(HTTP {exc.status})")
    return _restart(settings, landing, api, topic, fingerprint, run, on_progress, params,
                    (fresh_since, fresh_params), reason)


def _restart(settings: Settings, landing: LandingRun, api: PoliteClient, topic: Topic,
             fingerprint: str, run: SourceRun, on_progress: ProgressFn | None,
             params: dict[str, Any], fresh: tuple[date | None, dict[str, Any]],
             reason: str) -> SourceRun:
    """Page again from page one; keep the landed pages only if they answer the same query."""
    landed = len(landing.entries())
    fresh_since, fresh_params = fresh
    if params == fresh_params:
        run.warnings.append(
            f"ClinicalTrials.gov: {reason}, so the search restarted from page one; the "
            f"{landed} page(s) landed before are kept (same query), and a study landed twice is "
            "loaded once, in its newest version")
        return _land_pages(landing, api, params, None, landed + 1, run, on_progress,
                           settings.ctgov_max_records)
    landing.abandon(f"{reason}; its query is no longer the one a fresh search sends")
    run.warnings.append(
        f"ClinicalTrials.gov: {reason}, so the search restarted from page one in a new run; "
        f"the {landed} page(s) of run {landing.run_id} answered another query and are not loaded")
    run.pages_landed = run.records_landed = 0
    run.resumed_from_page = None
    run.ledger["since_date"] = fresh_since
    new_landing = _start_landing(settings, topic, fingerprint, run, fresh_params)
    return _land_pages(new_landing, api, fresh_params, None, 1, run, on_progress,
                       settings.ctgov_max_records)


def _start_landing(settings: Settings, topic: Topic, fingerprint: str, run: SourceRun,
                   params: dict[str, Any]) -> LandingRun:
    landing = LandingRun(settings.raw_dir, SOURCE, new_run_id())
    since = run.ledger.get("since_date")
    landing.start({
        "run_id": landing.run_id, "source": SOURCE, "mode": run.mode,
        "fingerprint": fingerprint, "topic": topic.name, "topic_version": topic.version,
        "params": params, "since": since.isoformat() if since else None,
        "api_version": run.ledger["api_version"], "data_timestamp": run.ledger["data_timestamp"],
        "started_at": run.started_at.isoformat(),
    })
    return landing


def _landed_ids(landing: LandingRun) -> set[str]:
    """Record keys of the pages a run landed (a resumed search counts them as seen)."""
    return {client.record_key(line) for entry in landing.entries()
            for line in landing.iter_lines(entry)}


def _land_pages(landing: LandingRun, api: PoliteClient, params: dict[str, Any],
                start_token: str | None, start_page: int, run: SourceRun,
                on_progress: ProgressFn | None, max_records: int,
                seen: set[str] | None = None, counted: int = 0) -> SourceRun:
    """Land the pages of one paging; ``seen`` and ``counted`` are what an interrupted paging
    of the same search already landed (record keys, records)."""
    run.runs = [landing]
    guard = client.PagingGuard(max_records=max_records, seen=seen or set(), records=counted)
    api.resumes = True  # from here on, a failure keeps what landed and the next run resumes
    try:
        for page in client.iter_study_pages(
            api, params, start_token=start_token, start_number=start_page, guard=guard
        ):
            landing.land_records(
                (orjson.dumps(study) for study in page.studies),
                page=page.number,
                query=params,
                fetched_at=utc_now(),
                page_token=page.token_sent,
                next_page_token=page.next_token,
            )
            run.pages_landed += 1
            run.records_landed += len(page.studies)
            if on_progress:
                on_progress(len(page.studies), page.total_count)
    finally:
        api.resumes = False
    if guard.stopped:
        run.warnings.append(f"ClinicalTrials.gov: {guard.stopped}")
    return _finish(landing, run, params)


def _extract_bulk(settings: Settings, api: PoliteClient, topic: Topic, fingerprint: str,
                  run: SourceRun, on_progress: ProgressFn | None) -> SourceRun:
    landing = find_resumable_run(settings.raw_dir, SOURCE, fingerprint)
    if landing is None:
        landing = LandingRun(settings.raw_dir, SOURCE, new_run_id())
        landing.start({
            "run_id": landing.run_id, "source": SOURCE, "mode": "bulk",
            "fingerprint": fingerprint, "topic": topic.name, "topic_version": topic.version,
            "params": {"format": "json.zip"}, "api_version": run.ledger["api_version"],
            "data_timestamp": run.ledger["data_timestamp"],
            "started_at": run.started_at.isoformat(),
        })
    run.runs = [landing]
    archive = settings.build_dir / "downloads" / f"ctgov-{landing.run_id}.json.zip"
    if not archive.exists():
        client.download_archive(api, archive)
    try:
        land_archive(landing, archive, run, on_progress)
    except SourceError:
        archive.unlink(missing_ok=True)  # a damaged download is fetched again next run
        raise
    archive.unlink(missing_ok=True)
    return _finish(landing, run, {"format": "json.zip"})


def land_archive(landing: LandingRun, archive: Path, run: SourceRun,
                 on_progress: ProgressFn | None = None,
                 chunk_records: int = ARCHIVE_CHUNK_RECORDS) -> None:
    """Stream the archive's study files into JSON-lines chunks; resumes after landed chunks."""
    entries = landing.entries()
    already = sum(e.record_count for e in entries)
    page = (entries[-1].page + 1) if entries else 1
    run.pages_landed = len(entries)
    run.records_landed = already
    studies = islice(client.iter_archive_studies(archive), already, None)
    query = {"format": "json.zip", "archive": archive.name}
    while True:
        chunk = list(islice(studies, chunk_records))
        if not chunk:
            break
        landing.land_records((_compact(body) for _, body in chunk), page=page, query=query,
                             fetched_at=utc_now())
        run.pages_landed += 1
        run.records_landed += len(chunk)
        if on_progress:
            on_progress(len(chunk), None)
        page += 1


def _compact(body: bytes) -> bytes:
    """One study per line: re-serialise only when the file is pretty-printed."""
    if b"\n" not in body.strip():
        return body.strip()
    try:
        return orjson.dumps(orjson.loads(body))
    except orjson.JSONDecodeError:
        # keep the bytes (newlines folded) so the loader rejects it with file and line
        return b" ".join(body.split(b"\n"))


def _finish(landing: LandingRun, run: SourceRun, params: dict[str, Any]) -> SourceRun:
    run.ledger["query"] = params
    landing.complete({"run_id": landing.run_id, "pages": run.pages_landed,
                      "records": run.records_landed, "finished_at": utc_now().isoformat()})
    return run


@contextmanager
def fetch_by_id(settings: Settings, mode: str) -> Iterator[Fetch | None]:
    """``GET /studies/{nctId}``, live or from the snapshot (None: no snapshot to ask)."""
    if mode != "live" and not (settings.snapshot_path / SOURCE).is_dir():
        yield None
        return
    with client.make_client(settings, mode) as api:
        yield lambda nct_id: client.fetch_study(api, nct_id)


OVERALL_STATUSES = [
    "ACTIVE_NOT_RECRUITING", "COMPLETED", "ENROLLING_BY_INVITATION", "NOT_YET_RECRUITING",
    "RECRUITING", "SUSPENDED", "TERMINATED", "WITHDRAWN", "AVAILABLE", "NO_LONGER_AVAILABLE",
    "TEMPORARILY_NOT_AVAILABLE", "APPROVED_FOR_MARKETING", "WITHHELD", "UNKNOWN",
]
STUDY_TYPES = ["INTERVENTIONAL", "OBSERVATIONAL", "EXPANDED_ACCESS"]

GATE_CHECKS = (
    Check(
        "raw_ctgov_studies",
        "raw",
        """select nct_id, last_update_post_date,
                  payload->>'$.protocolSection.statusModule.overallStatus' as overall_status,
                  payload->>'$.protocolSection.designModule.studyType' as study_type,
                  payload->>'$.protocolSection.statusModule.startDateStruct.date' as start_date_text,
                  payload->>'$.protocolSection.statusModule.completionDateStruct.date' as completion_date_text
           from raw.ctgov_studies where list_contains($run_ids, run_id)""",
        (
            Expect("ExpectColumnValuesToNotBeNull", {"column": "nct_id"}),
            Expect("ExpectColumnValuesToMatchRegex", {"column": "nct_id", "regex": r"^NCT\d{8}$"}),
            Expect("ExpectColumnValuesToBeUnique", {"column": "nct_id"}),
            Expect("ExpectColumnValuesToBeInSet",
                   {"column": "overall_status", "value_set": OVERALL_STATUSES}),
            Expect("ExpectColumnValuesToBeInSet", {"column": "study_type", "value_set": STUDY_TYPES}),
            Expect("ExpectColumnValuesToMatchRegex",
                   {"column": "start_date_text", "regex": PARTIAL_DATE}),
            Expect("ExpectColumnValuesToMatchRegex",
                   {"column": "completion_date_text", "regex": PARTIAL_DATE}),
            Expect("ExpectColumnValuesToNotBeNull", {"column": "last_update_post_date",
                                                     "mostly": 0.5}, WARNING),
        ),
        SOURCE,
    ),
    Check(
        "raw_ctgov_row_count",
        "raw",
        """with runs as (  -- searches only: fetches by id (referential closure) are not compared
               select run_id, records_loaded + records_rejected as records, finished_at
               from raw.ingest_runs
               where source = 'ctgov' and status = 'loaded' and mode <> 'by_id'
           ),
           current_run as (
               select * from runs where list_contains($run_ids, run_id)
               order by finished_at desc limit 1
           ),
           previous_run as (
               select * from runs where not list_contains($run_ids, run_id)
               order by finished_at desc limit 1
           )
           select current_run.records, previous_run.records as previous_records,
                  current_run.records::double / nullif(previous_run.records, 0)
                    as ratio_to_previous
           from current_run left join previous_run on true""",
        (Expect("ExpectColumnValuesToBeBetween",
                {"column": "ratio_to_previous", "min_value": 0.5, "max_value": 2.0}, WARNING),),
        SOURCE,
    ),
)

DDL = """
create table if not exists raw.ctgov_studies (
    nct_id                varchar   not null,
    last_update_post_date date,
    payload               json      not null,
    run_id                varchar   not null,
    fetched_at            timestamptz not null,
    source_file           varchar   not null,
    source_line           integer   not null,
    payload_md5           varchar   not null
);
"""

RESOURCE = Resource(
    name=SOURCE,
    table="ctgov_studies",
    ddl=DDL,
    primary_key=("nct_id",),
    write_disposition="content_hash",
    extract=extract,
    parse_line=check_study_line,
    cursor=CURSOR,
    fetch_by_id=fetch_by_id,
    fetches_registry="ClinicalTrials.gov",
    gate_checks=GATE_CHECKS,
    version_column="last_update_post_date",
    same_key_in_one_file="rejected",
    record_id_field="nctId",
    notes_say="date(s) name no real day and are NULL (their text is kept)",
)
