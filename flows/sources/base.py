"""What a source package declares, and the one record of a source's run.

In the spirit of dlt's resources (``@dlt.resource(primary_key=..., write_disposition=...)`` with
an incremental cursor): each package under ``flows/sources/<name>/`` exports ``RESOURCE``, a
:class:`Resource` naming its raw table and DDL, its primary key, write disposition, incremental
cursor, fetch by id and raw-gate checks, and the functions that extract (fetch and land) and
parse (check) its records. The raw loader (:mod:`flows.raw_loader`) does the rest, the same way
for every resource. One :class:`SourceRun` carries a source through a refresh: what its extract
landed, what the loader made of it, and how it ended.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from flows.checks import Check
from flows.errors import BetacellError
from flows.landing import LandingRun, utc_now
from flows.seeds import read_seed
from flows.settings import Settings
from flows.sources.topic import Topic

# content_hash: a record is added unless a row with its key and payload hash is there already
#   (within one run, the newest version of a key is kept); append: every accepted record of a
#   run is added (staging picks the newest per key); versioned_sheet: a whole sheet is a version
#   (accepted whole or rejected whole; the previous accepted version stays in effect)
WriteDisposition = Literal["content_hash", "append", "versioned_sheet"]
# the same key twice in one landed file: rejected (the second), rejected when the two differ
# (an identical copy is dropped), or left to the newest-version rule of content_hash
SameKeyInFile = Literal["rejected", "rejected_if_different", "newest_wins"]

# What the raw loader says about an outcome sheet (one detail per sheet)
REJECTED_SHEET = frozenset({"rejected", "still_rejected"})  # the previous version stays in effect
UNCHANGED_SHEET = frozenset({"unchanged", "still_rejected"})  # nothing new to build from


class RecordProblem(ValueError):
    """One record cannot be loaded; the message says why (``record_id`` when it is known)."""

    def __init__(self, reason: str, record_id: str | None = None,
                 excerpt: str | None = None) -> None:
        super().__init__(reason)
        self.record_id = record_id
        self.excerpt = excerpt


@dataclass(frozen=True)
class Parsed:
    """A record that passed its source's record check, as columns of its raw table (the loader
    adds the provenance: run id, file, line, fetch time)."""

    key: str  # the primary key's value
    row: dict[str, Any]
    notes: tuple[str, ...] = ()  # odd values kept (e.g. a date naming no real day: NULL, text kept)


@dataclass(frozen=True)
class SheetProblem:
    file: str
    row: int  # the spreadsheet's own row number (the header is row 1; 0: the whole file)
    column: str
    problem: str
    severity: str = "error"  # error rejects the sheet; warning is reported

    def __str__(self) -> str:
        return f"{self.file} row {self.row} column {self.column}: {self.problem}"


class SheetRejected(BetacellError):
    """A sheet with any error is rejected whole; its previous accepted version stays."""

    def __init__(self, problems: list[SheetProblem], sheet_sha256: str | None = None) -> None:
        self.problems = problems
        self.sheet_sha256 = sheet_sha256  # the content rejected (None: it could not be read)
        errors = [p for p in problems if p.severity == "error"]
        listed = "; ".join(str(p) for p in errors[:12])
        more = f"; and {len(errors) - 12} more" if len(errors) > 12 else ""
        super().__init__(
            f"outcome sheet rejected with {len(errors)} problem(s); the previous accepted sheet "
            f"stays in effect. {listed}{more}"
        )

    @classmethod
    def of_file(cls, path: Path, problem: str) -> SheetRejected:
        """The whole file is refused (unreadable, too big, a copy of another sheet)."""
        return cls([SheetProblem(path.name, 0, "(file)", problem)])


@dataclass(frozen=True)
class SourceState:
    """What the published warehouse knows of one source."""

    watermark: date | None = None  # the newest value of its incremental cursor
    last_run: Mapping[str, Any] = field(default_factory=dict)  # its last loaded search's ledger
    loaded_runs: frozenset[str] = frozenset()  # its landing runs loaded (and published)


@dataclass(frozen=True)
class ExtractRequest:
    settings: Settings
    mode: str  # snapshot | live
    since: date | None = None
    full: bool = False
    state: SourceState = field(default_factory=SourceState)
    topic: Topic | None = None


@dataclass(frozen=True)
class Incremental:
    """An incremental cursor: the watermark is the newest ``field`` the published warehouse holds
    (a column of the raw table, or ``finished_at`` of the source's loaded runs when
    ``in_ledger``); the next run asks from the watermark minus an overlap (a setting)."""

    field: str
    in_ledger: bool = False
    overlap_setting: str = "ctgov_overlap_days"

    def since(self, request: ExtractRequest) -> date | None:
        """An explicit --since, else the watermark minus the overlap, else None (everything)."""
        if request.since is not None:
            return request.since
        if request.full or request.state.watermark is None:
            return None
        return request.state.watermark - timedelta(
            days=getattr(request.settings, self.overlap_setting))


@dataclass
class SourceRun:
    """One source in one refresh, from its extract to the run summary."""

    source: str
    mode: str
    runs: list[LandingRun] = field(default_factory=list)  # landed by this extract
    started_at: datetime = field(default_factory=utc_now)
    skipped_reason: str | None = None
    records_landed: int = 0
    pages_landed: int = 0
    resumed_from_page: int | None = None
    ledger: dict[str, Any] = field(default_factory=dict)  # more columns of raw.ingest_runs
    warnings: list[str] = field(default_factory=list)  # said in the run summary and the log
    load_filter: str | None = None  # a SQL predicate over parsed columns (a bulk topic filter)
    # what the raw loader made of it
    run_ids: list[str] = field(default_factory=list)
    records_loaded: int = 0
    records_rejected: int = 0
    records_superseded: int = 0  # a key twice in one run: the older version, not loaded
    rejects: list[dict[str, Any]] = field(default_factory=list)  # the first problems
    notes: list[str] = field(default_factory=list)  # odd values loaded (see Parsed.notes)
    details: list[dict[str, Any]] = field(default_factory=list)  # e.g. one per outcome sheet
    # how it ended: loaded | skipped | failed (failed: its last good data stay, stale)
    status: str = "landed"
    message: str | None = None
    alert_key: str | None = None  # what makes a failure the same news as before

    @property
    def run(self) -> LandingRun | None:
        """The run this extract landed (None: it landed nothing)."""
        return self.runs[-1] if self.runs else None

    @property
    def is_stale(self) -> bool:
        return self.status == "failed"

    def as_dict(self) -> dict[str, Any]:
        """The run summary's view (no landing runs, the first rejects and notes)."""
        return {"source": self.source, "status": self.status,
                "records_landed": self.records_landed, "records_loaded": self.records_loaded,
                "records_rejected": self.records_rejected,
                "records_superseded": self.records_superseded, "run_ids": list(self.run_ids),
                "message": self.message, "rejects": self.rejects[:5],
                "details": [dict(d) for d in self.details], "mode": self.mode,
                "pages_landed": self.pages_landed, "resumed_from_page": self.resumed_from_page,
                "impossible_dates": len(self.notes), "alert_key": self.alert_key}


