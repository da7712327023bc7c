"""The ClinicalTrials.gov client and landing against a local HTTP server (127.0.0.1)."""

from __future__ import annotations

import io
import zipfile
from datetime import date

import duckdb
import orjson
import pytest
from werkzeug import Request, Response

from flows.errors import SourceError
from flows.settings import get_settings, reset_settings_cache
from flows.sources.base import SourceState
from flows.sources.ctgov.client import make_client
from flows.sources.ctgov.parse import topic_filter_sql
from flows.sources.topic import load_topic
from tests.fixtures.ctgov_records import ALL_RECORDS, study
from tests.helpers import extract, load_landed

VERSION = {"apiVersion": "2.0.5", "dataTimestamp": "2026-10-02T09:00:04"}


@pytest.fixture
def live(httpserver, data_dir, monkeypatch):
    """Settings pointing the live client at the local server."""
    monkeypatch.setenv("BETACELL_CTGOV_BASE_URL", httpserver.url_for("/api/v2"))
    monkeypatch.setenv("BETACELL_CTGOV_REQUESTS_PER_SECOND", "1000")
    reset_settings_cache()
    httpserver.expect_request("/api/v2/version").respond_with_json(VERSION)
    return get_settings()


class PagedStudies:
    """Serves /studies pages keyed by pageToken and records every request's parameters."""

    def __init__(self, pages: dict[str | None, dict], fail_tokens: set[str] | None = None):
        self.pages = pages
        self.fail_tokens = fail_tokens or set()
        self.requests: list[dict[str, str]] = []

    def __call__(self, request: Request) -> Response:
        params = dict(request.args)
        self.requests.append(params)
        token = params.get("pageToken")
        if token in self.fail_tokens:
            return Response("upstream exploded", status=500)
        body = self.pages[token]
        return Response(orjson.dumps(body), content_type="application/json")


def three_pages():
    s = [study(f"NCT0999{i:04d}", f"2025-0{i}-01") for i in range(1, 6)]
    return {
        None: {"studies": s[:2], "nextPageToken": "T2", "totalCount": 5},
        "T2": {"studies": s[2:4], "nextPageToken": "T3"},
        "T3": {"studies": s[4:]},
    }


def test_multi_page_fetch_repeats_identical_parameters(live, httpserver):
    server = PagedStudies(three_pages())
    httpserver.expect_request("/api/v2/studies").respond_with_handler(server)
    outcome = extract("ctgov", live)
    assert outcome.pages_landed == 3 and outcome.records_landed == 5
    assert outcome.run.is_complete
    first, *rest = server.requests
    assert first["countTotal"] == "true" and "pageToken" not in first
    strip = lambda p: {k: v for k, v in p.items() if k not in {"pageToken", "countTotal"}}  # noqa: E731
    assert all(strip(r) == strip(first) for r in rest)
    assert [r.get("pageToken") for r in rest] == ["T2", "T3"]
    manifest = outcome.run.entries()
    assert [m.record_count for m in manifest] == [2, 2, 1]
    assert all(len(m.sha256) == 64 and m.fetched_at for m in manifest)


def test_incremental_window_uses_watermark_minus_overlap(live, httpserver):
    server = PagedStudies(three_pages())
    httpserver.expect_request("/api/v2/studies").respond_with_handler(server)
    previous = SourceState(date(2025, 3, 10), {"data_timestamp": "2026-01-01T09:00:00"})
    extract("ctgov", live, state=previous)
    assert server.requests[0]["filter.advanced"] == (
        "AREA[LastUpdatePostDate]RANGE[2025-03-08,MAX]"
    )


def test_unchanged_data_timestamp_skips_the_fetch(live, httpserver):
    previous = SourceState(date(2025, 1, 1), {"data_timestamp": VERSION["dataTimestamp"]})
    outcome = extract("ctgov", live, state=previous)
    assert outcome.run is None
    assert "unchanged" in outcome.skipped_reason


def test_a_changed_topic_is_refetched_even_when_the_data_timestamp_did_not_move(
        live, httpserver):
    server = PagedStudies(three_pages())
    httpserver.expect_request("/api/v2/studies").respond_with_handler(server)
    previous = SourceState(date(2025, 1, 1), {"data_timestamp": VERSION["dataTimestamp"],
                                              "topic_fingerprint": "an-older-topic"})
    outcome = extract("ctgov", live, state=previous)
    assert outcome.skipped_reason is None and outcome.records_landed == 5
    assert "filter.advanced" not in server.requests[0]  # a new topic searches all dates


def test_one_study_by_id(live, httpserver):
    from flows.sources.ctgov import client as ctgov

    httpserver.expect_request("/api/v2/studies/NCT09990001").respond_with_json(
        study("NCT09990001", "2025-01-01"))
    httpserver.expect_request("/api/v2/studies/NCT09990002").respond_with_json(
        {"message": "Study not found"}, status=404)
    httpserver.expect_request("/api/v2/studies/NCT09990003").respond_with_json({"odd": 1})
    with make_client(live, "live") as client:
        assert ctgov.fetch_study(client, "NCT09990001")["protocolSection"]
        assert ctgov.fetch_study(client, "NCT09990002") is None
        with pytest.raises(SourceError, match="unexpected body"):
            ctgov.fetch_study(client, "NCT09990003")


