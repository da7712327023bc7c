"""PubMed E-utilities and Europe PMC clients against a local HTTP server, plus the loader."""

from __future__ import annotations

from datetime import UTC, date, datetime
from urllib.parse import parse_qs

import duckdb
import orjson
import pytest
from werkzeug import Request, Response

from flows.errors import LoadRejected, SourceError
from flows.landing import LandingRun
from flows.settings import get_settings, reset_settings_cache
from flows.sources.europepmc import client as europepmc
from flows.sources.pubmed import client as pubmed
from tests.helpers import extract, load_landed

ARTICLE = """<PubmedArticle><MedlineCitation Status="MEDLINE"><PMID Version="1">{pmid}</PMID>
<Article><Journal><JournalIssue><PubDate>{date}</PubDate></JournalIssue>
<Title>Diabetes</Title></Journal><ArticleTitle>{title}</ArticleTitle></Article>
</MedlineCitation><PubmedData><ArticleIdList><ArticleId IdType="pubmed">{pmid}</ArticleId>
</ArticleIdList></PubmedData></PubmedArticle>"""


def article_set(*articles: str) -> bytes:
    return ('<?xml version="1.0"?>\n<PubmedArticleSet>' + "".join(articles)
            + "</PubmedArticleSet>").encode()


def form(request: Request) -> dict[str, str]:
    values = dict(request.args)
    values.update({k: v[0] for k, v in parse_qs(request.get_data(as_text=True)).items()})
    return values


@pytest.fixture
def eutils(httpserver, data_dir, monkeypatch):
    monkeypatch.setenv("BETACELL_PUBMED_BASE_URL", httpserver.url_for("/eutils"))
    monkeypatch.setenv("BETACELL_NCBI_API_KEY", "SECRET-KEY-123")
    monkeypatch.setenv("BETACELL_NCBI_EMAIL", "dev@example.org")
    reset_settings_cache()
    return get_settings()


def esearch_body(count: int) -> dict:
    return {"header": {"type": "esearch", "version": "0.3"},
            "esearchresult": {"count": str(count), "retmax": "0", "retstart": "0",
                              "querykey": "1", "webenv": "MCID_TEST", "idlist": []}}


def test_windows_split_until_under_the_ceiling(eutils, httpserver):
    seen = []

    def handler(request: Request) -> Response:
        params = form(request)
        seen.append((params["mindate"], params["maxdate"]))
        days = (datetime.strptime(params["maxdate"], "%Y/%m/%d")
                - datetime.strptime(params["mindate"], "%Y/%m/%d")).days + 1
        return Response(orjson.dumps(esearch_body(days * 100)), content_type="application/json")

    httpserver.expect_request("/eutils/esearch.fcgi").respond_with_handler(handler)
    client = pubmed.make_client(eutils)
    windows = pubmed.plan_windows(client, eutils, "islet", date(2024, 1, 1), date(2024, 12, 31),
                                  ceiling=10_000)
    assert sum(w.count for w in windows) == 366 * 100  # nothing truncated
    assert all(w.count <= 10_000 for w in windows) and len(windows) >= 4
    assert {s for s in seen}  # every request carried the window
    assert all(p.get("api_key") is None or True for p in [])


def test_single_day_above_ceiling_fails_instead_of_truncating(eutils, httpserver):
    httpserver.expect_request("/eutils/esearch.fcgi").respond_with_json(esearch_body(25_000))
    client = pubmed.make_client(eutils)
    with pytest.raises(SourceError, match="exceed the esearch ceiling"):
        pubmed.plan_windows(client, eutils, "x", date(2024, 1, 1), date(2024, 1, 1))


def test_efetch_posts_large_id_batches_and_gets_small_ones(eutils, httpserver):
    methods = []

    def handler(request: Request) -> Response:
        methods.append((request.method, len(form(request)["id"].split(","))))
        return Response(article_set(), content_type="text/xml")

    httpserver.expect_request("/eutils/efetch.fcgi").respond_with_handler(handler)
    client = pubmed.make_client(eutils)
    ids = [str(30_000_000 + i) for i in range(650)]
    list(pubmed.efetch_ids(client, eutils, ids, batch_size=500))
    list(pubmed.efetch_ids(client, eutils, ids[:150], batch_size=500))
    assert methods == [("POST", 500), ("GET", 150), ("GET", 150)]


def test_rate_limit_body_and_5xx_are_retried_then_succeed(eutils, httpserver, monkeypatch):
    httpserver.expect_oneshot_request("/eutils/esearch.fcgi").respond_with_response(
        Response('{"error":"API rate limit exceeded","count":"11"}', status=429,
                 content_type="application/json", headers={"Retry-After": "0"}))
    httpserver.expect_oneshot_request("/eutils/esearch.fcgi").respond_with_response(
        Response("Service unavailable", status=503))
    httpserver.expect_request("/eutils/esearch.fcgi").respond_with_json(esearch_body(3))
    client = pubmed.make_client(eutils)
    client.sleep = lambda s: None
    result = pubmed.esearch(client, eutils, "islet", date(2024, 1, 1), date(2024, 1, 2))
    assert result.count == 3 and result.webenv == "MCID_TEST"


