"""Immutable raw landing: ``data/raw/<source>/<run_id>/`` holding compressed JSON lines + manifest.

Each landed file is written aside, its manifest line is written beside it as a *pending* entry,
the file is renamed into place, and the line is appended to ``manifest.jsonl`` (file, page, record
count, sha256, fetched_at, query, tokens). Files are never rewritten. A run is finished when
``_COMPLETE`` exists; an unfinished run can be resumed from the token recorded in its last manifest
line. A run killed between the rename and the manifest line is put back in step when it is picked
up again (:meth:`LandingRun.reconcile`): the page is checked and adopted, or moved aside.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import zstandard

from flows.redaction import mask_secrets

MANIFEST = "manifest.jsonl"
COMPLETE = "_COMPLETE"
ABANDONED = "_ABANDONED"
RUN_META = "run.json"
PENDING = ".pending"  # a page's manifest line, written before the page is renamed into place
ASIDE = "aside"  # page files that could not be adopted after a crash, kept for inspection


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_run_id(now: datetime | None = None) -> str:
    now = now or utc_now()
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class ManifestEntry:
    file: str
    page: int
    record_count: int
    sha256: str
    bytes: int
    fetched_at: str
    query: dict[str, Any]
    page_token: str | None = None
    next_page_token: str | None = None
    # True for a page adopted after a crash without its pending entry: whether a next page
    # exists, and its token, were lost with the manifest line
    next_page_lost: bool = False

    @classmethod
    def from_json(cls, line: bytes) -> ManifestEntry:
        return cls(**orjson.loads(line))

    def to_json(self) -> bytes:
        return orjson.dumps(self.__dict__)


class LandingRun:
    def __init__(self, raw_dir: Path, source: str, run_id: str) -> None:
        self.source = source
        self.run_id = run_id
        self.dir = Path(raw_dir) / source / run_id

    # -- writing ------------------------------------------------------------------------------
    def start(self, meta: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        meta_path = self.dir / RUN_META
        if not meta_path.exists():
            _write_atomic(meta_path, orjson.dumps(meta, option=orjson.OPT_INDENT_2))

    def land_records(
        self,
        records: Iterable[bytes],
        *,
        page: int,
        query: dict[str, Any],
        fetched_at: datetime,
        page_token: str | None = None,
        next_page_token: str | None = None,
    ) -> ManifestEntry:
        """Write one page (or archive chunk) of JSON records as a zstd-compressed JSON-lines file."""
        name = f"page-{page:05d}.jsonl.zst"
        partial = self._partial(name)
        count = 0
        compressor = zstandard.ZstdCompressor(level=3)
        with partial.open("wb") as raw, compressor.stream_writer(raw) as out:
            for record in records:
                out.write(mask_secrets(record.rstrip(b"\n")))
                out.write(b"\n")
                count += 1
        return self._commit(partial, name, page, count, query, fetched_at, page_token,
                            next_page_token)

    def land_document(
        self,
        content: bytes,
        *,
        page: int,
        suffix: str,
        record_count: int,
        query: dict[str, Any],
        fetched_at: datetime,
        page_token: str | None = None,
        next_page_token: str | None = None,
    ) -> ManifestEntry:
        """Write one whole response document (e.g. efetch XML) zstd-compressed, as received
        (a registered secret a server echoed back is masked first)."""
        name = f"page-{page:05d}.{suffix}.zst"
        partial = self._partial(name)
        partial.write_bytes(zstandard.ZstdCompressor(level=3).compress(mask_secrets(content)))
        return self._commit(partial, name, page, record_count, query, fetched_at, page_token,
                            next_page_token)

    def _partial(self, name: str) -> Path:
        target = self.dir / name
        if target.exists():
            raise FileExistsError(f"{target} already landed; raw files are never rewritten")
        return target.with_name(name + ".part")

    def _commit(
        self, partial: Path, name: str, page: int, count: int, query: dict[str, Any],
        fetched_at: datetime, page_token: str | None, next_page_token: str | None,
    ) -> ManifestEntry:
        """Pending entry, rename, manifest line: a kill between any two steps is recoverable."""
        entry = ManifestEntry(
            file=name, page=page, record_count=count, sha256=sha256_file(partial),
            bytes=partial.stat().st_size, fetched_at=fetched_at.isoformat(), query=query,
            page_token=page_token, next_page_token=next_page_token,
        )
        pending = self.dir / (name + PENDING)
        _write_atomic(pending, entry.to_json())
        os.replace(partial, self.dir / name)
        self._append(entry)
        pending.unlink(missing_ok=True)
        return entry

    def _append(self, entry: ManifestEntry) -> None:
        with (self.dir / MANIFEST).open("ab") as manifest:
            manifest.write(entry.to_json() + b"\n")
            manifest.flush()
            os.fsync(manifest.fileno())

    def read_document(self, entry: ManifestEntry) -> bytes:
        with (self.dir / entry.file).open("rb") as raw:
            return zstandard.ZstdDecompressor().stream_reader(raw).read()

    def complete(self, summary: dict[str, Any]) -> None:
        _write_atomic(self.dir / COMPLETE, orjson.dumps(summary, option=orjson.OPT_INDENT_2))

    def abandon(self, reason: str) -> None:
        """Never resume this run (its pages stay on disk, unloaded); ``reason`` is kept."""
        _write_atomic(self.dir / ABANDONED, orjson.dumps({"reason": reason, "at":
                                                          utc_now().isoformat()}))

    # -- recovery -----------------------------------------------------------------------------
    def reconcile(self) -> list[str]:
        """Put the folder back in step with its manifest after a crash; returns what was done.

        Unfinished writes (``*.part``) are removed. A page file without a manifest line (a kill
        between its rename and the line) is checked — it decompresses, every line parses, the
        record count is known — and adopted with its pending entry, or with what can be inferred
        when the entry is gone; a page that fails the check is moved to ``aside/`` with a note,
        and fetched again."""
        notes: list[str] = []
        for leftover in self.dir.glob("*.part"):
            leftover.unlink(missing_ok=True)
        entries = self.entries()
        listed = {e.file for e in entries}
        for path in sorted(self.dir.glob("page-*.zst")):
            if path.name in listed:
                continue
            previous = max(entries, key=lambda e: e.page) if entries else None
            entry, problem = self._adoptable(path, previous)
            if entry is not None:
                self._append(entry)
                entries.append(entry)
                lost = " (its next-page token was lost with it)" if entry.next_page_lost else ""
                notes.append(f"{self.source} run {self.run_id}: adopted {path.name} "
                             f"({entry.record_count} records), landed before a crash without "
                             f"its manifest line{lost}")
            else:
                notes.append(self._move_aside(path, problem))
        for pending in self.dir.glob("*" + PENDING):
            pending.unlink(missing_ok=True)  # its page is listed now, or was never renamed in
        return notes

    def _adoptable(self, path: Path, previous: ManifestEntry | None
                   ) -> tuple[ManifestEntry | None, str]:
        page = _page_number(path.name)
        expected = (previous.page + 1) if previous else 1
        if page != expected:
            return None, f"it is page {page}, but the manifest ends before page {expected}"
        pending = self.dir / (path.name + PENDING)
        entry = ManifestEntry.from_json(pending.read_bytes()) if pending.exists() else None
        try:
            count = self._check_page(path)
        except (zstandard.ZstdError, orjson.JSONDecodeError, OSError, ValueError) as exc:
            return None, f"it does not decompress and parse ({type(exc).__name__}: {exc})"
        if entry is not None:
            if entry.sha256 != sha256_file(path) or (count is not None
                                                     and count != entry.record_count):
                return None, "it does not match the manifest line written before its rename"
            return entry, ""
        if count is None:
            return None, "its record count cannot be known without its manifest line"
        return ManifestEntry(
            file=path.name, page=page, record_count=count, sha256=sha256_file(path),
            bytes=path.stat().st_size,
            fetched_at=datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(),
            query=previous.query if previous else {},
            page_token=previous.next_page_token if previous else None,
            next_page_token=None, next_page_lost=True), ""

    def _check_page(self, path: Path) -> int | None:
        """Record count of a JSON-lines page (every line must parse, the last one end with a
        newline); None for a document (decompressed to its end, but its records are the
        source's to count). Streamed: an archive chunk can be hundreds of MB."""
        if not path.name.endswith(".jsonl.zst"):
            with path.open("rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as reader:
                while reader.read(1 << 20):
                    pass
            return None
        count = 0
        ends_with_newline = True
        for line, complete in _lines_of(path):
            if line.strip():  # an empty record is landed as received; the loader rejects it
                orjson.loads(line)
            count += 1
            ends_with_newline = complete
        if not ends_with_newline:
            raise ValueError("the last line is cut off")
        return count

    def _move_aside(self, path: Path, problem: str) -> str:
        aside = self.dir / ASIDE
        aside.mkdir(exist_ok=True)
        note = (f"{self.source} run {self.run_id}: {path.name} had no manifest line and was "
                f"moved aside to {ASIDE}/ ({problem}); it is fetched again")
        os.replace(path, aside / path.name)
        (aside / (path.name + ".note")).write_text(note + "\n")
        (self.dir / (path.name + PENDING)).unlink(missing_ok=True)
        return note

    # -- reading ------------------------------------------------------------------------------
    @property
    def is_complete(self) -> bool:
        return (self.dir / COMPLETE).exists()

    @property
    def is_abandoned(self) -> bool:
        return (self.dir / ABANDONED).exists()

    def meta(self) -> dict[str, Any]:
        path = self.dir / RUN_META
        return orjson.loads(path.read_bytes()) if path.exists() else {}

    def entries(self) -> list[ManifestEntry]:
        path = self.dir / MANIFEST
        if not path.exists():
            return []
        return [ManifestEntry.from_json(line) for line in path.read_bytes().splitlines() if line]

    def iter_lines(self, entry: ManifestEntry) -> Iterator[bytes]:
        """Decompressed lines of one landed file (without the newline), streamed."""
        for line, _ in _lines_of(self.dir / entry.file):
            yield line


def _lines_of(path: Path) -> Iterator[tuple[bytes, bool]]:
    """(line, whether a newline ended it) for each line of a zstd-compressed file."""
    decompressor = zstandard.ZstdDecompressor()
    with path.open("rb") as raw, decompressor.stream_reader(raw) as reader:
        pending = b""
        while chunk := reader.read(1 << 20):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                yield line, True
        if pending:
            yield pending, False


def find_resumable_run(raw_dir: Path, source: str, fingerprint: str,
                       notes: list[str] | None = None) -> LandingRun | None:
    """The newest unfinished run of ``source`` with the same query fingerprint, if any,
    reconciled with its manifest (what that did is appended to ``notes``)."""
    source_dir = Path(raw_dir) / source
    if not source_dir.exists():
        return None
    for run_dir in sorted(source_dir.iterdir(), reverse=True):
        if not run_dir.is_dir():
            continue
        run = LandingRun(raw_dir, source, run_dir.name)
        if run.is_complete:
            return None  # only the newest unfinished run after the last finished one counts
        if run.is_abandoned:
            continue
        if run.meta().get("fingerprint") == fingerprint:
            found = run.reconcile()
            if notes is not None:
                notes.extend(found)
            return run
    return None


def _page_number(name: str) -> int:
    return int(name.split("-", 1)[1].split(".", 1)[0])


def _write_atomic(path: Path, content: bytes) -> None:
    partial = path.with_name(path.name + ".part")
    partial.write_bytes(content)
    os.replace(partial, path)
