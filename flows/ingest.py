"""Ingest ClinicalTrials.gov into the raw landing: topic search (incremental) or bulk archive.

The functions here are plain Python (Prefect tasks in :mod:`flows.refresh` wrap them), so they
are tested directly against local HTTP servers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import orjson

from flows.errors import SourceError
from flows.landing import LandingRun, find_resumable_run, new_run_id, utc_now
from flows.settings import Settings
from flows.sources import ctgov
from flows.sources.http import Limits, PoliteClient, RetryPolicy
from flows.sources.snapshot import CtgovSnapshotTransport
from flows.sources.topic import Topic, load_topic
from flows.state import PreviousState

SOURCE = "ctgov"
SNAPSHOT_BASE_URL = "http://snapshot.invalid/api/v2"
ARCHIVE_CHUNK_RECORDS = 20_000

ProgressFn = Callable[[int, int | None], None]  # (records just landed, total if known)


@dataclass
class IngestOutcome:
    mode: str  # "snapshot", "api" or "bulk"
    run: LandingRun | None
    api_version: str | None = None
    data_timestamp: str | None = None
    since: date | None = None
    query: dict[str, Any] = field(default_factory=dict)
    pages_landed: int = 0
    records_landed: int = 0
    resumed_from_page: int | None = None
    skipped_reason: str | None = None
    started_at: Any = field(default_factory=utc_now)
    warnings: list[str] = field(default_factory=list)  # said in the run summary


def make_ctgov_client(settings: Settings, source: str, *, bulk: bool = False) -> PoliteClient:
    retry = RetryPolicy(
        max_attempts=settings.http_max_attempts,
        initial_seconds=settings.http_backoff_initial_seconds,
        max_seconds=settings.http_backoff_max_seconds,
    )
    if source == "snapshot":
        return PoliteClient(
            SNAPSHOT_BASE_URL,
            source="ctgov-snapshot",
            requests_per_second=float("inf"),
            retry=retry,
            transport=CtgovSnapshotTransport(settings.snapshot_path),
        )
    if source != "live":
        raise ValueError(f"unknown source {source!r}: use 'snapshot' or 'live'")
    limits = Limits.from_settings(settings)
    if bulk:  # the whole-registry archive takes longer than a topic search
        limits = replace(limits, source_deadline_seconds=settings.bulk_deadline_seconds)
    return PoliteClient(
        settings.ctgov_base_url,
        source="ctgov",
        requests_per_second=settings.ctgov_requests_per_second,
        timeout=settings.http_timeout_seconds,
        retry=retry,
        limits=limits,
    )


def effective_since(
    explicit: date | None, full: bool, previous: PreviousState, overlap_days: int
) -> date | None:
    """The incremental window start: explicit --since, else watermark minus overlap, else None."""
    if explicit is not None:
        return explicit
    if full or previous.watermark is None:
        return None
    return previous.watermark - timedelta(days=overlap_days)


def _fingerprint(topic: Topic, mode: str) -> str:
    return hashlib.sha256(f"{topic.fingerprint}|{mode}".encode()).hexdigest()[:16]


def ingest_ctgov(
    settings: Settings,
    *,
    source: str = "snapshot",
    since: date | None = None,
    full: bool = False,
    previous: PreviousState | None = None,
    on_progress: ProgressFn | None = None,
    client: PoliteClient | None = None,
) -> IngestOutcome:
    previous = previous or PreviousState()
    topic = load_topic(settings.topic_file)
    mode = (
        "bulk" if (full and source == "live") else ("snapshot" if source == "snapshot" else "api")
    )
    own_client = client is None
    client = client or make_ctgov_client(settings, source, bulk=mode == "bulk")
    try:
        version = ctgov.fetch_version(client)
        outcome = IngestOutcome(
            mode=mode,
            run=None,
            api_version=version.get("apiVersion"),
            data_timestamp=version.get("dataTimestamp"),
        )
        topic_changed = (previous.topic_fingerprint is not None
                         and previous.topic_fingerprint != topic.fingerprint)
        unchanged = (
            previous.data_timestamp is not None
            and outcome.data_timestamp == previous.data_timestamp
            and not topic_changed
        )
        if topic_changed and since is None:
            # a new topic can match records of any age: search everything, not the window
            previous = PreviousState(data_timestamp=previous.data_timestamp)
        if unchanged and not full and since is None:
            outcome.skipped_reason = (
                f"source data unchanged since the last run (dataTimestamp "
                f"{outcome.data_timestamp}); nothing fetched"
            )
            return outcome
        fingerprint = _fingerprint(topic, mode)
        if mode == "bulk":
            return _ingest_bulk(settings, client, topic, fingerprint, outcome, on_progress)
        outcome.since = effective_since(since, full, previous, settings.ctgov_overlap_days)
        return _ingest_pages(settings, client, topic, fingerprint, outcome, on_progress)
    finally:
        if own_client:
            client.close()


# A resume token the registry refuses: tokens expire (HTTP 400 "Invalid pageToken").
TOKEN_REFUSED = frozenset({400, 404, 410})


def _ingest_pages(
    settings: Settings,
    client: PoliteClient,
    topic: Topic,
    fingerprint: str,
    outcome: IngestOutcome,
    on_progress: ProgressFn | None,
) -> IngestOutcome:
    """Page the topic search into a landing run, resuming an interrupted one where it stopped.

    A resumed run whose token the registry refuses (or whose last page lost its token in a
    crash) restarts the search from page one: its landed pages are kept when the run's query is
    the one a fresh search sends now (a study landed twice is loaded once, its newest version),
    otherwise the run is abandoned and a new one starts."""
    fresh_since = outcome.since
    fresh_params = ctgov.build_search_params(topic, fresh_since, settings.ctgov_page_size)
    run = find_resumable_run(settings.raw_dir, SOURCE, fingerprint, outcome.warnings)
    if run is None:
        run = _start_run(settings, topic, fingerprint, outcome, fresh_params)
        return _land_pages(run, client, fresh_params, None, 1, outcome, on_progress,
                           settings.ctgov_max_records)
    meta = run.meta()
    params = meta["params"]
    outcome.since = date.fromisoformat(meta["since"]) if meta.get("since") else None
    entries = run.entries()
    if not entries:
        return _land_pages(run, client, params, None, 1, outcome, on_progress,
                           settings.ctgov_max_records)
    last = entries[-1]
    outcome.resumed_from_page = last.page + 1
    outcome.pages_landed = len(entries)
    outcome.records_landed = sum(e.record_count for e in entries)
    if last.next_page_lost:
        reason = f"the token of page {last.page + 1} was lost in a crash"
    elif last.next_page_token is None:  # every page landed; the crash came before completion
        outcome.run = run
        return _finish(run, outcome, params)
    else:
        try:
            return _land_pages(run, client, params, last.next_page_token, last.page + 1,
                               outcome, on_progress, settings.ctgov_max_records,
                               seen=_landed_ids(run), counted=outcome.records_landed)
        except SourceError as exc:
            if exc.status not in TOKEN_REFUSED or run.entries()[-1] != last:
                raise
            reason = (f"the registry refused the stored resume token of page {last.page + 1} "
                      f"(HTTP {exc.status})")
    return _restart(settings, run, client, topic, fingerprint, outcome, on_progress, params,
                    (fresh_since, fresh_params), reason)


def _restart(settings: Settings, run: LandingRun, client: PoliteClient, topic: Topic,
             fingerprint: str, outcome: IngestOutcome, on_progress: ProgressFn | None,
             params: dict[str, Any], fresh: tuple[date | None, dict[str, Any]],
             reason: str) -> IngestOutcome:
    """Page again from page one; keep the landed pages only if they answer the same query."""
    landed = len(run.entries())
    fresh_since, fresh_params = fresh
    if params == fresh_params:
        outcome.warnings.append(
            f"ClinicalTrials.gov: {reason}, so the search restarted from page one; the "
            f"{landed} page(s) landed before are kept (same query), and a study landed twice is "
            "loaded once, in its newest version")
        return _land_pages(run, client, params, None, landed + 1, outcome, on_progress,
                           settings.ctgov_max_records)
    run.abandon(f"{reason}; its query is no longer the one a fresh search sends")
    outcome.warnings.append(
        f"ClinicalTrials.gov: {reason}, so the search restarted from page one in a new run; "
        f"the {landed} page(s) of run {run.run_id} answered another query and are not loaded")
    outcome.pages_landed = outcome.records_landed = 0
    outcome.resumed_from_page = None
    outcome.since = fresh_since
    new_run = _start_run(settings, topic, fingerprint, outcome, fresh_params)
    return _land_pages(new_run, client, fresh_params, None, 1, outcome, on_progress,
                       settings.ctgov_max_records)


def _start_run(settings: Settings, topic: Topic, fingerprint: str, outcome: IngestOutcome,
               params: dict[str, Any]) -> LandingRun:
    run = LandingRun(settings.raw_dir, SOURCE, new_run_id())
    run.start(
        {
            "run_id": run.run_id,
            "source": SOURCE,
            "mode": outcome.mode,
            "fingerprint": fingerprint,
            "topic": topic.name,
            "topic_version": topic.version,
            "params": params,
            "since": outcome.since.isoformat() if outcome.since else None,
            "api_version": outcome.api_version,
            "data_timestamp": outcome.data_timestamp,
            "started_at": outcome.started_at.isoformat(),
        }
    )
    return run


def _landed_ids(run: LandingRun) -> set[str]:
    """Record keys of the pages a run landed (a resumed search counts them as seen)."""
    return {ctgov.record_key(line) for entry in run.entries() for line in run.iter_lines(entry)}


def _land_pages(run: LandingRun, client: PoliteClient, params: dict[str, Any],
                start_token: str | None, start_page: int, outcome: IngestOutcome,
                on_progress: ProgressFn | None, max_records: int,
                seen: set[str] | None = None, counted: int = 0) -> IngestOutcome:
    """Land the pages of one paging; ``seen`` and ``counted`` are what an interrupted paging
    of the same search already landed (record keys, records)."""
    outcome.run = run
    guard = ctgov.PagingGuard(max_records=max_records, seen=seen or set(), records=counted)
    client.resumes = True  # from here on, a failure keeps what landed and the next run resumes
    try:
        for page in ctgov.iter_study_pages(
            client, params, start_token=start_token, start_number=start_page, guard=guard
        ):
            run.land_records(
                (ctgov.dumps_study(s) for s in page.studies),
                page=page.number,
                query=params,
                fetched_at=utc_now(),
                page_token=page.token_sent,
                next_page_token=page.next_token,
            )
            outcome.pages_landed += 1
            outcome.records_landed += len(page.studies)
            if on_progress:
                on_progress(len(page.studies), page.total_count)
    finally:
        client.resumes = False
    if guard.stopped:
        outcome.warnings.append(f"ClinicalTrials.gov: {guard.stopped}")
    return _finish(run, outcome, params)


def _ingest_bulk(
    settings: Settings,
    client: PoliteClient,
    topic: Topic,
    fingerprint: str,
    outcome: IngestOutcome,
    on_progress: ProgressFn | None,
) -> IngestOutcome:
    run = find_resumable_run(settings.raw_dir, SOURCE, fingerprint)
    if run is None:
        run = LandingRun(settings.raw_dir, SOURCE, new_run_id())
        run.start(
            {
                "run_id": run.run_id,
                "source": SOURCE,
                "mode": "bulk",
                "fingerprint": fingerprint,
                "topic": topic.name,
                "topic_version": topic.version,
                "params": {"format": "json.zip"},
                "api_version": outcome.api_version,
                "data_timestamp": outcome.data_timestamp,
                "started_at": outcome.started_at.isoformat(),
            }
        )
    outcome.run = run
    archive = settings.build_dir / "downloads" / f"ctgov-{run.run_id}.json.zip"
    if not archive.exists():
        ctgov.download_archive(client, archive)
    try:
        land_archive(run, archive, outcome, on_progress)
    except SourceError:
        archive.unlink(missing_ok=True)  # a damaged download is fetched again next run
        raise
    archive.unlink(missing_ok=True)
    return _finish(run, outcome, {"format": "json.zip"})


def land_archive(
    run: LandingRun,
    archive: Path,
    outcome: IngestOutcome,
    on_progress: ProgressFn | None = None,
    chunk_records: int = ARCHIVE_CHUNK_RECORDS,
) -> None:
    """Stream the archive's study files into JSON-lines chunks; resumes after landed chunks."""
    entries = run.entries()
    already = sum(e.record_count for e in entries)
    page = (entries[-1].page + 1) if entries else 1
    outcome.pages_landed = len(entries)
    outcome.records_landed = already
    studies = islice(ctgov.iter_archive_studies(archive), already, None)
    query = {"format": "json.zip", "archive": archive.name}
    while True:
        chunk = list(islice(studies, chunk_records))
        if not chunk:
            break
        run.land_records(
            (_compact(body) for _, body in chunk),
            page=page,
            query=query,
            fetched_at=utc_now(),
        )
        outcome.pages_landed += 1
        outcome.records_landed += len(chunk)
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


def _finish(run: LandingRun, outcome: IngestOutcome, params: dict[str, Any]) -> IngestOutcome:
    outcome.query = params
    run.complete(
        {
            "run_id": run.run_id,
            "pages": outcome.pages_landed,
            "records": outcome.records_landed,
            "finished_at": utc_now().isoformat(),
        }
    )
    return outcome