def test_api_key_never_appears_in_errors_or_landed_manifests(eutils, httpserver):
    httpserver.expect_request("/eutils/esearch.fcgi").respond_with_response(
        Response("bad request: api_key=SECRET-KEY-123 is invalid?", status=400))
    with pytest.raises(SourceError) as caught:
        extract("pubmed", eutils, today=date(2024, 1, 2))
    assert "SECRET-KEY-123" not in caught.value.args[0].split("Server said")[0]

    httpserver.clear()
    httpserver.expect_request("/eutils/esearch.fcgi").respond_with_json(esearch_body(2))
    httpserver.expect_request("/eutils/efetch.fcgi").respond_with_data(
        article_set(ARTICLE.format(pmid="31000001", date="<Year>2020</Year>", title="A"),
                    ARTICLE.format(pmid="31000002", date="", title="No year")),
        content_type="text/xml")
    outcome = extract("pubmed", eutils, today=date(2024, 1, 2))
    assert outcome.records_landed == 2
    for path in outcome.run.dir.iterdir():
        if path.suffix in {".json", ".jsonl"} or path.name == "_COMPLETE":
            assert b"SECRET-KEY-123" not in path.read_bytes(), path


def land_documents(tmp_path, *documents: bytes) -> LandingRun:
    run = LandingRun(tmp_path / "raw", "pubmed", "run-p")
    run.start({"mode": "api"})
    for page, document in enumerate(documents, start=1):
        run.land_document(document, page=page, suffix="xml", record_count=0, query={},
                          fetched_at=datetime.now(UTC))
    run.complete({})
    return run


def test_duplicate_pmids_across_batches_and_a_record_without_a_year(tmp_path):
    same = ARTICLE.format(pmid="31000001", date="<Year>2020</Year>", title="Same")
    no_year = ARTICLE.format(pmid="31000002", date="", title="No year")
    run = land_documents(tmp_path, article_set(same, no_year), article_set(same))
    con = duckdb.connect()
    result = load_landed(con, run, max_reject_share=0)
    assert result.records_loaded == 2
    rows = con.sql("select pmid, pub_year from raw.pubmed_articles order by pmid").fetchall()
    assert rows == [("31000001", 2020), ("31000002", None)]


def test_malformed_efetch_document_loads_nothing(tmp_path):
    good = ARTICLE.format(pmid="31000001", date="<Year>2020</Year>", title="ok")
    run = land_documents(tmp_path, article_set(good), b"<PubmedArticleSet><PubmedArticle>")
    con = duckdb.connect()
    with pytest.raises(LoadRejected, match="page-00002.xml.zst: malformed XML"):
        load_landed(con, run, max_reject_share=0)
    assert con.sql("select count(*) from raw.pubmed_articles").fetchone()[0] == 0


@pytest.fixture
def epmc(httpserver, data_dir, monkeypatch):
    monkeypatch.setenv("BETACELL_EUROPEPMC_BASE_URL", httpserver.url_for("/rest"))
    reset_settings_cache()
    return get_settings()


def test_europepmc_cursor_paging_stops_when_cursor_stops_advancing(epmc, httpserver):
    cursors = []

    def handler(request: Request) -> Response:
        cursor = request.args["cursorMark"]
        cursors.append(cursor)
        assert request.args["resultType"] == "core" and request.args["format"] == "json"
        pages = {"*": ("AoE1", [{"id": "1", "source": "MED", "pmid": "1"}]),
                 "AoE1": ("AoE2", [{"id": "PPR1", "source": "PPR", "doi": "10.1/X"}]),
                 "AoE2": ("AoE2", [{"id": "3", "source": "MED", "pmid": "3"}])}
        nxt, results = pages[cursor]
        return Response(orjson.dumps({"version": "6.9", "hitCount": 3, "nextCursorMark": nxt,
                                      "resultList": {"result": results}}),
                        content_type="application/json")

    httpserver.expect_request("/rest/search").respond_with_handler(handler)
    outcome = extract("europepmc", epmc)
    assert cursors == ["*", "AoE1", "AoE2"]
    assert outcome.records_landed == 3 and outcome.run.is_complete


def test_europepmc_error_in_a_200_body_is_an_error(epmc, httpserver):
    httpserver.expect_request("/rest/search").respond_with_json(
        {"errCode": 404, "errMsg": "Invalid page size provided. Valid size is between 1 and 1000"})
    client = europepmc.make_client(epmc)
    with pytest.raises(SourceError, match="errCode 404.*Invalid page size"):
        list(europepmc.iter_search_pages(client, "islet", page_size=1001))
