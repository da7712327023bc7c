"""NCBI E-utilities for PubMed: esearch (history server, date windows) and efetch (XML batches);
offline, the same client over the shipped snapshot (``<snapshot>/pubmed/efetch-*.xml``).

The API key is sent as a parameter but never shown: :class:`PoliteClient` redacts it from every
message, and landing manifests store the query without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from flows.errors import BetacellError, SourceError
from flows.settings import Settings
from flows.sources.http import Limits, PoliteClient, RetryPolicy

ESEARCH_CEILING = 10_000  # PubMed esearch cannot reach beyond the first 10,000 hits of a query
POST_ABOVE_IDS = 200
TOOL = "betacell"


SNAPSHOT_BASE_URL = "http://snapshot.invalid/entrez/eutils"


def make_client(settings: Settings, transport: Any = None) -> PoliteClient:
    has_key = settings.ncbi_api_key is not None
    return PoliteClient(
        settings.pubmed_base_url,
        source="pubmed",
        requests_per_second=10.0 if has_key else 3.0,
        timeout=settings.http_timeout_seconds,
        retry=RetryPolicy(settings.http_max_attempts, settings.http_backoff_initial_seconds,
                          settings.http_backoff_max_seconds),
        secret_params=("api_key",),
        limits=Limits.from_settings(settings),
        transport=transport,
    )


def identity_params(settings: Settings) -> dict[str, str]:
    params = {"tool": TOOL}
    if settings.ncbi_email:
        params["email"] = settings.ncbi_email
    if settings.ncbi_api_key is not None:
        params["api_key"] = settings.ncbi_api_key.get_secret_value()
    return params


@dataclass(frozen=True)
class SearchResult:
    count: int
    webenv: str | None
    query_key: str | None
    mindate: date
    maxdate: date


def esearch(
    client: PoliteClient, settings: Settings, term: str, mindate: date, maxdate: date,
    datetype: str = "edat",
) -> SearchResult:
    params = {
        "db": "pubmed", "term": term, "retmode": "json", "usehistory": "y", "retmax": "0",
        "datetype": datetype, "mindate": mindate.strftime("%Y/%m/%d"),
        "maxdate": maxdate.strftime("%Y/%m/%d"), **identity_params(settings),
    }
    # long query terms go in a POST body (GET URLs have a length limit)
    body = client.request("POST", "/esearch.fcgi", data=params).json()
    result = body.get("esearchresult") if isinstance(body, dict) else None
    if not isinstance(result, dict):
        raise SourceError(f"pubmed esearch returned an unexpected body: {str(body)[:200]}")
    if "ERROR" in result:
        raise SourceError(f"pubmed esearch error: {result['ERROR']}")
    try:
        count = int(result["count"])  # numbers arrive as strings
    except (KeyError, ValueError) as exc:
        raise SourceError(f"pubmed esearch without a numeric count: {result!r:.200}") from exc
    return SearchResult(count, result.get("webenv"), result.get("querykey"), mindate, maxdate)


def plan_windows(
    client: PoliteClient, settings: Settings, term: str, mindate: date, maxdate: date,
    datetype: str = "edat", ceiling: int = ESEARCH_CEILING,
) -> list[SearchResult]:
    """Split [mindate, maxdate] until every window holds at most ``ceiling`` hits.

    Never truncates: a single day above the ceiling is an error, not a silent cut.
    """
    result = esearch(client, settings, term, mindate, maxdate, datetype)
    if result.count <= ceiling:
        return [result] if result.count else []
    if mindate >= maxdate:
        raise SourceError(
            f"pubmed: {result.count} hits on the single day {mindate} exceed the esearch ceiling "
            f"of {ceiling}; narrow the topic query"
        )
    middle = mindate + timedelta(days=(maxdate - mindate).days // 2)
    return plan_windows(client, settings, term, mindate, middle, datetype, ceiling) + plan_windows(
        client, settings, term, middle + timedelta(days=1), maxdate, datetype, ceiling
    )


def efetch_window(
    client: PoliteClient, settings: Settings, window: SearchResult, batch_size: int = 500
) -> Iterator[tuple[int, bytes]]:
    """efetch XML for one search window from the history server, ``batch_size`` at a time."""
    for retstart in range(0, window.count, batch_size):
        params = {
            "db": "pubmed", "retmode": "xml", "WebEnv": window.webenv or "",
            "query_key": window.query_key or "", "retstart": str(retstart),
            "retmax": str(batch_size), **identity_params(settings),
        }
        response = client.request("POST", "/efetch.fcgi", data=params)
        _raise_for_json_error(response.content)
        yield retstart, response.content


def efetch_ids(
    client: PoliteClient, settings: Settings, pmids: list[str], batch_size: int = 500
) -> Iterator[tuple[int, bytes]]:
    """efetch XML for explicit PMIDs; POST when a batch holds more than ~200 ids."""
    for start in range(0, len(pmids), batch_size):
        batch = pmids[start : start + batch_size]
        params = {"db": "pubmed", "retmode": "xml", "id": ",".join(batch),
                  **identity_params(settings)}
        method = "POST" if len(batch) > POST_ABOVE_IDS else "GET"
        if method == "POST":
            response = client.request("POST", "/efetch.fcgi", data=params)
        else:
            response = client.request("GET", "/efetch.fcgi", params=params)
        _raise_for_json_error(response.content)
        yield start, response.content


def _raise_for_json_error(content: bytes) -> None:
    """NCBI reports some errors (rate limit) as a JSON body even on XML requests."""
    head = content[:200].lstrip()
    if head.startswith(b"{") and b'"error"' in head:
        raise SourceError(f"pubmed efetch error: {content[:200].decode('utf-8', 'replace')}")


def make_snapshot_client(settings: Settings) -> PoliteClient:
    """The E-utilities client over the shipped snapshot, so snapshot publications take the live
    code path."""
    api = make_client(settings, transport=SnapshotTransport(settings.snapshot_path))
    api._client.base_url = SNAPSHOT_BASE_URL  # noqa: SLF001 - offline replay
    api.limiter.per_second = float("inf")
    return api


class SnapshotTransport(httpx.BaseTransport):
    """Answers esearch (count + history keys) and efetch (retstart/retmax slices) from
    ``<snapshot>/pubmed/efetch-*.xml``, so snapshot publications take the live code path."""

    def __init__(self, snapshot_dir: Path) -> None:
        from lxml import etree

        self.root = Path(snapshot_dir) / "pubmed"
        files = sorted(self.root.glob("efetch-*.xml"))
        if not files:
            raise BetacellError(f"no PubMed snapshot at {self.root} (expected efetch-*.xml)")
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        self.articles: list[bytes] = []
        for path in files:
            tree = etree.parse(str(path), parser)
            for node in tree.getroot():
                self.articles.append(etree.tostring(node, encoding="utf-8"))
        self.header = b'<?xml version="1.0" ?>\n'

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        if request.method == "POST":
            params.update(dict(httpx.QueryParams(request.content.decode())))
        path = request.url.path
        if path.endswith("/esearch.fcgi"):
            body = {"header": {"type": "esearch", "version": "0.3"},
                    "esearchresult": {"count": str(len(self.articles)), "retmax": "0",
                                      "retstart": "0", "querykey": "1", "webenv": "SNAPSHOT",
                                      "idlist": []}}
            return httpx.Response(200, content=orjson.dumps(body),
                                  headers={"content-type": "application/json"})
        if path.endswith("/efetch.fcgi"):
            start = int(params.get("retstart", "0"))
            size = int(params.get("retmax", "500"))
            chunk = b"\n".join(self.articles[start : start + size])
            return httpx.Response(
                200, content=self.header + b"<PubmedArticleSet>\n" + chunk + b"\n</PubmedArticleSet>\n",
                headers={"content-type": "text/xml"},
            )
        return httpx.Response(404, text=f"snapshot has no resource {path}")
