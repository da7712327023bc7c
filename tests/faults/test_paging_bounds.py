"""Paging is bounded even when the server gives no ``totalCount``.

The probe: a server handing out fresh page tokens on the same records paged 6,138 times (54 MB)
in 300 s; only the 4-hour source budget would have stopped it. Now a page that brings no record
not seen earlier in the search ends the paging (the pages before it are kept and the run goes
on), more records than ``BETACELL_CTGOV_MAX_RECORDS`` fail the search, and a source's default
time budget is what a topic search needs (30 minutes)."""

from __future__ import annotations

import itertools

import orjson
import pytest
from werkzeug import Request, Response

from flows.errors import SourceError
from flows.ingest import ingest_ctgov
from flows.settings import Settings, get_settings, reset_settings_cache
from tests.fixtures.ctgov_records import study

pytestmark = pytest.mark.integration

VERSION = {"apiVersion": "2.0.5", "dataTimestamp": "2026-10-02T09:00:04"}


@pytest.fixture
def live(httpserver, data_dir, monkeypatch):
    monkeypatch.setenv("BETACELL_CTGOV_BASE_URL", httpserver.url_for("/api/v2"))
    monkeypatch.setenv("BETACELL_CTGOV_REQUESTS_PER_SECOND", "1000")
    reset_settings_cache()
    httpserver.expect_request("/api/v2/version").respond_with_json(VERSION)
    return get_settings()


def test_fresh_tokens_on_the_same_records_without_total_count_stop_at_once(live, httpserver):
    tokens = itertools.count()
    requests = []

    def endless(request: Request) -> Response:
        requests.append(request.args.get("pageToken"))
        body = {"studies": [study("NCT09980001"), study("NCT09980002")],
                "nextPageToken": f"fresh-{next(tokens)}"}  # never a totalCount
        if len(requests) >= 200:  # the test's own bound, so the old code fails, not hangs
            del body["nextPageToken"]
        return Response(orjson.dumps(body), content_type="application/json")

    httpserver.expect_request("/api/v2/studies").respond_with_handler(endless)
    outcome = ingest_ctgov(live, source="live")
    assert len(requests) == 2 and outcome.pages_landed == 1 and outcome.run.is_complete
    assert any("brought no study not seen" in w for w in outcome.warnings)


def test_a_search_past_the_record_cap_fails_naming_the_setting(live, httpserver, monkeypatch):
    monkeypatch.setenv("BETACELL_CTGOV_MAX_RECORDS", "5")
    reset_settings_cache()
    numbers = itertools.count(1)

    def growing(request: Request) -> Response:
        body = {"studies": [study(f"NCT0997{next(numbers):04d}") for _ in range(2)],
                "nextPageToken": f"t{next(numbers)}"}
        if next(numbers) > 600:  # the test's own bound, so the old code fails, not hangs
            del body["nextPageToken"]
        return Response(orjson.dumps(body), content_type="application/json")

    httpserver.expect_request("/api/v2/studies").respond_with_handler(growing)
    with pytest.raises(SourceError, match=r"passed 5 records at page 3 \(BETACELL_CTGOV_MAX_"
                                          r"RECORDS\)"):
        ingest_ctgov(get_settings(), source="live")


def test_a_source_budget_fits_a_topic_search_and_the_archive_has_its_own(monkeypatch):
    from flows.ingest import make_ctgov_client

    for name in ("BETACELL_SOURCE_DEADLINE_SECONDS", "BETACELL_BULK_DEADLINE_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.source_deadline_seconds == 1800
    assert make_ctgov_client(settings, "live").limits.source_deadline_seconds == 1800
    bulk = make_ctgov_client(settings, "live", bulk=True)
    assert bulk.limits.source_deadline_seconds == settings.bulk_deadline_seconds == 4 * 3600
