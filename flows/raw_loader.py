"""One raw loader for every source: a source run's landed files -> its raw table.

What it does is declared by the source's :class:`~flows.sources.base.Resource`; how is the same
for all:

- **already loaded**: a landing run in the ledger as loaded is not loaded again; under the
  ``content_hash`` disposition a record whose key and payload hash are in the table adds no row
  (and within one run only the newest version of a key stays: the others are recorded as
  superseded); a ``versioned_sheet`` whose content is the version in effect is unchanged;
- **rejects**: every record goes through its source's record check; a bad one becomes a row of
  ``raw.rejected_records`` with file, line, id and reason, and when the rejected share of a run
  passes ``BETACELL_MAX_REJECT_SHARE`` nothing of it is loaded;
- **one transaction per source run**, so a crash or a refusal leaves nothing half loaded;
- **the ledger row** in ``raw.ingest_runs``.

Reading, decompressing and checking records (Python) overlaps with inserting (DuckDB, which
releases the GIL): a producer thread prepares the next batch while this one is written. A
producer of ready batches (e.g. parsed in parallel elsewhere) can feed :func:`insert_batches`.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson
import polars as pl

from flows import progress
from flows.db import ensure_raw_schema
from flows.errors import LoadRejected, SourceError
from flows.landing import LandingRun, ManifestEntry, sha256_file, utc_now
from flows.settings import Settings
from flows.sources.base import (
    REJECTED_SHEET,
    Parsed,
    RecordProblem,
    Resource,
    SheetProblem,
    SheetRejected,
    SourceRun,
)

EXCERPT_CHARS = 300
REJECT_SCHEMA = {"source_file": pl.String, "source_line": pl.Int32, "record_id": pl.String,
                 "reason": pl.String, "record_excerpt": pl.String}
LEDGER_COLUMNS = ("run_id", "source", "mode", "status", "started_at", "finished_at",
                  "topic_version", "topic_fingerprint", "query", "api_version", "data_timestamp",
                  "since_date", "watermark", "pages", "records_landed", "records_loaded",
                  "records_rejected", "message")


def load(con: duckdb.DuckDBPyConnection, settings: Settings, resource: Resource, run: SourceRun,
         *, on_progress: Callable[[int], None] | None = None) -> SourceRun:
    """Load what one source run landed, in one transaction; fills in ``run``'s load fields."""
    ensure_raw_schema(con)
    if resource.write_disposition == "versioned_sheet":
        return load_sheets(con, settings, resource, run)
    if not run.runs:
        if "status" in run.ledger:  # the source said why it landed nothing: on the ledger
            record_ledger(con, {**run.ledger, "run_id": f"skipped-{run.started_at:%Y%m%dT%H%M%SZ}",
                                "source": run.source, "mode": run.mode, "pages": 0,
                                "started_at": run.started_at, "records_landed": 0,
                                "records_loaded": 0, "records_rejected": 0,
                                "message": run.skipped_reason})
        return run
    label = f"Loading {resource.label} records"
    reporter = progress.reporter()
    reporter.start(label, run.records_landed or None)

    def advanced(records: int) -> None:
        reporter.advance(label, records)
        if on_progress:
            on_progress(records)

    con.execute("begin transaction")
    try:
        for landing in run.runs:
            if not _already_loaded(con, landing.run_id):
                _load_landing(con, settings, resource, run, landing, advanced)
            run.run_ids.append(landing.run_id)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    finally:
        reporter.finish(label)
    return run


def _already_loaded(con: duckdb.DuckDBPyConnection, run_id: str) -> bool:
    return bool(con.execute("select count(*) from raw.ingest_runs where run_id = ? and status "
                            "= 'loaded'", [run_id]).fetchone()[0])


