"""One odd ClinicalTrials.gov record never stops a run.

The probe: a study with ``"statusModule": null`` or ``lastUpdatePostDateStruct: null`` failed the
whole refresh with an unnamed ``AttributeError``; the same study on two pages with different
content (the registry updated it while the search paged) failed the raw gate's critical
uniqueness check; an impossible date ("2020-13-45") became NULL with precision ``day``. Every
module of the documented v2 structure is optional: a record is rejected only when it lacks what
the loader needs, alone and named; a study seen twice keeps its newest version; an impossible
date is NULL with NULL precision, its text kept and counted."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import orjson
import pytest

from flows.landing import LandingRun
from flows.load import check_study_line, load_ctgov_run
from tests.fixtures.ctgov_records import REGISTERED_ONLY, WITH_RESULTS, study

pytestmark = pytest.mark.integration


def land(tmp_path: Path, *pages: list[dict]) -> LandingRun:
    run = LandingRun(tmp_path / "raw", "ctgov", "20260101T000000Z-odd001")
    run.start({})
    for number, records in enumerate(pages, start=1):
        run.land_records([orjson.dumps(r) for r in records], page=number, query={},
                         fetched_at=datetime(2026, 1, 1, tzinfo=UTC))
    return run


def load(tmp_path: Path, run: LandingRun, max_reject_share: float = 0.5):
    con = duckdb.connect(str(tmp_path / "loaded.duckdb"))
    result = load_ctgov_run(con, run, mode="api", max_reject_share=max_reject_share)
    return con, result


def with_module(nct_id: str, section: str, module: str | None, value) -> dict:
    record = copy.deepcopy(REGISTERED_ONLY)
    record["protocolSection"]["identificationModule"]["nctId"] = nct_id
    if module is None:
        record[section] = value
    else:
        record.setdefault(section, {})[module] = value
    return record


@pytest.mark.parametrize("status", [None, {"lastUpdatePostDateStruct": None},
                                    {"overallStatus": "RECRUITING", "startDateStruct": None},
                                    {"lastUpdatePostDateStruct": {"date": None}}, "RECRUITING",
                                    []])
def test_a_null_or_odd_status_module_is_loaded_not_a_crash(tmp_path, status):
    record = with_module("NCT09990001", "protocolSection", "statusModule", status)
    checked = check_study_line(orjson.dumps(record))
    assert checked.nct_id == "NCT09990001" and checked.last_update_post_date is None


@pytest.mark.parametrize("module", ["identificationModule", "conditionsModule",
                                    "armsInterventionsModule", "designModule"])
def test_a_null_module_the_topic_filter_reads_is_loaded(module):
    if module == "identificationModule":  # without it there is no nctId: rejected, named
        record = with_module("NCT09990002", "protocolSection", module, None)
        with pytest.raises(ValueError, match="no protocolSection.identificationModule.nctId"):
            check_study_line(orjson.dumps(record))
        return
    record = with_module("NCT09990002", "protocolSection", module, None)
    assert check_study_line(orjson.dumps(record)).nct_id == "NCT09990002"
    odd = with_module("NCT09990002", "protocolSection", "armsInterventionsModule",
                      {"interventions": None, "armGroups": {"label": "not a list"}})
    assert check_study_line(orjson.dumps(odd)).interventions_text.count("|") >= 0


def test_a_run_with_null_modules_loads_them_and_rejects_only_the_record_without_id(tmp_path):
    odd = [with_module("NCT09990010", "protocolSection", "statusModule", None),
           with_module("NCT09990011", "protocolSection", "statusModule",
                       {"overallStatus": "COMPLETED", "lastUpdatePostDateStruct": None}),
           with_module("NCT09990012", "protocolSection", None, {
               "identificationModule": {"nctId": "NCT09990012"}, "conditionsModule": None,
               "designModule": None, "armsInterventionsModule": None}),
           with_module("NCT09990013", "derivedSection", None, None),
           {"protocolSection": None, "hasResults": False}]
    con, result = load(tmp_path, land(tmp_path, odd))
    loaded = [r[0] for r in con.execute("select nct_id from raw.ctgov_studies order by 1")
              .fetchall()]
    assert loaded == ["NCT09990010", "NCT09990011", "NCT09990012", "NCT09990013"]
    assert result.records_rejected == 1
    assert "no protocolSection.identificationModule.nctId" in result.rejects[0]["reason"]


def test_the_same_study_on_two_pages_keeps_the_newest_and_records_the_other(tmp_path, settings):
    older = study("NCT09990020", "2025-01-10", conditionsModule={"conditions": ["T1D"]})
    newer = study("NCT09990020", "2025-02-20", conditionsModule={"conditions": ["T1D", "new"]})
    same_twice = study("NCT09990021", "2025-01-01")
    con, result = load(tmp_path, land(tmp_path, [newer, same_twice, study("NCT09990022")],
                                      [older, same_twice]))
    rows = con.execute("select nct_id, last_update_post_date::varchar, source_file "
                       "from raw.ctgov_studies order by nct_id").fetchall()
    assert [(n, d) for n, d, _ in rows] == [("NCT09990020", "2025-02-20"),
                                            ("NCT09990021", "2025-01-01"),
                                            ("NCT09990022", "2025-01-01")]
    (reason,) = con.execute("select reason from raw.rejected_records where record_id = "
                            "'NCT09990020'").fetchone()
    assert reason.startswith("superseded: NCT09990020 came again in this run") and \
        "page-00001.jsonl.zst line 1" in reason
    assert result.records_superseded == 1 and result.records_rejected == 0
    assert result.records_loaded == 3
    assert con.execute("select records_loaded from raw.ingest_runs").fetchone() == (3,)


def test_page_order_decides_between_versions_of_the_same_day(tmp_path):
    first = study("NCT09990030", "2025-03-01", conditionsModule={"conditions": ["first"]})
    second = study("NCT09990030", "2025-03-01", conditionsModule={"conditions": ["second"]})
    con, _ = load(tmp_path, land(tmp_path, [first], [second]))
    (payload,) = con.execute("select payload->>'$.protocolSection.conditionsModule.conditions[0]'"
                             " from raw.ctgov_studies").fetchone()
    assert payload == "second"


def test_the_raw_gate_passes_a_run_that_saw_a_study_twice(tmp_path, settings):
    """The critical uniqueness check of the raw gate, run for real (Great Expectations)."""
    from flows.quality import run_gate

    build = settings.build_database
    build.parent.mkdir(parents=True, exist_ok=True)
    run = land(tmp_path, [study("NCT09990040", "2025-01-01"), study("NCT09990041")],
               [study("NCT09990040", "2025-04-01")])
    con = duckdb.connect(str(build))
    load_ctgov_run(con, run, mode="api", max_reject_share=0.0)
    con.close()
    result = run_gate(settings, build, "raw", {"ctgov": [run.run_id]})
    assert not result.critical_failures, result.critical_failures


@pytest.mark.parametrize("field, value", [("startDateStruct", "2020-13-45"),
                                          ("completionDateStruct", "2021-02-30"),
                                          ("primaryCompletionDateStruct", "2022-00"),
                                          ("lastUpdatePostDateStruct", "2025-02-29")])
def test_an_impossible_date_is_loaded_and_counted(tmp_path, field, value):
    record = copy.deepcopy(REGISTERED_ONLY)
    record["protocolSection"]["statusModule"][field] = {"date": value}
    con, result = load(tmp_path, land(tmp_path, [record, WITH_RESULTS]))
    assert result.records_loaded == 2 and result.records_rejected == 0
    assert result.impossible_dates == [f"NCT09999901: statusModule.{field}.date {value!r}"]
    if field == "lastUpdatePostDateStruct":
        assert con.execute("select last_update_post_date from raw.ctgov_studies where nct_id = "
                           "'NCT09999901'").fetchone() == (None,)


DOCUMENTED_MODULES = {  # shared/notes/api_contracts.md §1.8-1.11: every one is optional
    "protocolSection": ("statusModule", "sponsorCollaboratorsModule", "oversightModule",
                        "descriptionModule", "conditionsModule", "designModule",
                        "armsInterventionsModule", "outcomesModule", "eligibilityModule",
                        "contactsLocationsModule", "referencesModule",
                        "ipdSharingStatementModule"),
    "resultsSection": ("participantFlowModule", "baselineCharacteristicsModule",
                       "outcomeMeasuresModule", "adverseEventsModule", "moreInfoModule"),
    "derivedSection": ("miscInfoModule", "conditionBrowseModule", "interventionBrowseModule"),
}


def full_record(nct_id: str) -> dict:
    """Every documented module present: the registration fixture plus a results section."""
    record = copy.deepcopy(REGISTERED_ONLY)
    record["protocolSection"]["identificationModule"]["nctId"] = nct_id
    record["resultsSection"] = copy.deepcopy(WITH_RESULTS["resultsSection"])
    record["hasResults"] = True
    return record


def module_nulled_records() -> list[dict]:
    """One record per documented module (and section but the one holding the id), null."""
    records, n = [], 9990200
    for section, modules in DOCUMENTED_MODULES.items():
        for module in ((None,) if section != "protocolSection" else ()) + modules:
            record = full_record(f"NCT0{n}")
            if module is None:
                record[section] = None
            else:
                record[section][module] = None
            records.append(record)
            n += 1
    return records


def inject_odd_records(snapshot: Path) -> None:
    """Odd records in a snapshot copy, for a whole refresh with pages of 40 (the refresh is
    the one of ``test_stuck_states.py``, which recovers from interruptions in the same run):
    every documented module null in turn, a null status module and a null last-update struct,
    an impossible start date, one study at both ends of the search (different pages) with
    different content, one record without an id."""
    impossible = full_record("NCT09990103")
    impossible["protocolSection"]["statusModule"]["startDateStruct"] = {"date": "2020-13-45"}
    odd = [with_module("NCT09990101", "protocolSection", "statusModule", None),
           with_module("NCT09990102", "protocolSection", "statusModule",
                       {"overallStatus": "RECRUITING", "lastUpdatePostDateStruct": None}),
           impossible, *module_nulled_records(),
           {"protocolSection": {"identificationModule": None}, "hasResults": False}]
    older = full_record("NCT09990104")
    newer = copy.deepcopy(older)
    newer["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"] = {"date": "2025-12-01"}
    newer["protocolSection"]["conditionsModule"]["keywords"] = ["updated while paging"]
    page = snapshot / "ctgov" / "studies-0001.json"
    doc = orjson.loads(page.read_bytes())
    doc["studies"] = [older, *doc["studies"], *odd, newer]
    page.write_bytes(orjson.dumps(doc))


def assert_odd_records_handled(settings, summary: dict) -> None:
    """The refresh published; only the record without an id (and the session snapshot's bad
    id) were rejected; every other odd record is staged; the impossible date is NULL with NULL
    precision, its text kept and counted; the study seen twice has its newest version."""
    from tests.helpers import query

    assert summary["published_version"], summary
    rejected = query(settings.warehouse_path, "select reason from raw.rejected_records "
                     "where run_id = ? and reason not like 'superseded:%'", [summary["run_id"]])
    assert sorted(r for (r,) in rejected) == [  # the session snapshot's bad id, and ours
        "nctId 'NCT123' does not match ^NCT\\d{8}$",
        "record has no protocolSection.identificationModule.nctId"]
    expected = {"NCT09990101", "NCT09990102", "NCT09990103", "NCT09990104",
                *(r["protocolSection"]["identificationModule"]["nctId"]
                  for r in module_nulled_records())}
    staged = {n for (n,) in query(settings.warehouse_path, "select nct_id from "
                                  "staging.stg_ctgov__studies where nct_id like 'NCT0999%'")}
    assert expected <= staged, expected - staged
    assert query(settings.warehouse_path, "select start_date, start_date_precision, "
                 "start_date_text from staging.stg_ctgov__studies where nct_id = "
                 "'NCT09990103'") == [(None, None, "2020-13-45")]
    assert query(settings.warehouse_path, "select last_update_post_date::varchar from "
                 "staging.stg_ctgov__studies where nct_id = 'NCT09990104'") == [("2025-12-01",)]
    assert summary["impossible_dates"] == 1
    assert any("superseded" in w for w in summary["warnings"])
    assert any("2020-13-45" in w for w in summary["warnings"])
