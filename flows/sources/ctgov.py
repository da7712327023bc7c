"""ClinicalTrials.gov API v2: query building, page iteration, version probe, bulk archive.

Transport and parsing only; nothing here knows about DuckDB or the landing layout.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import orjson

from flows.errors import SourceError
from flows.sources.http import PoliteClient
from flows.sources.topic import Topic

STUDIES_PATH = "/studies"
VERSION_PATH = "/version"
DOWNLOAD_PATH = "/studies/download"


def essie_any(terms: tuple[str, ...]) -> str:
    """OR-join terms for an Essie expression, quoting phrases and escaping quotes."""
    parts = []
    for term in terms:
        cleaned = term.replace('"', "").strip()
        if not cleaned:
            continue
        parts.append(f'"{cleaned}"' if " " in cleaned or "-" in cleaned else cleaned)
    if not parts:
        return ""
    return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"


def build_search_params(topic: Topic, since: date | None, page_size: int = 1000) -> dict[str, str]:
    """Parameters for ``GET /studies``; identical on every page except the token and countTotal."""
    params: dict[str, str] = {"format": "json", "pageSize": str(page_size)}
    if cond := essie_any(topic.conditions):
        params["query.cond"] = cond
    intr = essie_any(topic.interventions)
    if topic.exclusions and intr:
        intr = f"{intr} NOT {essie_any(topic.exclusions)}"
    if intr:
        params["query.intr"] = intr
    if term := essie_any(topic.terms):
        params["query.term"] = term
    if since is not None:
        params["filter.advanced"] = f"AREA[LastUpdatePostDate]RANGE[{since.isoformat()},MAX]"
    return params


@dataclass(frozen=True)
class StudyPage:
    number: int  # 1-based within the run
    token_sent: str | None
    studies: list[dict[str, Any]]
    next_token: str | None
    total_count: int | None


def study_key(study: Any) -> str:
    """What identifies a record within one search: its nctId, else a hash of its content."""
    if isinstance(study, dict):
        protocol = study.get("protocolSection")
        ident = protocol.get("identificationModule") if isinstance(protocol, dict) else None
        nct_id = ident.get("nctId") if isinstance(ident, dict) else None
        if isinstance(nct_id, str) and nct_id:
            return nct_id
    return "sha256:" + hashlib.sha256(orjson.dumps(study)).hexdigest()


def record_key(line: bytes) -> str:
    """:func:`study_key` of one landed JSON line (a line that does not parse keys by its hash)."""
    try:
        return study_key(orjson.loads(line))
    except orjson.JSONDecodeError:
        return "sha256:" + hashlib.sha256(line).hexdigest()


@dataclass
class PagingGuard:
    """Bounds one search's paging where tokens cannot: a page that brings no record not seen
    earlier in the search ends it (a server handing out fresh tokens on the same records), and
    more records than ``max_records`` (BETACELL_CTGOV_MAX_RECORDS) fail it."""

    max_records: int
    seen: set[str] = field(default_factory=set)
    records: int = 0
    stopped: str | None = None

    def admit(self, client: PoliteClient, number: int, studies: list[Any]) -> bool:
        keys = {study_key(s) for s in studies}
        if not keys - self.seen:
            self.stopped = (f"page {number} of the search brought no study not seen on an "
                            "earlier page (the paging repeats itself), so paging stopped there; "
                            "the pages before it are kept")
            return False
        self.seen |= keys
        self.records += len(studies)
        if self.records > self.max_records:
            raise SourceError(
                f"{client.source} /studies: the search has passed {self.max_records:,} records "
                f"at page {number} (BETACELL_CTGOV_MAX_RECORDS), far more than a topic search "
                "returns: check the topic, or raise the setting if the topic really is that "
                "broad. Pages landed so far are kept.")
        return True


def iter_study_pages(
    client: PoliteClient,
    params: dict[str, str],
    *,
    start_token: str | None = None,
    start_number: int = 1,
    guard: PagingGuard | None = None,
) -> Iterator[StudyPage]:
    """Yield pages until there is no ``nextPageToken`` or a page comes back empty.

    An exactly-full last page can still carry a token whose page is empty; that empty page ends
    the loop rather than being landed. Paging also ends when the ``guard`` says a page brought
    nothing new, and fails past its record cap or a repeated token.
    """
    guard = guard or PagingGuard(max_records=10**9)
    token = start_token
    number = start_number
    seen_tokens: set[str] = set() if start_token is None else {start_token}
    max_pages = float("inf")  # known once a page carries totalCount
    while True:
        page_params = dict(params)
        if token is None:
            page_params["countTotal"] = "true"
        else:
            page_params["pageToken"] = token
        body = client.get_json(STUDIES_PATH, page_params)
        if not isinstance(body, dict) or not isinstance(body.get("studies"), list):
            raise SourceError(
                f"{client.describe(STUDIES_PATH, page_params)} returned JSON without a "
                f"'studies' list (keys: {sorted(body) if isinstance(body, dict) else type(body)})"
            )
        studies = body["studies"]
        next_token = body.get("nextPageToken") or None
        if not studies:
            return
        if isinstance(body.get("totalCount"), int):
            total = body["totalCount"]
            expected = -(-total // len(studies))  # pages as big as the first one served
            max_pages = start_number + expected  # one page of slack: the registry may grow
        if number > max_pages:
            raise SourceError(
                f"{client.source} /studies: page {number} is beyond the {expected} page(s) its "
                f"totalCount of {total} allows (plus one): the paging loops (fresh tokens, same "
                f"records), so the search is stopped here")
        if not guard.admit(client, number, studies):
            return
        yield StudyPage(number, token, studies, next_token, body.get("totalCount"))
        if next_token is None:
            return
        if next_token in seen_tokens:
            raise SourceError(
                f"{client.source} /studies page {number} returned nextPageToken "
                f"{next_token!r}, a token it already gave: the paging loops, so the search is "
                f"stopped here ({number} pages landed are kept)"
            )
        seen_tokens.add(next_token)
        token = next_token
        number += 1


def fetch_study(client: PoliteClient, nct_id: str) -> dict[str, Any] | None:
    """One study by id (``GET /studies/{nctId}``); None when the registry does not know it."""
    body = client.get_json(f"{STUDIES_PATH}/{nct_id}", missing_ok=True)
    if body is None:
        return None
    if not isinstance(body, dict) or "protocolSection" not in body:
        raise SourceError(f"{client.source} /studies/{nct_id} returned an unexpected body "
                          f"(keys: {sorted(body) if isinstance(body, dict) else type(body)})")
    return body


def fetch_version(client: PoliteClient) -> dict[str, Any]:
    body = client.get_json(VERSION_PATH)
    if not isinstance(body, dict) or "apiVersion" not in body:
        raise SourceError(f"{client.source} /version returned an unexpected body: {body!r:.200}")
    return body


def download_archive(client: PoliteClient, dest: Path) -> int:
    """Download the all-studies archive (``json.zip``) to ``dest``; returns its size in bytes."""
    return client.download(DOWNLOAD_PATH, dest, params={"format": "json.zip"})


MAX_STUDY_BYTES = 64 * 1024**2


def iter_archive_studies(zip_path: Path) -> Iterator[tuple[str, bytes]]:
    """Yield ``(entry name, JSON bytes)`` for every study file in the archive, one at a time.

    Reads entries sequentially, so memory stays at one study regardless of archive size. A
    truncated or corrupt archive raises :class:`SourceError` naming the archive and the entry.
    """
    try:
        archive = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile as exc:
        raise SourceError(
            f"archive {zip_path} is truncated or not a zip file ({exc}); it is deleted and "
            "downloaded again by the next --full run"
        ) from exc
    with archive:
        for info in archive.infolist():
            if info.is_dir() or not info.filename.endswith(".json"):
                continue
            try:
                with archive.open(info) as handle:
                    body = handle.read(MAX_STUDY_BYTES + 1)  # the declared size may lie
            except (zipfile.BadZipFile, EOFError, OSError) as exc:
                raise SourceError(
                    f"archive {zip_path} is damaged at entry {info.filename!r}: {exc}"
                ) from exc
            if len(body) > MAX_STUDY_BYTES:
                raise SourceError(
                    f"archive {zip_path}: entry {info.filename!r} is larger than "
                    f"{MAX_STUDY_BYTES:,} bytes once decompressed (the largest real study is a "
                    "few MB); the archive is refused")
            yield info.filename, body


def dumps_study(study: dict[str, Any]) -> bytes:
    return orjson.dumps(study)
