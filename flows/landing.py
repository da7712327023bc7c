"""Immutable raw landing: ``data/raw/<source>/<run_id>/`` holding compressed JSON lines + manifest.

Each landed file is written aside and renamed into place, then described by one appended line of
``manifest.jsonl`` (file, page, record count, sha256, fetched_at, query, tokens). Files are never
rewritten. A run is finished when ``_COMPLETE`` exists; an unfinished run can be resumed from the
token recorded in its last manifest line.
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

MANIFEST = "manifest.jsonl"
COMPLETE = "_COMPLETE"
RUN_META = "run.json"


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

    @classmethod
    def from_json(cls, line: bytes) -> ManifestEntry:
        return cls(**orjson.loads(line))


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
        target = self.dir / name
        if target.exists():
            raise FileExistsError(f"{target} already landed; raw files are never rewritten")
        partial = target.with_name(name + ".part")
        count = 0
        compressor = zstandard.ZstdCompressor(level=3)
        with partial.open("wb") as raw, compressor.stream_writer(raw) as out:
            for record in records:
                out.write(record.rstrip(b"\n"))
                out.write(b"\n")
                count += 1
        os.replace(partial, target)
        return self._record(name, page, count, query, fetched_at, page_token, next_page_token)

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
        """Write one whole response document (e.g. efetch XML) zstd-compressed, as received."""
        name = f"page-{page:05d}.{suffix}.zst"
        target = self.dir / name
        if target.exists():
            raise FileExistsError(f"{target} already landed; raw files are never rewritten")
        partial = target.with_name(name + ".part")
        partial.write_bytes(zstandard.ZstdCompressor(level=3).compress(content))
        os.replace(partial, target)
        return self._record(name, page, record_count, query, fetched_at, page_token,
                            next_page_token)

    def _record(
        self, name: str, page: int, count: int, query: dict[str, Any], fetched_at: datetime,
        page_token: str | None, next_page_token: str | None,
    ) -> ManifestEntry:
        target = self.dir / name
        entry = ManifestEntry(
            file=name, page=page, record_count=count, sha256=sha256_file(target),
            bytes=target.stat().st_size, fetched_at=fetched_at.isoformat(), query=query,
            page_token=page_token, next_page_token=next_page_token,
        )
        with (self.dir / MANIFEST).open("ab") as manifest:
            manifest.write(orjson.dumps(entry.__dict__) + b"\n")
            manifest.flush()
            os.fsync(manifest.fileno())
        return entry

    def read_document(self, entry: ManifestEntry) -> bytes:
        with (self.dir / entry.file).open("rb") as raw:
            return zstandard.ZstdDecompressor().stream_reader(raw).read()

    def complete(self, summary: dict[str, Any]) -> None:
        _write_atomic(self.dir / COMPLETE, orjson.dumps(summary, option=orjson.OPT_INDENT_2))

    # -- reading ------------------------------------------------------------------------------
    @property
    def is_complete(self) -> bool:
        return (self.dir / COMPLETE).exists()

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
        decompressor = zstandard.ZstdDecompressor()
        with (self.dir / entry.file).open("rb") as raw, decompressor.stream_reader(raw) as reader:
            pending = b""
            while chunk := reader.read(1 << 20):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                yield from lines
            if pending:
                yield pending


def find_resumable_run(raw_dir: Path, source: str, fingerprint: str) -> LandingRun | None:
    """The newest unfinished run of ``source`` with the same query fingerprint, if any."""
    source_dir = Path(raw_dir) / source
    if not source_dir.exists():
        return None
    for run_dir in sorted(source_dir.iterdir(), reverse=True):
        if not run_dir.is_dir():
            continue
        run = LandingRun(raw_dir, source, run_dir.name)
        if run.is_complete:
            return None  # only the newest unfinished run after the last finished one counts
        if run.meta().get("fingerprint") == fingerprint:
            return run
    return None


def _write_atomic(path: Path, content: bytes) -> None:
    partial = path.with_name(path.name + ".part")
    partial.write_bytes(content)
    os.replace(partial, path)
