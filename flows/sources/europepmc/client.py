"""Europe PMC REST search with cursorMark paging (resultType=core, format=json)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flows.errors import SourceError
from flows.settings import Settings
from flows.sources.http import Limits, PoliteClient, RetryPolicy


def make_client(settings: Settings, transport: Any = None) -> PoliteClient:
    return PoliteClient(
        settings.europepmc_base_url,
        source="europepmc",
        requests_per_second=3.0,
        timeout=settings.http_timeout_seconds,
        retry=RetryPolicy(settings.http_max_attempts, settings.http_backoff_initial_seconds,
                          settings.http_backoff_max_seconds),
        limits=Limits.from_settings(settings),
        transport=transport,
    )


def iter_search_pages(
    client: PoliteClient, query: str, page_size: int = 1000, start_cursor: str = "*"
) -> Iterator[tuple[str, list[dict[str, Any]], str | None]]:
    """Yield ``(cursor sent, results, next cursor)``; stop when the cursor stops advancing.

    Europe PMC signals errors with HTTP 200 and an ``errCode`` body: those raise.
    """
    cursor = start_cursor
    seen_cursors = {start_cursor}
    while True:
        params = {"query": query, "format": "json", "resultType": "core",
                  "pageSize": str(page_size), "cursorMark": cursor}
        body = client.get_json("/search", params)
        if not isinstance(body, dict):
            raise SourceError(f"europepmc search returned a non-object body: {str(body)[:200]}")
        if "errCode" in body:
            raise SourceError(
                f"europepmc search failed (errCode {body.get('errCode')}): {body.get('errMsg')}"
            )
        results = (body.get("resultList") or {}).get("result") or []
        next_cursor = body.get("nextCursorMark")
        if results:
            yield cursor, results, next_cursor
        if not results or not next_cursor or next_cursor == cursor:
            return
        if next_cursor in seen_cursors:
            raise SourceError(f"europepmc search returned cursorMark {next_cursor!r} again: the "
                              "paging loops, so the search is stopped here")
        seen_cursors.add(next_cursor)
        cursor = next_cursor
