"""Referential closure: what is named but missing is fetched by id, or listed with a reason.

Which ids are named and which the warehouse lacks is the dbt model ``int_trial_references``
(its unit test: ``dbt_project/models/intermediate/_intermediate__unit_tests.yml``); here, the
closure reading it, and every kind of attempt recorded."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import pytest

from flows.closure import fetchers, missing_references, resolve
from flows.db import ensure_raw_schema
from flows.errors import SourceError
from flows.settings import Settings
from flows.sources.ctgov.resource import RESOURCE as CTGOV

NOW = datetime(2026, 12, 1, tzinfo=UTC)
MISSING = {("ClinicalTrials.gov", "NCT00000001"): {"outcome_sheet:sheet.csv"},
           ("ClinicalTrials.gov", "NCT00000002"): {"outcome_sheet:sheet.csv"},
           ("ClinicalTrials.gov", "NCT00000003"): {"pubmed_databank:pmid:1"},
           ("ChiCTR", "ChiCTR2300000001"): {"outcome_sheet:sheet.csv"}}


@pytest.fixture
def con():
    con = duckdb.connect()
    ensure_raw_schema(con)
    return con


def test_the_missing_ids_are_those_int_trial_references_finds_outside_the_warehouse(con):
    con.execute("create schema intermediate")
    con.execute("""create table intermediate.int_trial_references as select * from (values
        ('ClinicalTrials.gov', 'NCT00000002', 'outcome_sheet:sheet.csv', false),
        ('ClinicalTrials.gov', 'NCT00000002', 'curated_link', false),
        ('ClinicalTrials.gov', 'NCT00000009', 'outcome_sheet:sheet.csv', true),
        ('ChiCTR', 'ChiCTR2300000001', 'outcome_sheet:sheet.csv', false))
        as t(registry, registry_id, referenced_by, is_in_warehouse)""")
    assert missing_references(con) == {
        ("ClinicalTrials.gov", "NCT00000002"): {"outcome_sheet:sheet.csv", "curated_link"},
        ("ChiCTR", "ChiCTR2300000001"): {"outcome_sheet:sheet.csv"}}


def test_the_fetchers_are_the_resources_that_fetch_by_id(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", snapshot_dir=tmp_path / "none")
    with fetchers(settings, "snapshot") as offline:  # no snapshot: nothing can fetch
        assert {r: (res.name, f) for r, (res, f) in offline.items()} == {
            "ClinicalTrials.gov": ("ctgov", None), "EU CT": ("ctis", None)}
    with fetchers(settings, "live") as live:
        assert all(callable(fetch) for _, fetch in live.values())


def test_fetched_not_found_failed_and_unfetchable_are_each_recorded(con, tmp_path):
    def fetch(nct_id):
        if nct_id == "NCT00000001":
            return {"protocolSection": {"identificationModule": {"nctId": nct_id}}}
        if nct_id == "NCT00000002":
            raise SourceError("ctgov /studies/NCT00000002 timed out")
        return None

    settings = Settings(data_dir=tmp_path / "data")
    result = resolve(con, settings, "live", {"ClinicalTrials.gov": (CTGOV, fetch)},
                     "closure-1", MISSING)
    checks = {r: (s, reason) for r, s, reason in con.execute(
        "select registry_id, status, reason from raw.reference_checks").fetchall()}
    assert checks["NCT00000001"] == ("fetched", None)
    assert checks["NCT00000002"][0] == "unresolved" and "timed out" in checks["NCT00000002"][1]
    assert "not found" in checks["NCT00000003"][1]
    assert "only through WHO ICTRP exports" in checks["ChiCTR2300000001"][1]
    assert result.fetched == {"ctgov": 1} and result.resources == {"ctgov": CTGOV}
    (run,) = result.runs["ctgov"]
    assert run.is_complete and sum(e.record_count for e in run.entries()) == 1


def test_a_registry_its_source_cannot_fetch_in_this_mode_says_so(con, tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    resolve(con, settings, "snapshot", {"ClinicalTrials.gov": (CTGOV, None)}, "closure-3",
            {("ClinicalTrials.gov", "NCT00000001"): {"curated_link"}})
    (reason,) = con.execute("select reason from raw.reference_checks").fetchone()
    assert reason == "ClinicalTrials.gov is not fetched by id in snapshot mode"


def test_the_per_run_budget_bounds_the_fetches(con, tmp_path):
    calls = []
    settings = Settings(data_dir=tmp_path / "data", closure_max_fetches=1)
    resolve(con, settings, "live", {"ClinicalTrials.gov": (CTGOV, lambda i: calls.append(i))},
            "closure-2", MISSING)
    assert len(calls) == 1
    reasons = [r for (r,) in con.execute("select reason from raw.reference_checks").fetchall()]
    assert any(r and "more than 1 missing ids" in r for r in reasons)