Fetch = Callable[[str], dict[str, Any] | None]  # an id -> its record, None when unknown


@dataclass(frozen=True)
class Resource:
    """One source's raw table and how it is filled."""

    name: str
    table: str
    ddl: str  # create table if not exists ... (every raw table of the source)
    primary_key: tuple[str, ...]  # the columns holding the record's key
    write_disposition: WriteDisposition
    extract: Callable[[ExtractRequest], SourceRun]
    parse_line: Callable[[bytes], Parsed] | None = None  # one landed JSON line -> its record
    parse_document: Callable[[bytes, str], Iterator[Parsed | RecordProblem]] | None = None
    parse_sheet: Callable[[Path], tuple[list[dict[str, Any]], list[SheetProblem]]] | None = None
    versions_table: str | None = None  # versioned_sheet: one row per sheet version
    cursor: Incremental | None = None
    live_only: bool = False  # nothing to replay offline
    fetch_by_id: Callable[[Settings, str], AbstractContextManager[Fetch | None]] | None = None
    fetches_registry: str | None = None  # the registry (seed registry_id_patterns) it fetches
    gate_checks: tuple[Check, ...] = ()
    migrations: tuple[str, ...] = ()  # columns added after the table first shipped
    position_column: str = "source_line"  # where in its landed file a record sits
    version_column: str | None = None  # the newer of two versions of a key in one run
    same_key_in_one_file: SameKeyInFile = "newest_wins"
    record_id_field: str = "id"  # the key as the source names it (in messages)
    limit_reject_share: bool = True  # BETACELL_MAX_REJECT_SHARE; off: each file stands alone
    notes_say: str = "value(s) are odd"  # how the run summary names the notes of a run

    @property
    def tables(self) -> tuple[str, ...]:
        return (self.table,) + ((self.versions_table,) if self.versions_table else ())

    @property
    def label(self) -> str:
        return _seed_row(self.name)["label"]

    @property
    def stage(self) -> str:
        return _seed_row(self.name)["stage"]


def _seed_row(name: str) -> dict[str, str]:
    """Labels and stages of the sources: the dbt seed ``sources`` is their one home."""
    return next(row for row in read_seed("sources") if row["source"] == name)


def skipped(request: ExtractRequest, source: str, reason: str, **ledger: Any) -> SourceRun:
    """A source run that lands nothing, and why."""
    return SourceRun(source, request.mode, skipped_reason=reason, ledger=ledger)
