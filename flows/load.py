"""Landed raw files -> DuckDB ``raw`` schema, one transaction per run.

Every line is checked before it is loaded; a bad line becomes a row of ``raw.rejected_records``
naming the file, line, id and problem. Every module of the API's study structure is optional: a
record is rejected only when it lacks what the loader needs (a valid ``nctId``) or a field has the
wrong type. If the rejected share of a run exceeds ``max_reject_share`` the transaction is rolled
back: nothing of that run is loaded, and the error lists the first problems. Loading the same run
twice is a no-op; loading the same study content twice (another run) adds no row, because rows
are keyed by ``(nct_id, md5(payload))``. A study that comes twice in one run with different
content (the registry updated it while the search paged) is loaded once, in its newest version
(by ``lastUpdatePostDate``, then page order); the other is recorded as superseded. A date that
has the right shape but is not a calendar date ("2020-13-45") is kept as text, counted, and
becomes NULL in staging.
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import duckdb
import orjson
import polars as pl

from flows.db import ensure_raw_schema
from flows.errors import LoadRejected
from flows.landing import LandingRun, ManifestEntry, sha256_file, utc_now
from flows.sources.topic import Topic

NCT_ID = re.compile(r"^NCT\d{8}$")
PARTIAL_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
EXCERPT_CHARS = 300

# (path into the study, expected Python type(s), description) checked on every record.
TYPE_RULES: tuple[tuple[tuple[str, ...], tuple[type, ...], str], ...] = (
    (("protocolSection", "designModule", "enrollmentInfo", "count"), (int,), "integer"),
    (("protocolSection", "designModule", "phases"), (list,), "list"),
    (("protocolSection", "conditionsModule", "conditions"), (list,), "list"),
    (("protocolSection", "armsInterventionsModule", "interventions"), (list,), "list"),
    (("protocolSection", "contactsLocationsModule", "locations"), (list,), "list"),
    (("protocolSection", "statusModule", "overallStatus"), (str,), "string"),
    (("hasResults",), (bool,), "boolean"),
)
DATE_FIELDS = (
    "startDateStruct",
    "primaryCompletionDateStruct",
    "completionDateStruct",
    "studyFirstPostDateStruct",
    "lastUpdatePostDateStruct",
    "resultsFirstPostDateStruct",
)
DATE_PATHS = tuple((name, "date") for name in DATE_FIELDS) + (("statusVerifiedDate",),)


class RecordProblem(ValueError):
    """One record cannot be loaded; the message says why."""


@dataclass(frozen=True)
class CheckedStudy:
    nct_id: str
    last_update_post_date: str | None
    payload: str
    conditions_text: str  # titles, conditions, keywords (lower case): bulk topic filter input
    interventions_text: str  # titles, interventions, arms (lower case)
    impossible_dates: tuple[str, ...] = ()  # "statusModule.startDateStruct.date '2020-13-45'"


def as_object(value: Any) -> dict[str, Any]:
    """A module or struct of the study: any module may be absent, null or not an object."""
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def is_calendar_date(text: str) -> bool:
    """Whether a yyyy[-MM[-dd]] string names a real year, month or day."""
    parts = text.split("-")
    try:
        if len(parts) == 3:
            date.fromisoformat(text)
        elif len(parts) == 2:
            date(int(parts[0]), int(parts[1]), 1)
        else:
            date(int(parts[0]), 1, 1)
    except ValueError:
        return False
    return True


def _texts(values: Any) -> list[str]:
    if isinstance(values, str):
        return [values]
    if isinstance(values, list):
        return [v for v in values if isinstance(v, str)]
    return []


def topic_texts(study: dict[str, Any]) -> tuple[str, str]:
    """The text the bulk topic filter matches against, extracted from the parsed record."""
    protocol = as_object(study.get("protocolSection"))
    ident = as_object(protocol.get("identificationModule"))
    titles = _texts([ident.get("briefTitle"), ident.get("officialTitle"), ident.get("acronym")])
    cond = as_object(protocol.get("conditionsModule"))
    conditions = titles + _texts(cond.get("conditions")) + _texts(cond.get("keywords"))
    arms = as_object(protocol.get("armsInterventionsModule"))
    interventions = list(titles)
    for item in _list(arms.get("interventions")) + _list(arms.get("armGroups")):
        if isinstance(item, dict):
            interventions += _texts(
                [item.get("name"), item.get("label"), item.get("description")]
            )
            interventions += _texts(item.get("otherNames")) + _texts(item.get("interventionNames"))
    return " | ".join(conditions).lower(), " | ".join(interventions).lower()


def _lookup(obj: Any, path: tuple[str, ...]) -> tuple[bool, Any]:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return False, None
        obj = obj[key]
    return True, obj


def check_study_line(line: bytes) -> CheckedStudy:
    """Parse and check one landed line; raise :class:`RecordProblem` with a precise reason."""
    try:
        study = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise RecordProblem(f"malformed JSON ({exc})") from None
    if not isinstance(study, dict):
        raise RecordProblem(f"record is a JSON {type(study).__name__}, expected an object")
    found, nct_id = _lookup(study, ("protocolSection", "identificationModule", "nctId"))
    if not found or nct_id in (None, ""):
        raise RecordProblem("record has no protocolSection.identificationModule.nctId")
    if not isinstance(nct_id, str) or not NCT_ID.match(nct_id):
        raise RecordProblem(f"nctId {nct_id!r} does not match ^NCT\\d{{8}}$")
    for path, types, expected in TYPE_RULES:
        found, value = _lookup(study, path)
        # bool is an int subclass: enrollment count true/false is a type error too
        if (
            found
            and value is not None
            and (not isinstance(value, types) or (int in types and isinstance(value, bool)))
        ):
            raise RecordProblem(
                f"{nct_id}: {'.'.join(path)} is {type(value).__name__} ({value!r:.40}), "
                f"expected {expected}"
            )
    status = as_object(as_object(study.get("protocolSection")).get("statusModule"))
    impossible = []
    for path in DATE_PATHS:
        found, value = _lookup(status, path)
        if not found or value is None:
            continue
        where = "statusModule." + ".".join(path)
        if not (isinstance(value, str) and PARTIAL_DATE.match(value)):
            raise RecordProblem(f"{nct_id}: {where} is {value!r:.40}, expected yyyy[-MM[-dd]]")
        if not is_calendar_date(value):
            impossible.append(f"{where} {value!r}")
    last_update = as_object(status.get("lastUpdatePostDateStruct")).get("date")
    if not (isinstance(last_update, str) and is_calendar_date(last_update)):
        last_update = None
    conditions_text, interventions_text = topic_texts(study)
    return CheckedStudy(
        nct_id, last_update, line.decode("utf-8"), conditions_text, interventions_text,
        tuple(impossible),
    )


@dataclass
class LoadResult:
    run_id: str
    records_seen: int = 0
    records_loaded: int = 0
    records_rejected: int = 0
    records_superseded: int = 0
    skipped: bool = False
    rejects: list[dict[str, Any]] = field(default_factory=list)
    impossible_dates: list[str] = field(default_factory=list)  # "NCT…: statusModule.… '…'"


def topic_filter_sql(topic: Topic) -> str:
    """SQL predicate applying the topic in bulk mode (the whole-registry archive).

    It matches the batch columns ``conditions_text`` and ``interventions_text`` (extracted from
    the record while it is checked), so the filter costs no second JSON parse.
    """

    def any_of(patterns: tuple[str, ...]) -> str:
        escaped = [re.sub(r"([.^$*+?()\[\]{}|\\])", r"\\\1", p) for p in patterns]
        return "'" + "|".join(escaped).replace("'", "''") + "'"

    clauses = []
    if topic.bulk_condition_patterns:
        clauses.append(f"regexp_matches(conditions_text, {any_of(topic.bulk_condition_patterns)})")
    if topic.bulk_intervention_patterns:
        clauses.append(
            f"regexp_matches(interventions_text, {any_of(topic.bulk_intervention_patterns)})"
        )
    return " and ".join(clauses) if clauses else "true"


def _iter_checked(
    landing: LandingRun, entry: ManifestEntry, result: LoadResult
) -> Iterator[tuple[int, CheckedStudy]]:
    seen_in_file: dict[str, int] = {}
    for line_no, line in enumerate(landing.iter_lines(entry), start=1):
        result.records_seen += 1
        record_id = None
        try:
            if not line.strip():
                raise RecordProblem("empty line")
            checked = check_study_line(line)
            record_id = checked.nct_id
            if checked.nct_id in seen_in_file:
                raise RecordProblem(
                    f"{checked.nct_id} appears twice in one page (first at line "
                    f"{seen_in_file[checked.nct_id]})"
                )
            seen_in_file[checked.nct_id] = line_no
            result.impossible_dates += [f"{checked.nct_id}: {d}" for d in checked.impossible_dates]
        except (RecordProblem, UnicodeDecodeError) as problem:
            result.records_rejected += 1
            result.rejects.append(
                {
                    "source_file": f"{landing.source}/{landing.run_id}/{entry.file}",
                    "source_line": line_no,
                    "record_id": record_id,
                    "reason": str(problem),
                    "record_excerpt": line[:EXCERPT_CHARS].decode("utf-8", "replace"),
                }
            )
            continue
        yield line_no, checked


def load_ctgov_run(
    con: duckdb.DuckDBPyConnection,
    landing: LandingRun,
    *,
    mode: str,
    max_reject_share: float,
    batch_records: int = 5000,
    topic: Topic | None = None,
    ledger: dict[str, Any] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> LoadResult:
    """Load one landed run into ``raw.ctgov_studies`` atomically; return what happened."""
    ensure_raw_schema(con)
    result = LoadResult(run_id=landing.run_id)
    already = con.execute(
        "select count(*) from raw.ingest_runs where run_id = ? and status = 'loaded'",
        [landing.run_id],
    ).fetchone()[0]
    if already:
        result.skipped = True
        return result

    topic_predicate = topic_filter_sql(topic) if (mode == "bulk" and topic) else "true"
    insert_sql = f"""
        insert into raw.ctgov_studies
        select b.nct_id, try_cast(b.last_update_post_date as date), b.payload::json,
               $run_id, b.fetched_at::timestamptz, b.source_file, b.source_line, md5(b.payload)
        from incoming_batch as b
        where not exists (
            select 1 from raw.ctgov_studies as r
            where r.nct_id = b.nct_id and r.payload_md5 = md5(b.payload)
        )
        and ({topic_predicate})
    """

    entries = landing.entries()
    batches: queue.Queue[Any] = queue.Queue(maxsize=2)
    stop = threading.Event()
    # Reading, decompressing and checking lines (Python) overlaps with inserting (DuckDB, which
    # releases the GIL): the producer thread prepares the next batch while this one is written.
    producer = threading.Thread(
        target=_produce_batches,
        args=(landing, entries, result, batch_records, batches, stop),
        name="betacell-load-producer",
        daemon=True,
    )
    con.execute("begin transaction")
    try:
        producer.start()
        while True:
            item = batches.get()
            if item is _DONE:
                break
            if isinstance(item, BaseException):
                raise item
            con.register("incoming_batch", item)
            try:
                (inserted,) = con.execute(insert_sql, {"run_id": landing.run_id}).fetchone()
            finally:
                con.unregister("incoming_batch")
            result.records_loaded += int(inserted)
            if on_progress:
                on_progress(item.height)

        share = result.records_rejected / result.records_seen if result.records_seen else 0.0
        if share > max_reject_share:
            raise LoadRejected(_too_many_rejects_message(landing, result, share, max_reject_share))
        superseded, removed = _keep_newest_versions(con, landing)
        result.records_superseded = len(superseded)
        result.records_loaded -= removed
        if result.rejects or superseded:
            rejected_at = utc_now()
            frame = pl.DataFrame(result.rejects + superseded, schema=REJECT_SCHEMA).with_columns(
                pl.lit(landing.source).alias("source"),
                pl.lit(landing.run_id).alias("run_id"),
                pl.lit(rejected_at).alias("rejected_at"),
            )
            con.register("rejects_frame", frame)
            con.execute(
                """insert into raw.rejected_records
                   select source, run_id, source_file, source_line, record_id, reason,
                          record_excerpt, rejected_at from rejects_frame"""
            )
            con.unregister("rejects_frame")
        record_ledger(
            con,
            {
                **(ledger or {}),
                "run_id": landing.run_id,
                "source": landing.source,
                "mode": mode,
                "status": "loaded",
                "pages": len(entries),
                "records_landed": result.records_seen,
                "records_loaded": result.records_loaded,
                "records_rejected": result.records_rejected,
                "watermark": _max_watermark(con, landing.run_id),
            },
        )
        con.execute("commit")
    except BaseException:
        stop.set()
        con.execute("rollback")
        raise
    finally:
        stop.set()
        producer.join(timeout=30)
    return result


_DONE = object()
REJECT_SCHEMA = {"source_file": pl.String, "source_line": pl.Int32, "record_id": pl.String,
                 "reason": pl.String, "record_excerpt": pl.String}


def _keep_newest_versions(con: duckdb.DuckDBPyConnection, landing: LandingRun
                          ) -> tuple[list[dict[str, Any]], int]:
    """One row per study in this run: the newest version (``lastUpdatePostDate``, then page
    and line order) stays; the others are deleted. Returns the superseded versions whose
    content differed (as reject rows naming the version kept) and how many rows were deleted."""
    rows = con.execute(
        """with ranked as (
               select nct_id, source_file, source_line, payload_md5, last_update_post_date,
                      left(payload::varchar, $chars) as excerpt,
                      row_number() over newest as rank,
                      first_value(source_file) over newest as kept_file,
                      first_value(source_line) over newest as kept_line,
                      first_value(payload_md5) over newest as kept_md5,
                      first_value(last_update_post_date) over newest as kept_date
               from raw.ctgov_studies
               where run_id = $run_id
               window newest as (partition by nct_id order by last_update_post_date desc
                                 nulls last, source_file desc, source_line desc)
           )
           select nct_id, source_file, source_line, payload_md5 = kept_md5, excerpt,
                  last_update_post_date, kept_file, kept_line, kept_date
           from ranked where rank > 1""",
        {"run_id": landing.run_id, "chars": EXCERPT_CHARS}).fetchall()
    if not rows:
        return [], 0
    con.execute(
        """delete from raw.ctgov_studies as r using (
               select nct_id, source_file, source_line from (
                   select nct_id, source_file, source_line, row_number() over (
                       partition by nct_id order by last_update_post_date desc nulls last,
                       source_file desc, source_line desc) as rank
                   from raw.ctgov_studies where run_id = $run_id) where rank > 1) as d
           where r.run_id = $run_id and r.nct_id = d.nct_id and r.source_file = d.source_file
             and r.source_line = d.source_line""", {"run_id": landing.run_id})
    superseded = [
        {"source_file": source_file, "source_line": line, "record_id": nct_id,
         "reason": (f"superseded: {nct_id} came again in this run with other content at "
                    f"{kept_file} line {kept_line} (last updated {kept_date or 'unknown'}, this "
                    f"version {updated or 'unknown'}); the newest version is loaded"),
         "record_excerpt": excerpt}
        for nct_id, source_file, line, same, excerpt, updated, kept_file, kept_line, kept_date
        in rows if not same]
    return superseded, len(rows)


def _produce_batches(
    landing: LandingRun,
    entries: list[ManifestEntry],
    result: LoadResult,
    batch_records: int,
    out: queue.Queue[Any],
    stop: threading.Event,
) -> None:
    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    try:
        for entry in entries:
            actual = sha256_file(landing.dir / entry.file)
            if actual != entry.sha256:
                raise LoadRejected(
                    f"{landing.dir / entry.file} does not match its manifest checksum "
                    f"(manifest {entry.sha256[:12]}…, file {actual[:12]}…); raw files must not "
                    "change after landing — nothing from this run was loaded"
                )
            source_file = f"{landing.source}/{landing.run_id}/{entry.file}"
            batch: list[tuple[int, CheckedStudy]] = []
            for item in _iter_checked(landing, entry, result):
                batch.append(item)
                if len(batch) >= batch_records:
                    if not put(_batch_frame(batch, source_file, entry.fetched_at)):
                        return
                    batch = []
            if batch and not put(_batch_frame(batch, source_file, entry.fetched_at)):
                return
        put(_DONE)
    except BaseException as exc:  # handed to the consumer, which raises it
        put(exc)


def _batch_frame(
    batch: list[tuple[int, CheckedStudy]], source_file: str, fetched_at: str
) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "nct_id": [c.nct_id for _, c in batch],
            "last_update_post_date": [c.last_update_post_date for _, c in batch],
            "payload": [c.payload for _, c in batch],
            "source_file": [source_file] * len(batch),
            "source_line": [n for n, _ in batch],
            "fetched_at": [fetched_at] * len(batch),
            "conditions_text": [c.conditions_text for _, c in batch],
            "interventions_text": [c.interventions_text for _, c in batch],
        },
        schema={
            "nct_id": pl.String,
            "last_update_post_date": pl.String,
            "payload": pl.String,
            "source_file": pl.String,
            "source_line": pl.Int32,
            "fetched_at": pl.String,
            "conditions_text": pl.String,
            "interventions_text": pl.String,
        },
    )


def _max_watermark(con: duckdb.DuckDBPyConnection, run_id: str) -> date | None:
    row = con.execute(
        "select max(last_update_post_date) from raw.ctgov_studies where run_id = ?", [run_id]
    ).fetchone()
    return row[0] if row else None


def _too_many_rejects_message(
    landing: LandingRun, result: LoadResult, share: float, limit: float
) -> str:
    sample = "; ".join(
        f"{r['source_file']} line {r['source_line']}"
        + (f" ({r['record_id']})" if r["record_id"] else "")
        + f": {r['reason']}"
        for r in result.rejects[:5]
    )
    more = len(result.rejects) - 5
    return (
        f"run {landing.run_id} rejected {result.records_rejected} of {result.records_seen} "
        f"records ({share:.1%}, limit {limit:.1%}); nothing from this run was loaded. "
        f"First problems: {sample}" + (f"; and {more} more" if more > 0 else "")
    )


def record_ledger(con: duckdb.DuckDBPyConnection, row: dict[str, Any]) -> None:
    """Append one row to ``raw.ingest_runs`` (inside the caller's transaction, if any)."""
    ensure_raw_schema(con)
    columns = [
        "run_id",
        "source",
        "mode",
        "status",
        "started_at",
        "finished_at",
        "topic_version",
        "topic_fingerprint",
        "query",
        "api_version",
        "data_timestamp",
        "since_date",
        "watermark",
        "pages",
        "records_landed",
        "records_loaded",
        "records_rejected",
        "message",
    ]
    values = dict(row)
    values.setdefault("started_at", utc_now())
    values.setdefault("finished_at", utc_now())
    if isinstance(values.get("query"), dict):
        values["query"] = orjson.dumps(values["query"]).decode()
    for key in ("started_at", "finished_at"):
        if isinstance(values.get(key), str):
            values[key] = datetime.fromisoformat(values[key])
    con.execute(
        f"insert into raw.ingest_runs ({', '.join(columns)}) "
        f"values ({', '.join('?' for _ in columns)})",
        [values.get(c) for c in columns],
    )