def test_phantom_token_with_empty_page_ends_paging(live, httpserver):
    pages = {
        None: {"studies": [study("NCT09990001")], "nextPageToken": "PHANTOM"},
        "PHANTOM": {"studies": [], "nextPageToken": "NEVER"},
    }
    server = PagedStudies(pages)
    httpserver.expect_request("/api/v2/studies").respond_with_handler(server)
    outcome = extract("ctgov", live)
    assert outcome.pages_landed == 1 and outcome.run.is_complete
    assert len(server.requests) == 2


def test_429_with_retry_after_is_honoured(live, httpserver):
    sleeps: list[float] = []
    httpserver.expect_ordered_request("/api/v2/version").respond_with_json(VERSION)
    httpserver.expect_oneshot_request("/api/v2/studies").respond_with_response(
        Response("Too Many Requests", status=429, headers={"Retry-After": "3"})
    )
    httpserver.expect_request("/api/v2/studies").respond_with_json(
        {"studies": [study("NCT09990002")]}
    )
    client = make_client(live, "live")
    client.sleep = sleeps.append
    client.limiter.sleep = lambda s: None
    outcome = extract("ctgov", live, client_=client)
    assert outcome.records_landed == 1
    assert 3.0 in sleeps


def test_persistent_500_fails_clearly_then_next_run_resumes(live, httpserver):
    broken = PagedStudies(three_pages(), fail_tokens={"T3"})
    httpserver.expect_request("/api/v2/studies").respond_with_handler(broken)
    with pytest.raises(SourceError, match="still failing after 3 attempts.*HTTP 500"):
        extract("ctgov", live)
    runs = list((live.raw_dir / "ctgov").iterdir())
    assert len(runs) == 1

    httpserver.clear()
    httpserver.expect_request("/api/v2/version").respond_with_json(VERSION)
    healed = PagedStudies(three_pages())
    httpserver.expect_request("/api/v2/studies").respond_with_handler(healed)
    outcome = extract("ctgov", live)
    assert outcome.run.run_id == runs[0].name
    assert outcome.resumed_from_page == 3
    assert [r.get("pageToken") for r in healed.requests] == ["T3"]
    assert outcome.records_landed == 5 and outcome.run.is_complete

    con = duckdb.connect()
    result = load_landed(con, outcome.run, max_reject_share=0.0)
    assert result.records_loaded == 5
    assert con.sql("select count(distinct nct_id) from raw.ctgov_studies").fetchone()[0] == 5


def test_400_fails_at_once_quoting_the_server(live, httpserver):
    httpserver.expect_request("/api/v2/studies").respond_with_response(
        Response("`filter.phase` is unknown parameter", status=400, content_type="text/plain")
    )
    with pytest.raises(SourceError, match="HTTP 400.*filter.phase"):
        extract("ctgov", live)


def make_archive(records: list[bytes], truncate: bool = False) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for i, body in enumerate(records):
            archive.writestr(f"ctg-studies/NCT{i:08d}.json", body)
    data = buffer.getvalue()
    return data[: len(data) // 2] if truncate else data


def test_bulk_archive_is_streamed_landed_and_topic_filtered(live, httpserver):
    off_topic = study(
        "NCT09998888",
        conditionsModule={"conditions": ["Breast Cancer"]},
        armsInterventionsModule={"interventions": [{"name": "Palbociclib"}]},
    )
    records = [orjson.dumps(r, option=orjson.OPT_INDENT_2) for r in ALL_RECORDS]
    records.append(orjson.dumps(off_topic))
    httpserver.expect_request(
        "/api/v2/studies/download", query_string={"format": "json.zip"}
    ).respond_with_data(make_archive(records), content_type="application/zip")
    outcome = extract("ctgov", live, full=True)
    assert outcome.mode == "bulk" and outcome.records_landed == 6
    assert not list((live.build_dir / "downloads").glob("*.zip"))  # archive removed after landing

    con = duckdb.connect()
    assert outcome.load_filter == topic_filter_sql(load_topic(live.topic_file))
    result = load_landed(con, outcome.run, mode="bulk", max_reject_share=0.0,
                         load_filter=outcome.load_filter)
    kept = {r[0] for r in con.sql("select nct_id from raw.ctgov_studies").fetchall()}
    assert "NCT09998888" not in kept  # filtered in SQL, not by a search engine
    assert "NCT09999901" in kept and "NCT09999902" in kept
    assert result.records_rejected == 0


def test_truncated_archive_fails_naming_it(live, httpserver):
    records = [orjson.dumps(r) for r in ALL_RECORDS]
    httpserver.expect_request("/api/v2/studies/download").respond_with_data(
        make_archive(records, truncate=True), content_type="application/zip"
    )
    with pytest.raises(SourceError, match="truncated or not a zip"):
        extract("ctgov", live, full=True)
