"""ICTRP exports and EU CTIS through the pipeline: quirks, merges and near misses."""

from __future__ import annotations

import duckdb
import orjson
import pytest
from werkzeug import Request, Response

from flows.settings import get_settings, reset_settings_cache

pytestmark = pytest.mark.integration


def rows(path, sql):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.sql(sql).fetchall()
    finally:
        con.close()


def test_ictrp_quirks_merges_and_near_misses(built_warehouse):
    """The session warehouse was built with tests/fixtures/ictrp/export_quirks.{xml,csv}."""
    path = built_warehouse.warehouse

    staged = {r[0]: r[1:] for r in rows(path, """select trial_id, registry, registration_date,
        enrollment_start_date, phase, countries, target_size from staging.stg_ictrp__trials""")}
    assert staged["2013-001888-23"][0] == "EudraCT"  # EUCTR id without its -DE suffix
    assert str(staged["2013-001888-23"][1]) == "2013-09-13"  # dd/mm/yyyy
    assert str(staged["2013-001888-23"][2]) == "2013-09-21"  # "21 September 2013"
    assert str(staged["CTRI/2019/05/099999"][1]) == "2019-05-13"  # CTRI dd-mm-yyyy
    assert str(staged["ChiCTR2600099991"][1]) == "2026-09-20"  # ISO
    assert staged["ChiCTR2600099991"][3] == "PHASE1/PHASE2"
    assert staged["ChiCTR2600099991"][4] == ["China", "Hong Kong"]
    assert staged["ChiCTR2600099991"][5] is None  # per-arm text, not a number
    assert staged["ChiCTR-TRC-12009999"][3] == "NA"  # legacy dashed id, N/A phase
    assert str(staged["IRCT2099020200002N1"][2]) == "2026-09-14"  # CSV export

    merges = {(m, c): (rule, merged) for m, c, rule, merged in rows(
        path, "select merged_id, canonical_trial_id, rule, is_merged from marts.trial_id_merges")}
    # bridged through its secondary id: merged into the NCT record
    assert merges[("ChiCTR2600099991", "NCT04078308")] == ("secondary_id", True)
    # same title as NCT04078308 but another sponsor and dates 14 years apart: a near miss
    assert merges[("IRCT2099010100001N1", "NCT04078308")] == ("title_sponsor_date", False)
    # the curated suspected pair is shown, not merged (no shared id, no title in the IRCT facts)
    assert merges[("IRCT2016070428786N1", "NCT04078308")][1] is False

    trials = {r[0]: r[1] for r in rows(path, "select trial_id, registry_ids from marts.dim_trials")}
    assert "ChiCTR2600099991" in trials["NCT04078308"]
    assert "ChiCTR2600099991" not in trials  # one row per real trial
    assert {"IRCT2099010100001N1", "ChiCTR-TRC-12009999", "2013-001888-23",
            "CTRI/2019/05/099999", "IRCT2016070428786N1", "ChiCTR2300072200"} <= set(trials)


def test_ctis_pages_start_at_one_and_stop_at_total(httpserver, data_dir, monkeypatch):
    monkeypatch.setenv("BETACELL_CTIS_BASE_URL", httpserver.url_for("/ctis-public-api"))
    reset_settings_cache()
    settings = get_settings()
    pages_seen = []

    def search(request: Request) -> Response:
        body = request.get_json()
        page = body["pagination"]["page"]
        pages_seen.append(page)
        if page == 0:  # what the real portal does: a silent empty answer
            return Response(orjson.dumps({"data": [], "pagination": {"totalRecords": 0}}),
                            content_type="application/json")
        data = [{"ctNumber": f"2023-5000{page}{i}-12-00", "ctTitle": f"trial {page}.{i}",
                 "trialPhase": "Phase 2"} for i in range(2 if page == 1 else 1)]
        return Response(orjson.dumps({"data": data, "pagination": {"page": page, "size": 2,
                                                                   "totalRecords": 3}}),
                        content_type="application/json")

    httpserver.expect_request("/ctis-public-api/search", method="POST").respond_with_handler(search)
    httpserver.expect_request(
        "/ctis-public-api/retrieve/2023-500010-12-00").respond_with_json(
        {"ctStatus": "Ended", "startDateEU": "2023-05-02",
         "events": {"trialEvents": [{"events": [{"notificationType": "START_OF_TRIAL",
                                                 "date": "2023-05-02"}]}]},
         "results": {"summaryResults": []}})
    httpserver.expect_request("/ctis-public-api/retrieve/2023-500011-12-00").respond_with_json(
        {"ctStatus": "Ongoing"})
    httpserver.expect_request("/ctis-public-api/retrieve/2023-500020-12-00").respond_with_json(
        {"ctStatus": "Authorised"})
    from flows.sources.ctis.client import make_client
    from tests.helpers import extract, load_landed

    client = make_client(settings)
    client.limiter.per_second = float("inf")
    outcome = extract("ctis", settings, client_=client)  # topic None: "diabetes"
    assert pages_seen == [1, 2] and outcome.records_landed == 3
    con = duckdb.connect()
    loaded = load_landed(con, outcome.run)
    assert (loaded.records_loaded, loaded.records_rejected) == (3, 0)
    status = con.sql("select payload->'detail'->>'ctStatus' from raw.ctis_trials "
                     "where record_id = '2023-500010-12-00'").fetchone()[0]
    assert status == "Ended"
