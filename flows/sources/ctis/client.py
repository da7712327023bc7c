"""EU CTIS public portal JSON endpoints (search and retrieve), undocumented and unauthenticated.

Pages start at 1: page 0 answers HTTP 200 with totalRecords 0 for every query, so a client that
starts at 0 silently gets nothing. Same client discipline as ClinicalTrials.gov (rate limit,
retries with backoff, Retry-After).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import orjson

from flows.errors import SourceError
from flows.settings import Settings
from flows.sources.http import Limits, PoliteClient, RetryPolicy

PAGE_SIZE = 100


def make_client(settings: Settings, transport: Any = None) -> PoliteClient:
    return PoliteClient(
        settings.ctis_base_url, source="ctis", requests_per_second=1.0,
        timeout=settings.http_timeout_seconds,
        retry=RetryPolicy(settings.http_max_attempts, settings.http_backoff_initial_seconds,
                          settings.http_backoff_max_seconds),
        limits=Limits.from_settings(settings),
        transport=transport,
    )


def iter_search_pages(
    client: PoliteClient, criteria: dict[str, Any], page_size: int = PAGE_SIZE
) -> Iterator[tuple[int, list[dict[str, Any]], int]]:
    """Yield ``(page number, rows, totalRecords)`` from page 1 until every record was seen."""
    page, seen, seen_pages = 1, 0, set()
    while True:
        body = {"pagination": {"page": page, "size": page_size},
                "sort": {"property": "decisionDate", "direction": "DESC"},
                "searchCriteria": criteria}
        response = client.request("POST", "/search", json=body).json()
        if not isinstance(response, dict) or "data" not in response:
            raise SourceError(f"ctis search page {page} returned an unexpected body: "
                              f"{str(response)[:200]}")
        rows = response.get("data") or []
        total = int((response.get("pagination") or {}).get("totalRecords",
                                                            response.get("totalRecords", 0)) or 0)
        if not rows:
            return
        fingerprint = hashlib.sha256(orjson.dumps(rows, option=orjson.OPT_SORT_KEYS)).hexdigest()
        if fingerprint in seen_pages:
            raise SourceError(f"ctis search page {page} repeats an earlier page: the paging "
                              "loops, so the search is stopped here")
        seen_pages.add(fingerprint)
        yield page, rows, total
        seen += len(rows)
        if seen >= total:
            return
        page += 1


def retrieve(client: PoliteClient, ct_number: str) -> dict[str, Any]:
    return client.get_json(f"/retrieve/{ct_number}")


def fetch_trial(client: PoliteClient, ct_number: str) -> dict[str, Any] | None:
    """One trial by EU CT number, in the shape the search pages land (id + retrieve detail)."""
    detail = client.get_json(f"/retrieve/{ct_number}", missing_ok=True)
    if detail is None:
        return None
    if not isinstance(detail, dict):
        raise SourceError(f"ctis retrieve {ct_number} returned an unexpected body: "
                          f"{str(detail)[:200]}")
    return {"ctNumber": ct_number, "detail": detail}
