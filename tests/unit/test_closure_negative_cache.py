"""The closure's negative cache: an id ClinicalTrials.gov answered "not found" is not asked
again for a day, then after a wait that doubles with each further "not found" (up to the
maximum), so the 15-minute sheet-only runs stay local. Against a local HTTP server on
127.0.0.1 (the real client and ``fetch_by_id``) that counts the requests it gets."""

from __future__ import annotations

import re

import duckdb
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from flows.closure import fetchers, resolve
from flows.db import ensure_raw_schema
from flows.settings import Settings

UNKNOWN = ("NCT09999901", "NCT09999902", "NCT09999903")  # the registry does not know them
NAMED = {("ClinicalTrials.gov", nct): {"outcome_sheet:sheet.csv"} for nct in UNKNOWN}


@pytest.fixture
def registry():
    server = HTTPServer(host="127.0.0.1", port=0)
    server.expect_request(re.compile(r"/studies/.*")).respond_with_handler(
        lambda request: Response('{"message": "not found"}', status=404,
                                 content_type="application/json"))
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def settings(tmp_path, registry):
    return Settings(data_dir=tmp_path / "data", ctgov_base_url=registry.url_for("/"),
                    http_max_attempts=1, ctgov_requests_per_second=100)


@pytest.fixture
def con():
    con = duckdb.connect()
    ensure_raw_schema(con)
    yield con
    con.close()


def sheet_run(con, settings, run_id: str):
    """The closure of one sheet-only live run (the same warehouse: its checks are kept)."""
    with fetchers(settings, "live") as fetch_by_registry:
        return resolve(con, settings, "live", fetch_by_registry, run_id, NAMED)


def requests_for_studies(registry) -> list[str]:
    return [request.path for request, _ in registry.log if request.path.startswith("/studies/")]


def age_checks(con, hours: float) -> None:
    """As if the checks so far were made ``hours`` earlier."""
    con.execute(f"update raw.reference_checks set checked_at = checked_at - interval {hours} hour")


def test_a_second_sheet_run_makes_no_request_for_the_known_unknown_ids(con, settings, registry):
    first = sheet_run(con, settings, "closure-1")
    assert sorted(requests_for_studies(registry)) == [f"/studies/{nct}" for nct in UNKNOWN]
    assert first.not_found == 3
    registry.clear_log()

    second = sheet_run(con, settings, "closure-2")
    assert requests_for_studies(registry) == []
    assert second.not_found == 0  # nothing new answered: a no-op run stays a no-op
    assert {u["registry_id"] for u in second.unresolved} == set(UNKNOWN)
    rows = con.execute("""select status, reason, asked_registry from raw.reference_checks
                          where run_id = 'closure-2'""").fetchall()
    assert {(status, asked) for status, _, asked in rows} == {("not_found", False)}
    assert all("does not know" in reason and "not asked again before" in reason
               for _, reason, _ in rows)


def test_the_wait_is_a_day_then_doubles_with_each_not_found(con, settings, registry):
    sheet_run(con, settings, "closure-1")
    age_checks(con, 23)
    registry.clear_log()
    sheet_run(con, settings, "closure-2")
    assert requests_for_studies(registry) == [], "asked again within a day"

    age_checks(con, 2)  # 25 h since the registry was asked
    sheet_run(con, settings, "closure-3")
    assert len(requests_for_studies(registry)) == 3, "asked again after a day"
    registry.clear_log()

    age_checks(con, 25)  # the second "not found" in a row: two days now
    sheet_run(con, settings, "closure-4")
    assert requests_for_studies(registry) == []
    age_checks(con, 24)
    sheet_run(con, settings, "closure-5")
    assert len(requests_for_studies(registry)) == 3


def test_the_wait_never_exceeds_the_maximum(con, tmp_path, registry):
    settings = Settings(data_dir=tmp_path / "data", ctgov_base_url=registry.url_for("/"),
                        http_max_attempts=1, ctgov_requests_per_second=100,
                        closure_not_found_retry_hours=24, closure_not_found_max_retry_hours=48)
    for day in range(4):  # not found four days in a row: 24, 48, 96 -> 48 h
        sheet_run(con, settings, f"closure-{day}")
        age_checks(con, 49)
    registry.clear_log()
    sheet_run(con, settings, "closure-last")
    assert len(requests_for_studies(registry)) == 3

