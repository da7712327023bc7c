"""A local stand-in for the public APIs (127.0.0.1, a thread), serving a :class:`Corpus` with the
real endpoints' shapes: ClinicalTrials.gov v2 (/version, paged /studies, /studies/{nctId}),
NCBI E-utilities (esearch JSON with history, efetch XML), Europe PMC (cursorMark search) and
EU CTIS (search pages from 1, retrieve). Faults can be switched on per endpoint to see how the
pipeline copes (e.g. ``faults["ctis"] = "shape"``: CTIS answers a shape it does not expect)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs

import orjson
from werkzeug import Request, Response
from werkzeug.serving import make_server

from tests.standin.corpus import Corpus

RANGE = re.compile(r"AREA\[LastUpdatePostDate\]RANGE\[(\d{4}-\d{2}-\d{2}),\s*MAX\]")


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status=status, content_type="application/json")


def _form(request: Request) -> dict[str, str]:
    values = dict(request.args)
    if request.method == "POST" and request.mimetype != "application/json":
        values.update({k: v[0] for k, v in parse_qs(request.get_data(as_text=True)).items()})
    return values


class StandIn:
    def __init__(self, corpus: Corpus) -> None:
        self.corpus = corpus
        self.faults: dict[str, str] = {}
        self.requests: list[tuple[str, str]] = []

    # -- ClinicalTrials.gov ---------------------------------------------------------------------
    def ctgov(self, request: Request, path: str) -> Response:
        if self.faults.get("ctgov") == "500":
            return Response("upstream exploded", status=500)
        if path == "version":
            return _json(self.corpus.version)
        if path == "studies":
            studies = self.corpus.search
            if advanced := request.args.get("filter.advanced"):
                since = RANGE.fullmatch(advanced.strip()).group(1)
                studies = [s for s in studies if (s["protocolSection"].get("statusModule", {})
                                                  .get("lastUpdatePostDateStruct", {})
                                                  .get("date", "")) >= since]
            size = min(int(request.args.get("pageSize") or 10), 1000)
            offset = int(request.args.get("pageToken") or 0)
            body: dict[str, Any] = {"studies": studies[offset:offset + size]}
            if request.args.get("countTotal") == "true":
                body["totalCount"] = len(studies)
            if offset + size < len(studies):
                body["nextPageToken"] = str(offset + size)
            return _json(body)
        if path.startswith("studies/"):
            study = self.corpus.registry.get(path.split("/", 1)[1])
            return _json(study) if study else _json(
                {"message": f"Study {path.split('/', 1)[1]} not found"}, 404)
        return Response("no such resource", status=404)

    # -- NCBI E-utilities ------------------------------------------------------------------------
    def eutils(self, request: Request, path: str) -> Response:
        params = _form(request)
        if self.faults.get("eutils") == "echo":  # NCBI's error bodies echo the request
            return Response(f"<eEfetchResult><ERROR>Invalid request {request.url} "
                            f"(api_key={params.get('api_key')})</ERROR></eEfetchResult>",
                            status=400, content_type="text/xml")
        if path == "esearch.fcgi":
            return _json({"header": {"type": "esearch", "version": "0.3"},
                          "esearchresult": {"count": str(len(self.corpus.pubmed)), "retmax": "0",
                                            "retstart": "0", "querykey": "1",
                                            "webenv": "MCID_STANDIN", "idlist": []}})
        if path == "efetch.fcgi":
            start, size = int(params.get("retstart", 0)), int(params.get("retmax", 500))
            chunk = b"\n".join(self.corpus.pubmed[start:start + size])
            echo = b""
            if self.faults.get("eutils") == "echo-ok":  # the request echoed in a 200 reply
                echo = f"<!-- request api_key={params.get('api_key')} -->\n".encode()
            return Response(b'<?xml version="1.0" ?>\n' + echo + b"<PubmedArticleSet>\n"
                            + chunk + b"\n</PubmedArticleSet>\n", content_type="text/xml")
        return Response("no such resource", status=404)

    # -- Europe PMC ------------------------------------------------------------------------------
    def europepmc(self, request: Request, path: str) -> Response:
        cursor = request.args.get("cursorMark", "*")
        results = self.corpus.europepmc if cursor == "*" else []
        return _json({"version": "6.9", "hitCount": len(self.corpus.europepmc),
                      "nextCursorMark": "AoE-end", "resultList": {"result": results}})

    # -- EU CTIS ---------------------------------------------------------------------------------
    def ctis(self, request: Request, path: str) -> Response:
        if self.faults.get("ctis") == "shape":
            return _json({"items": [], "page": {"number": 1}})  # not the shape CTIS answers
        if path == "search":
            page = request.get_json()["pagination"]["page"]
            rows = self.corpus.ctis if page == 1 else []
            return _json({"data": rows, "pagination": {"page": page,
                                                       "totalRecords": len(self.corpus.ctis)}})
        if path.startswith("retrieve/"):
            number = path.split("/", 1)[1]
            detail = next((r.get("detail") for r in self.corpus.ctis
                           if r.get("ctNumber") == number), None)
            return _json(detail) if detail else _json({"message": "not found"}, 404)
        return Response("no such resource", status=404)

    def __call__(self, environ, start_response):
        request = Request(environ)
        service, _, path = request.path.strip("/").partition("/")
        self.requests.append((service, path))
        handler = {"ctgov": lambda r, p: self.ctgov(r, p.removeprefix("api/v2/")),
                   "eutils": self.eutils, "europepmc": self.europepmc,
                   "ctis": self.ctis}.get(service)
        response = handler(request, path) if handler else Response("unknown", status=404)
        return response(environ, start_response)


@contextmanager
def serve(corpus: Corpus) -> Iterator[tuple[StandIn, dict[str, str]]]:
    """Run the stand-in on 127.0.0.1; yields it and the BETACELL_* base-URL settings."""
    app = StandIn(corpus)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        yield app, {"BETACELL_CTGOV_BASE_URL": f"{base}/ctgov/api/v2",
                    "BETACELL_PUBMED_BASE_URL": f"{base}/eutils",
                    "BETACELL_EUROPEPMC_BASE_URL": f"{base}/europepmc",
                    "BETACELL_CTIS_BASE_URL": f"{base}/ctis",
                    "BETACELL_CTGOV_REQUESTS_PER_SECOND": "1000"}
    finally:
        server.shutdown()
        thread.join(timeout=10)
