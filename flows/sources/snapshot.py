"""Serve the shipped snapshot as if it were the live API.

``--source snapshot`` plugs this transport under the very same :class:`PoliteClient`, paging
loop, landing and loader as live data, so the offline run exercises the production path.
Only what the offline replay needs is implemented: ``/version``, ``/studies`` with ``pageSize``,
``pageToken`` and the ``LastUpdatePostDate`` range filter.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import orjson

from flows.errors import BetacellError

RANGE_FILTER = re.compile(r"AREA\[LastUpdatePostDate\]RANGE\[(\d{4}-\d{2}-\d{2}),\s*MAX\]")


def _field(study: Any, *path: str) -> Any:
    """A value inside a study, None where any module on the way is absent, null or odd."""
    for key in path:
        study = study.get(key) if isinstance(study, dict) else None
    return study


def _last_update(study: dict[str, Any]) -> str:
    value = _field(study, "protocolSection", "statusModule", "lastUpdatePostDateStruct", "date")
    return value if isinstance(value, str) else ""


class CtgovSnapshotTransport(httpx.BaseTransport):
    def __init__(self, snapshot_dir: Path) -> None:
        self.root = Path(snapshot_dir) / "ctgov"
        version_file = self.root / "version.json"
        if not version_file.exists():
            raise BetacellError(
                f"no ClinicalTrials.gov snapshot at {self.root} (expected version.json and "
                "studies-*.json); set BETACELL_SNAPSHOT_DIR or use --source live"
            )
        self.version = orjson.loads(version_file.read_bytes())
        self.studies: list[dict[str, Any]] = []
        for page_file in sorted(self.root.glob("studies-*.json")):
            self.studies.extend(orjson.loads(page_file.read_bytes())["studies"])

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.rstrip("/")
        if path.endswith("/version"):
            return httpx.Response(200, json=self.version)
        if path.endswith("/studies"):
            return self._studies(request)
        if "/studies/" in path:
            return self._study(path.rsplit("/", 1)[1])
        return httpx.Response(404, text=f"snapshot has no resource {path}")

    def _study(self, nct_id: str) -> httpx.Response:
        for study in self.studies:
            if _field(study, "protocolSection", "identificationModule", "nctId") == nct_id:
                return httpx.Response(200, content=orjson.dumps(study),
                                      headers={"content-type": "application/json"})
        return httpx.Response(404, json={"message": f"Study {nct_id} not found"})

    def _studies(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        studies = self.studies
        if advanced := params.get("filter.advanced"):
            match = RANGE_FILTER.fullmatch(advanced.strip())
            if not match:
                return httpx.Response(400, text=f"snapshot cannot evaluate filter {advanced!r}")
            since = match.group(1)
            studies = [s for s in studies if _last_update(s) >= since]
        page_size = min(int(params.get("pageSize", "10") or 10), 1000) or 10
        token = params.get("pageToken", "0") or "0"
        if not token.isdigit() or int(token) > len(studies):  # as the registry answers
            return httpx.Response(400, text=f"Invalid pageToken '{token}'")
        offset = int(token)
        page = studies[offset : offset + page_size]
        body: dict[str, Any] = {"studies": page}
        if params.get("countTotal") == "true":
            body["totalCount"] = len(studies)
        if offset + page_size < len(studies):
            body["nextPageToken"] = str(offset + page_size)
        return httpx.Response(
            200, content=orjson.dumps(body), headers={"content-type": "application/json"}
        )


class PubmedSnapshotTransport(httpx.BaseTransport):
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