@dataclass
class _Tally:
    """What one landing run's records came to, as the producer checks them."""

    seen: int = 0
    rejects: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _load_landing(con: duckdb.DuckDBPyConnection, settings: Settings, resource: Resource,
                  run: SourceRun, landing: LandingRun,
                  on_progress: Callable[[int], None]) -> None:
    tally = _Tally()
    entries = landing.entries()
    batches = _checked_batches(resource, landing, entries, tally, settings.load_batch_records)
    inserted = insert_batches(con, resource, batches, run.load_filter, on_progress)
    share = len(tally.rejects) / tally.seen if tally.seen else 0.0
    if resource.limit_reject_share and share > settings.max_reject_share:
        raise LoadRejected(_too_many_rejects(landing, tally, share, settings.max_reject_share))
    superseded, removed = ([], 0) if resource.write_disposition != "content_hash" else \
        _keep_newest_versions(con, resource, landing.run_id)
    _record_rejects(con, landing.source, landing.run_id, tally.rejects + superseded)
    loaded = inserted - removed
    record_ledger(con, {**run.ledger, "run_id": landing.run_id, "source": run.source,
                        "mode": run.mode, "status": "loaded", "started_at": run.started_at,
                        "pages": len(entries), "records_landed": tally.seen,
                        "records_loaded": loaded, "records_rejected": len(tally.rejects),
                        "watermark": _watermark(con, resource, landing.run_id)})
    run.records_loaded += loaded
    run.records_rejected += len(tally.rejects)
    run.records_superseded += len(superseded)
    run.rejects += tally.rejects[:20]
    run.notes += tally.notes


def insert_batches(con: duckdb.DuckDBPyConnection, resource: Resource,
                   batches: Iterator[pl.DataFrame], load_filter: str | None = None,
                   on_progress: Callable[[int], None] | None = None) -> int:
    """Insert checked batches (frames holding the raw table's columns) by the resource's write
    disposition; returns the rows inserted."""
    columns = [name for (name,) in con.execute(
        "select column_name from information_schema.columns where table_schema = 'raw' "
        "and table_name = ? order by ordinal_position", [resource.table]).fetchall()]
    inserted = 0
    new_content = "true"
    if resource.write_disposition == "content_hash":
        same_key = " and ".join(f"r.{c} is not distinct from b.{c}"
                            for c in resource.primary_key)
        new_content = (f"not exists (select 1 from raw.{resource.table} as r where {same_key} "
                       "and r.payload_md5 = b.payload_md5)")
    for frame in batches:
        selected = ", ".join(f'b."{c}"' if c in frame.columns else "null" for c in columns)
        con.register("incoming_batch", frame)
        try:
            (count,) = con.execute(
                f"insert into raw.{resource.table} ({', '.join(columns)}) select {selected} "
                f"from incoming_batch as b where ({load_filter or 'true'}) and {new_content}"
            ).fetchone()
        finally:
            con.unregister("incoming_batch")
        inserted += int(count)
        if on_progress:
            on_progress(frame.height)
    return inserted


_DONE = object()


