"""Other registries: WHO ICTRP exports (inbox files) and EU CTIS (public JSON endpoints).

Both land like ClinicalTrials.gov (``data/raw/<source>/<run_id>/`` JSON lines + manifest) and
load into ``raw.ictrp_trials`` / ``raw.ctis_trials`` in one transaction per run.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import orjson
import polars as pl

from flows.db import ensure_raw_schema
from flows.errors import SourceError
from flows.landing import LandingRun, new_run_id, utc_now
from flows.load import record_ledger
from flows.settings import Settings
from flows.sources import ctis, ictrp

ICTRP_SUFFIXES = {".xml", ".csv"}


@dataclass
class RegistryIngest:
    source: str
    run: LandingRun | None
    files: list[str]
    records_landed: int = 0
    skipped_reason: str | None = None
    warnings: list[str] = field(default_factory=list)  # said in the run summary


class NotARegularFile(OSError):
    """An inbox entry that is not a regular file (a directory, FIFO, socket, device)."""


FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
              (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
              (stat.S_ISBLK, "a block device"))


def _kind(mode: int) -> str:
    return next((name for test, name in FILE_KINDS if test(mode)), "not a regular file")


def read_regular_file(path: Path) -> bytes:
    """The bytes of ``path``, a regular file (or a symlink to one). ``stat`` comes first, so a
    FIFO is never opened (opening one waits for a writer forever); the file is then opened
    non-blocking and checked again, so nothing swapped in between can block either."""
    mode = os.stat(path).st_mode  # a symlink loop or a dangling link raises here
    if not stat.S_ISREG(mode):
        raise NotARegularFile(f"it is {_kind(mode)}")
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise NotARegularFile(f"it is {_kind(mode)}")
        return handle.read()


def read_inbox(inbox: Path, suffixes: set[str]) -> tuple[list[tuple[Path, bytes]], list[str]]:
    """The regular files of an inbox with one of ``suffixes``, read; and a warning naming each
    entry that is skipped (not a regular file, a symlink loop, unreadable). One odd entry never
    blocks the others."""
    if not inbox.is_dir():
        return [], []
    files, warnings = [], []
    for path in sorted(inbox.iterdir()):
        if path.suffix.lower() not in suffixes:
            continue
        try:
            files.append((path, read_regular_file(path)))
        except OSError as exc:
            reason = exc.strerror or str(exc)
            warnings.append(f"{path} is skipped: {reason} (only regular files are read)")
    return files, warnings


def ictrp_inbox(settings: Settings, source: str) -> Path:
    return settings.snapshot_path / "ictrp" if source == "snapshot" else (
        settings.data_path / "inbox" / "ictrp")


def _published_export_hashes(settings: Settings) -> set[str]:
    """sha256 of the exports whose landing run is loaded in the *published* warehouse.

    Landing is not loading: a file landed by a run that failed later (a bad file beside it, a
    gate, a crash) was never published, so it is landed and loaded again."""
    if not settings.warehouse_path.exists():
        return set()
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        published = {run_id for (run_id,) in con.execute(
            "select run_id from raw.ingest_runs where source = 'ictrp' and status = 'loaded'"
        ).fetchall()}
    except duckdb.CatalogException:
        published = set()
    finally:
        con.close()
    hashes: set[str] = set()
    for manifest in (settings.raw_dir / "ictrp").glob("*/manifest.jsonl"):
        if manifest.parent.name not in published:
            continue
        for line in manifest.read_bytes().splitlines():
            if line:
                hashes.add(orjson.loads(line).get("query", {}).get("sha256", ""))
    return hashes


def ingest_ictrp(settings: Settings, source: str = "snapshot") -> RegistryIngest:
    """Land every export file of the inbox not yet loaded and published (by sha256)."""
    inbox = ictrp_inbox(settings, source)
    files, warnings = read_inbox(inbox, ICTRP_SUFFIXES)
    landed = _published_export_hashes(settings)
    new = [(p, content, hashlib.sha256(content).hexdigest()) for p, content in files]
    new = [(p, content, digest) for p, content, digest in new if digest not in landed]
    if not new:
        return RegistryIngest("ictrp", None, [], skipped_reason=f"no new export in {inbox}",
                              warnings=warnings)
    run = LandingRun(settings.raw_dir, "ictrp", new_run_id())
    run.start({"run_id": run.run_id, "source": "ictrp", "inbox": str(inbox)})
    outcome = RegistryIngest("ictrp", run, [p.name for p, _, _ in new], warnings=warnings)
    for page, (path, content, digest) in enumerate(new, start=1):
        try:
            export = ictrp.read_export(path, content)
        except (SourceError, OSError) as exc:  # this file alone is rejected, with the reason
            export = ictrp.Export([{"_parse_problem": f"{path.name}: the whole file was "
                                    f"refused: {exc}"}], "refused")
        records = [orjson.dumps(r) for r in export.records]
        run.land_records(records, page=page, query={"file": path.name, "sha256": digest,
                                                    "encoding": export.encoding},
                         fetched_at=utc_now())
        outcome.records_landed += len(records)
    run.complete({"files": outcome.files, "records": outcome.records_landed})
    return outcome


def ingest_ctis(settings: Settings, criteria: dict[str, Any], client=None,
                with_details: bool = True) -> RegistryIngest:
    own = client is None
    client = client or ctis.make_ctis_client(settings)
    run = LandingRun(settings.raw_dir, "ctis", new_run_id())
    run.start({"run_id": run.run_id, "source": "ctis", "criteria": criteria})
    outcome = RegistryIngest("ctis", run, [])
    try:
        for page, rows, total in ctis.iter_search_pages(client, criteria):
            if with_details:
                rows = [{**row, "detail": ctis.retrieve(client, row["ctNumber"])} for row in rows]
            run.land_records((orjson.dumps(r) for r in rows), page=page,
                             query={"criteria": criteria, "page": page, "total": total},
                             fetched_at=utc_now())
            outcome.records_landed += len(rows)
        run.complete({"records": outcome.records_landed})
        return outcome
    finally:
        if own:
            client.close()


def _reject_reason(record: dict[str, Any], record_id: str | None, id_field: str,
                   first: tuple[str, int, bytes] | None, line: bytes) -> str | None:
    if problem := record.get("_parse_problem"):
        return str(problem)
    if not record_id:
        return f"record has no {id_field}"
    if first is not None and first[2] != line:
        return (f"duplicate {id_field} {record_id} with different content (first at "
                f"{first[0]} line {first[1]}, which is kept)")
    return None


def load_registry_run(con: duckdb.DuckDBPyConnection, landing: LandingRun, *, id_field: str,
                      table: str, register_field: str | None = None) -> dict[str, int]:
    """Load JSON-lines records of an ICTRP or CTIS run; a record without its id is rejected."""
    ensure_raw_schema(con)
    if con.execute("select count(*) from raw.ingest_runs where run_id = ? and status = 'loaded'",
                   [landing.run_id]).fetchone()[0]:
        return {"loaded": 0, "rejected": 0}
    rows, rejects = [], []
    for entry in landing.entries():
        # a duplicate id within one export is a conflict; across exports, the later export
        # is the newer version (staging keeps the newest per id)
        first_seen: dict[str, tuple[str, int, bytes]] = {}
        source_file = f"{landing.source}/{landing.run_id}/{entry.file}"
        for line_no, line in enumerate(landing.iter_lines(entry), start=1):
            record = orjson.loads(line)
            record_id = (record.get(id_field) or "").strip() if isinstance(record.get(id_field),
                                                                           str) else None
            reason = _reject_reason(record, record_id, id_field, first_seen.get(record_id or ""),
                                    line)
            if reason:
                rejects.append({"source": landing.source, "run_id": landing.run_id,
                                "source_file": source_file, "source_line": line_no,
                                "record_id": record_id, "reason": reason,
                                "record_excerpt": line[:300].decode("utf-8", "replace"),
                                "rejected_at": utc_now()})
                continue
            if record_id in first_seen:
                continue  # the same record twice, identical: one copy is enough
            first_seen[record_id] = (source_file, line_no, line)
            rows.append({"record_id": record_id,
                         "source_register": record.get(register_field) if register_field else None,
                         "payload": line.decode(), "run_id": landing.run_id,
                         "fetched_at": entry.fetched_at, "source_file": source_file,
                         "source_line": line_no})
    con.execute("begin transaction")
    try:
        if rows:
            con.register("registry_rows", pl.DataFrame(rows))
            con.execute(f"""insert into raw.{table} select record_id, source_register,
                payload::json, run_id, fetched_at::timestamptz, source_file, source_line
                from registry_rows""")
            con.unregister("registry_rows")
        if rejects:
            con.register("registry_rejects", pl.DataFrame(rejects))
            con.execute("insert into raw.rejected_records select source, run_id, source_file, "
                        "source_line, record_id, reason, record_excerpt, rejected_at "
                        "from registry_rejects")
            con.unregister("registry_rejects")
        record_ledger(con, {"run_id": landing.run_id, "source": landing.source, "mode": "files"
                            if landing.source == "ictrp" else "api", "status": "loaded",
                            "records_landed": len(rows) + len(rejects),
                            "records_loaded": len(rows), "records_rejected": len(rejects)})
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return {"loaded": len(rows), "rejected": len(rejects)}