def _checked_batches(resource: Resource, landing: LandingRun, entries: list[ManifestEntry],
                     tally: _Tally, batch_records: int) -> Iterator[pl.DataFrame]:
    """Frames of checked records, prepared in a producer thread one batch ahead."""
    handoff: queue.Queue[Any] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            batch: list[dict[str, Any]] = []
            for row in _rows(resource, landing, entries, tally):
                batch.append(row)
                if len(batch) >= batch_records:
                    if not put(pl.DataFrame(batch, infer_schema_length=None)):
                        return
                    batch = []
            if batch and not put(pl.DataFrame(batch, infer_schema_length=None)):
                return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, which raises it
            put(exc)

    producer = threading.Thread(target=produce, name="betacell-load-producer", daemon=True)
    producer.start()
    try:
        while (item := handoff.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        producer.join(timeout=30)


def _rows(resource: Resource, landing: LandingRun, entries: list[ManifestEntry],
          tally: _Tally) -> Iterator[dict[str, Any]]:
    """Every accepted record of a landing run as a row of the raw table; rejects tallied."""
    for entry in entries:
        actual = sha256_file(landing.dir / entry.file)
        if actual != entry.sha256:
            raise LoadRejected(
                f"{landing.dir / entry.file} does not match its manifest checksum "
                f"(manifest {entry.sha256[:12]}…, file {actual[:12]}…); raw files must not "
                "change after landing — nothing from this run was loaded")
        source_file = f"{landing.source}/{landing.run_id}/{entry.file}"
        provenance = {"run_id": landing.run_id, "source_file": source_file,
                      "fetched_at": entry.fetched_at}
        for position, record in _records(resource, landing, entry, source_file, tally):
            row = {**record.row, **provenance, resource.position_column: position}
            if resource.write_disposition == "content_hash" and "payload_md5" not in row:
                row["payload_md5"] = hashlib.md5(row["payload"].encode()).hexdigest()
            tally.notes += record.notes
            yield row


def _records(resource: Resource, landing: LandingRun, entry: ManifestEntry, source_file: str,
             tally: _Tally) -> Iterator[tuple[int, Parsed]]:
    """(position, record) of each accepted record of one landed file."""
    def reject(position: int, problem: RecordProblem | UnicodeDecodeError,
               excerpt: str | None) -> None:
        tally.rejects.append({"source_file": source_file, "source_line": position,
                              "record_id": getattr(problem, "record_id", None),
                              "reason": str(problem), "record_excerpt": excerpt})

    if resource.parse_document is not None:
        try:
            items = list(resource.parse_document(landing.read_document(entry), source_file))
        except SourceError as exc:
            raise LoadRejected(f"{exc}; nothing from run {landing.run_id} was loaded") from exc
        for position, item in enumerate(items, start=1):
            tally.seen += 1
            if isinstance(item, RecordProblem):
                reject(position, item, item.excerpt)
            else:
                yield position, item
        return
    first_seen: dict[str, tuple[int, bytes]] = {}
    for position, line in enumerate(landing.iter_lines(entry), start=1):
        tally.seen += 1
        try:
            if not line.strip():
                raise RecordProblem("empty line")
            record = resource.parse_line(line)
            if not _first_in_file(resource, record, position, line, source_file, first_seen):
                continue  # the same record twice, identical: one copy is enough
        except (RecordProblem, UnicodeDecodeError) as problem:
            reject(position, problem, line[:EXCERPT_CHARS].decode("utf-8", "replace"))
            continue
        yield position, record


def _first_in_file(resource: Resource, record: Parsed, position: int, line: bytes,
                   source_file: str, first_seen: dict[str, tuple[int, bytes]]) -> bool:
    """The same key twice in one landed file, by the resource's rule: raises a
    :class:`RecordProblem` to reject it, or returns False for an identical copy to drop."""
    policy = resource.same_key_in_one_file
    if policy == "newest_wins":
        return True
    digest = hashlib.md5(line).digest()
    if record.key not in first_seen:
        first_seen[record.key] = (position, digest)
        return True
    first_line, first_digest = first_seen[record.key]
    if policy == "rejected":
        raise RecordProblem(f"{record.key} appears twice in one page (first at line "
                            f"{first_line})", record.key)
    if first_digest == digest:
        return False
    raise RecordProblem(f"duplicate {resource.record_id_field} {record.key} with different "
                        f"content (first at {source_file} line {first_line}, which is kept)",
                        record.key)


def _keep_newest_versions(con: duckdb.DuckDBPyConnection, resource: Resource,
                          run_id: str) -> tuple[list[dict[str, Any]], int]:
    """One row per key in this run: the newest version (the resource's version column, then
    file and position order) stays; the others are deleted. Returns the superseded versions
    whose content differed (as reject rows naming the version kept) and how many rows were
    deleted."""
    table, position, version = resource.table, resource.position_column, resource.version_column
    key = ", ".join(resource.primary_key)
    shown_key = " || ':' || ".join(f"cast({c} as varchar)" for c in resource.primary_key)
    order = (f"{version} desc nulls last, " if version else "") + \
        f"source_file desc, {position} desc"
    has_payload = con.execute(
        "select count(*) from information_schema.columns where table_schema = 'raw' and "
        "table_name = ? and column_name = 'payload'", [table]).fetchone()[0]
    excerpt = f"left(payload::varchar, {EXCERPT_CHARS})" if has_payload else shown_key
    rows = con.execute(
        f"""with ranked as (
               select {shown_key} as shown_key, source_file, {position} as position, payload_md5,
                      {version or 'null'} as version, {excerpt} as excerpt,
                      row_number() over newest as rank,
                      first_value(source_file) over newest as kept_file,
                      first_value({position}) over newest as kept_position,
                      first_value(payload_md5) over newest as kept_md5,
                      first_value({version or 'null'}) over newest as kept_version
               from raw.{table}
               where run_id = $run_id
               window newest as (partition by {key} order by {order})
           )
           select shown_key, source_file, position, payload_md5 = kept_md5, excerpt, version,
                  kept_file, kept_position, kept_version
           from ranked where rank > 1""", {"run_id": run_id}).fetchall()
    if not rows:
        return [], 0
    same_row = " and ".join(f"r.{c} is not distinct from d.{c}" for c in resource.primary_key)
    con.execute(
        f"""delete from raw.{table} as r using (
               select {key}, source_file, {position} from (
                   select {key}, source_file, {position}, row_number() over (
                       partition by {key} order by {order}) as rank
                   from raw.{table} where run_id = $run_id) where rank > 1) as d
           where r.run_id = $run_id and {same_row} and r.source_file = d.source_file
             and r.{position} = d.{position}""", {"run_id": run_id})
    where = "line" if position == "source_line" else "record"
    superseded = [
        {"source_file": source_file, "source_line": at, "record_id": key_value,
         "reason": (f"superseded: {key_value} came again in this run with other content at "
                    f"{kept_file} {where} {kept_at}"
                    + (f" (last updated {kept_version or 'unknown'}, this version "
                       f"{this_version or 'unknown'})" if version else "")
                    + "; the newest version is loaded"),
         "record_excerpt": text}
        for key_value, source_file, at, same, text, this_version, kept_file, kept_at,
        kept_version in rows if not same]
    return superseded, len(rows)


def _record_rejects(con: duckdb.DuckDBPyConnection, source: str, run_id: str,
                    rejects: list[dict[str, Any]]) -> None:
    """Rows of ``raw.rejected_records`` (file, line, id, reason, excerpt) for one source run."""
    if not rejects:
        return
    frame = pl.DataFrame(rejects, schema=REJECT_SCHEMA).with_columns(
        pl.lit(source).alias("source"), pl.lit(run_id).alias("run_id"),
        pl.lit(utc_now()).alias("rejected_at"))
    con.register("rejects_frame", frame)
    try:
        con.execute("""insert into raw.rejected_records
                       select source, run_id, source_file, source_line, record_id, reason,
                              record_excerpt, rejected_at from rejects_frame""")
    finally:
        con.unregister("rejects_frame")


def _watermark(con: duckdb.DuckDBPyConnection, resource: Resource, run_id: str) -> Any:
    """The newest cursor value this run loaded (a cursor on a column of the raw table)."""
    if resource.cursor is None or resource.cursor.in_ledger:
        return None
    return con.execute(f"select max({resource.cursor.field}) from raw.{resource.table} "
                       "where run_id = ?", [run_id]).fetchone()[0]


def _too_many_rejects(landing: LandingRun, tally: _Tally, share: float, limit: float) -> str:
    sample = "; ".join(
        f"{r['source_file']} line {r['source_line']}"
        + (f" ({r['record_id']})" if r["record_id"] else "") + f": {r['reason']}"
        for r in tally.rejects[:5])
    more = len(tally.rejects) - 5
    return (f"run {landing.run_id} rejected {len(tally.rejects)} of {tally.seen} records "
            f"({share:.1%}, limit {limit:.1%}); nothing from this run was loaded. "
            f"First problems: {sample}" + (f"; and {more} more" if more > 0 else ""))


def record_ledger(con: duckdb.DuckDBPyConnection, row: dict[str, Any]) -> None:
    """Append one row to ``raw.ingest_runs`` (inside the caller's transaction, if any)."""
    ensure_raw_schema(con)
    values = dict(row)
    values.setdefault("started_at", utc_now())
    values.setdefault("finished_at", utc_now())
    if isinstance(values.get("query"), dict):
        values["query"] = orjson.dumps(values["query"]).decode()
    for key in ("started_at", "finished_at"):
        if isinstance(values.get(key), str):
            values[key] = datetime.fromisoformat(values[key])
    con.execute(
        f"insert into raw.ingest_runs ({', '.join(LEDGER_COLUMNS)}) "
        f"values ({', '.join('?' for _ in LEDGER_COLUMNS)})",
        [values.get(c) for c in LEDGER_COLUMNS])


# -- versioned sheets ------------------------------------------------------------------------------
def load_sheets(con: duckdb.DuckDBPyConnection, settings: Settings, resource: Resource,
                run: SourceRun) -> SourceRun:
    """Each sheet is a version, validated whole: a rejected sheet leaves its previous version in
    effect; a sheet gone from its folder is withdrawn; one ledger row for them all."""
    from flows.publish import code_fingerprint, published_fingerprint

    run_id = f"sheets-{run.started_at:%Y%m%dT%H%M%SZ}"
    sheets = [Path(p) for p in run.ledger.get("sheets", [])]
    seen: dict[str, str] = {}
    # a rejection is remembered while the code that validated it is the published one
    same_validation = published_fingerprint(settings) == code_fingerprint(settings)
    con.execute("begin transaction")
    try:
        for sheet in sheets:
            try:
                result = load_sheet(con, resource, sheet, run_id, seen,
                                    remember_rejections=same_validation)
            except SheetRejected as exc:
                result = {"status": "rejected", "rows": 0, "message": str(exc),
                          "sheet_sha256": exc.sheet_sha256}
            run.details.append({"sheet": sheet.name, **result})
            run.records_loaded += result.get("rows", 0)
        if run.ledger.get("folder_found"):
            run.details += withdraw_missing_sheets(con, resource, {p.name for p in sheets},
                                                   run_id)
        _record_sheet_run(con, run, run_id)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return run


def _record_sheet_run(con: duckdb.DuckDBPyConnection, run: SourceRun, run_id: str) -> None:
    rejected = [d for d in run.details if d["status"] in REJECTED_SHEET]
    if not run.details:
        return
    status = ("failed" if rejected else "loaded"
              if any(d["status"] in {"accepted", "withdrawn"} for d in run.details)
              else "skipped_unchanged")
    record_ledger(con, {"run_id": run_id, "source": run.source, "mode": run.mode,
                        "status": status, "started_at": run.started_at,
                        "records_landed": len(run.details), "records_loaded": run.records_loaded,
                        "records_rejected": len(rejected),
                        "message": "; ".join(f"{d['sheet']}: {d['message']}"
                                             for d in rejected)[:2000] or None})
    run.run_ids.append(run_id)


def sheet_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def current_sheet_version(con: duckdb.DuckDBPyConnection, resource: Resource,
                          sheet_file: str) -> str | None:
    """sha256 of the version of ``sheet_file`` now in effect (None: none, or withdrawn)."""
    row = con.execute(
        f"select status, sheet_sha256 from raw.{resource.versions_table} "
        "where sheet_file = ? and status in ('accepted', 'withdrawn') "
        "order by loaded_at desc limit 1", [sheet_file]).fetchone()
    return row[1] if row and row[0] == "accepted" else None


def rejected_before(con: duckdb.DuckDBPyConnection, resource: Resource, sheet_file: str,
                    digest: str) -> tuple[Any, int, str | None] | None:
    """When, with how many errors and which, this very content of ``sheet_file`` was rejected
    (None if it never was): a rejected file left in the folder is not read again."""
    return con.execute(
        f"select loaded_at, error_count, problems from raw.{resource.versions_table} "
        "where sheet_file = ? and sheet_sha256 = ? and status = 'rejected' "
        "order by loaded_at limit 1", [sheet_file, digest]).fetchone()


def _revert_to(con: duckdb.DuckDBPyConnection, resource: Resource, sheet_file: str, digest: str,
               run_id: str, loaded_at: Any) -> dict[str, Any] | None:
    """A sheet put back to a version accepted before becomes current again (a new version row
    pointing at the rows already loaded for that content)."""
    earlier = con.execute(
        f"select count(*) from raw.{resource.table} where sheet_file = ? and sheet_sha256 = ?",
        [sheet_file, digest]).fetchone()[0]
    if not earlier:
        return None
    (problems,) = con.execute(  # the content's own warnings stay in effect with it
        f"select problems from raw.{resource.versions_table} where sheet_file = ? and "
        "sheet_sha256 = ? and status = 'accepted' order by loaded_at limit 1",
        [sheet_file, digest]).fetchone() or (None,)
    con.execute(
        f"insert into raw.{resource.versions_table} values (?, ?, ?, 'accepted', ?, ?, 0, ?)",
        [digest, sheet_file, run_id, loaded_at, earlier, problems])
    return {"status": "accepted", "rows": earlier, "warnings": 0, "sheet_sha256": digest,
            "message": "reverted to a version accepted before"}


def latest_sheet_version(con: duckdb.DuckDBPyConnection, resource: Resource,
                         sheet_file: str) -> tuple[str, str] | None:
    """(status, sha256) of the newest version row of ``sheet_file``, whatever its status: what
    the warehouse last saw in the folder under that name (withdrawn: nothing)."""
    return con.execute(
        f"select status, sheet_sha256 from raw.{resource.versions_table} where sheet_file = ? "
        "order by loaded_at desc, run_id desc limit 1", [sheet_file]).fetchone()


def _restore(con: duckdb.DuckDBPyConnection, resource: Resource, sheet_file: str, digest: str,
             run_id: str) -> dict[str, Any]:
    """The version in effect put back over a rejected one: recorded again (with its own
    warnings), so the rejected version's problems no longer show and the run is a change."""
    row_count, problems = con.execute(
        f"select row_count, problems from raw.{resource.versions_table} where sheet_file = ? "
        "and sheet_sha256 = ? and status = 'accepted' order by loaded_at desc limit 1",
        [sheet_file, digest]).fetchone()
    con.execute(
        f"insert into raw.{resource.versions_table} values (?, ?, ?, 'accepted', ?, ?, 0, ?)",
        [digest, sheet_file, run_id, utc_now(), row_count, problems])
    return {"status": "accepted", "rows": 0, "warnings": 0, "sheet_sha256": digest,
            "message": "the version in effect is back in the folder (the rejected one is gone)"}


def _record_rejected_sheet_rows(con: duckdb.DuckDBPyConnection, resource: Resource,
                                sheet_file: str, run_id: str, valid_rows: list[dict[str, Any]],
                                errors: list[SheetProblem]) -> None:
    """Every row of a rejected sheet is a rejected record (``raw.rejected_records``): a row with
    errors with them, a valid row because its sheet was rejected whole; the file's own errors as
    one record without a row. Row numbers are the spreadsheet's (the header is row 1)."""
    by_row: dict[int, list[str]] = {}
    for problem in errors:
        by_row.setdefault(problem.row, []).append(f"column {problem.column}: {problem.problem}")
    whole = (f"not loaded: the sheet was rejected whole for {len(errors)} error(s) on other "
             "rows; the previous accepted version stays in effect")
    rejects = [{"source_file": sheet_file, "source_line": row or None, "record_id": None,
                "reason": "; ".join(found)[:2000], "record_excerpt": None}
               for row, found in sorted(by_row.items())]
    rejects += [{"source_file": sheet_file, "source_line": row.get("source_row"),
                 "record_id": row.get(resource.record_id_field or ""), "reason": whole,
                 "record_excerpt": " / ".join(str(row.get(c) or "") for c in
                                              ("study_id", "arm", "outcome"))[:500]}
                for row in valid_rows]
    _record_rejects(con, resource.name, run_id, rejects)


def withdraw_missing_sheets(con: duckdb.DuckDBPyConnection, resource: Resource,
                            present: set[str], run_id: str) -> list[dict[str, Any]]:
    """Sheets in effect whose file is gone from the sheet folder: their rows leave the warehouse
    (a ``withdrawn`` version row; ``changes_since_last_run`` lists it)."""
    ensure_raw_schema(con)
    in_effect = con.execute(
        f"select sheet_file, sheet_sha256, row_count from raw.{resource.versions_table} "
        "where status in ('accepted', 'withdrawn') "
        "qualify row_number() over (partition by sheet_file order by loaded_at desc) = 1 "
        "and status = 'accepted'").fetchall()
    withdrawn = []
    for sheet_file, digest, rows in in_effect:
        if sheet_file in present:
            continue
        con.execute(
            f"insert into raw.{resource.versions_table} values (?, ?, ?, 'withdrawn', ?, 0, 0, ?)",
            [digest, sheet_file, run_id, utc_now(),
             f"the file was removed from the sheet folder; its {rows} rows are withdrawn"])
        withdrawn.append({"sheet": sheet_file, "status": "withdrawn", "rows": 0,
                          "message": f"{rows} rows withdrawn (file removed)"})
    # a rejected sheet that never took effect, gone from the folder: its problems go with it
    rejected_only = con.execute(
        f"select sheet_file, sheet_sha256 from raw.{resource.versions_table} "
        "qualify row_number() over (partition by sheet_file order by loaded_at desc, "
        "run_id desc) = 1 and status = 'rejected'").fetchall()
    for sheet_file, digest in rejected_only:
        if sheet_file in present or sheet_file in {w["sheet"] for w in withdrawn}:
            continue
        con.execute(
            f"insert into raw.{resource.versions_table} values (?, ?, ?, 'withdrawn', ?, 0, 0, ?)",
            [digest, sheet_file, run_id, utc_now(),
             "the rejected file was removed from the sheet folder; none of its rows was in effect"])
        withdrawn.append({"sheet": sheet_file, "status": "withdrawn", "rows": 0,
                          "message": "rejected file removed (none of its rows was in effect)"})
    return withdrawn


def load_sheet(con: duckdb.DuckDBPyConnection, resource: Resource, path: Path, run_id: str,
               seen: dict[str, str] | None = None,
               remember_rejections: bool = True) -> dict[str, Any]:
    """Validate and load one sheet as a new version; reject it whole on any error (raises
    :class:`SheetRejected`). ``seen`` maps the content hashes of this run's other sheets to their
    names: a copy of a sheet under another name is rejected (it would count every row twice).
    Content rejected before is not read again (status ``still_rejected``) unless
    ``remember_rejections`` is off (the code that validates sheets changed since)."""
    ensure_raw_schema(con)
    try:
        digest = sheet_sha256(path)
    except OSError as exc:
        raise SheetRejected.of_file(path, f"cannot be read ({type(exc).__name__}: {exc})") \
            from exc
    if seen is not None:
        if digest in seen:
            raise SheetRejected.of_file(path, f"the same content as {seen[digest]}: a copy would "
                                              "count every row twice; remove one of them")
        seen[digest] = path.name
    on_disk_before = latest_sheet_version(con, resource, path.name)
    if current_sheet_version(con, resource, path.name) == digest:
        if on_disk_before == ("accepted", digest):
            return {"status": "unchanged", "rows": 0, "warnings": 0, "sheet_sha256": digest}
        # the version in effect is back on disk (a rejected version replaced it there): a change
        return _restore(con, resource, path.name, digest, run_id)
    if remember_rejections and (earlier := rejected_before(con, resource, path.name, digest)):
        rejected_at, errors, problems = earlier
        message = (f"unchanged since it was rejected at {rejected_at:%Y-%m-%d %H:%M %Z} with "
                   f"{errors} problem(s), so not read again; the previous accepted sheet stays in "
                   f"effect. {(problems or '')[:1500]}")
        if on_disk_before == ("rejected", digest):
            return {"status": "still_rejected", "rows": 0, "sheet_sha256": digest,
                    "message": message}
        # put back in the folder after another version: on disk again, so its problems are
        con.execute(f"insert into raw.{resource.versions_table} values "
                    "(?, ?, ?, 'rejected', ?, 0, ?, ?)",
                    [digest, path.name, run_id, utc_now(), errors, problems])
        return {"status": "rejected", "rows": 0, "sheet_sha256": digest, "message": message}
    loaded_at = utc_now()
    if reverted := _revert_to(con, resource, path.name, digest, run_id, loaded_at):
        return reverted
    try:
        rows, problems = resource.parse_sheet(path)
    except SheetRejected as exc:
        rows, problems = [], exc.problems
    if not rows and not any(p.severity == "error" for p in problems):
        problems.append(SheetProblem(path.name, 0, "(file)", "the sheet has no data rows; to "
                                     "withdraw a sheet, remove the file"))
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        con.execute(
            f"insert into raw.{resource.versions_table} values (?, ?, ?, 'rejected', ?, 0, ?, ?)",
            [digest, path.name, run_id, loaded_at, len(errors),
             "; ".join(str(p) for p in errors[:50])])
        _record_rejected_sheet_rows(con, resource, path.name, run_id, rows, errors)
        raise SheetRejected(problems, digest)
    frame = pl.DataFrame(
        [{"source_row": i, **row} for i, row in enumerate(rows, start=2)],
        infer_schema_length=None,
    ).with_columns(
        pl.lit(digest).alias("sheet_sha256"), pl.lit(path.name).alias("sheet_file"),
        pl.lit(run_id).alias("run_id"), pl.lit(loaded_at).alias("loaded_at"),
    )
    con.register("sheet_rows", frame)
    try:
        con.execute(f"insert into raw.{resource.table} by name select * from sheet_rows")
    finally:
        con.unregister("sheet_rows")
    con.execute(
        f"insert into raw.{resource.versions_table} values (?, ?, ?, 'accepted', ?, ?, 0, ?)",
        [digest, path.name, run_id, loaded_at, len(rows),
         "; ".join(str(p) for p in problems) or None])
    return {"status": "accepted", "rows": len(rows), "warnings": len(problems),
            "sheet_sha256": digest}
