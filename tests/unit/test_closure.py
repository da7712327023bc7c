"""Referential closure: what is named but missing is fetched by id, or listed with a reason."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import orjson
import pytest

from flows.closure import missing_references, resolve
from flows.db import ensure_raw_schema
from flows.errors import SourceError
from flows.settings import Settings

NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def con():
    con = duckdb.connect()
    ensure_raw_schema(con)
    con.execute("insert into raw.outcome_sheet_versions values "
                "('sha1', 'sheet.csv', 'r0', 'accepted', ?, 3, 0, null)", [NOW])
    for row, trial in enumerate(["NCT00000001", "NCT00000002 (registry match unverified)",
                                 "ChiCTR2300000001", "NCT00000009"], start=1):
        con.execute("insert into raw.outcome_sheet_rows (study_id, trial_id, source_row, "
                    "sheet_sha256, sheet_file, run_id, loaded_at) values (?, ?, ?, 'sha1', "
                    "'sheet.csv', 'r0', ?)", [f"S{row}", trial, row, NOW])
    con.execute("insert into raw.pubmed_articles (publication_key, databank_accessions, run_id, "
                "fetched_at, source_file, record_index, payload_md5) values ('pmid:1', ?, 'p0', "
                "?, 'f', 1, 'x')", [orjson.dumps([{"databank_name": "ClinicalTrials.gov",
                                                   "accession_number": "NCT00000003"}]).decode(),
                                    NOW])
    con.execute("insert into raw.ctgov_studies values ('NCT00000009', null, '{}', 'r1', ?, 'f', "
                "1, 'm')", [NOW])
    return con


def test_only_ids_the_run_has_not_fetched_are_missing(con):
    missing = missing_references(con)
    assert ("ClinicalTrials.gov", "NCT00000009") not in missing  # already loaded
    assert missing[("ClinicalTrials.gov", "NCT00000003")] == {"pubmed_databank:pmid:1"}
    assert missing[("ClinicalTrials.gov", "NCT00000002")] == {"outcome_sheet:sheet.csv"}
    assert ("ChiCTR", "ChiCTR2300000001") in missing
    assert ("ClinicalTrials.gov", "NCT01121029") in missing  # named by the curated-links seed


def test_fetched_not_found_failed_and_unfetchable_are_each_recorded(con, tmp_path):
    def fetch(nct_id):
        if nct_id == "NCT00000001":
            return {"protocolSection": {"identificationModule": {"nctId": nct_id}}}
        if nct_id == "NCT00000002":
            raise SourceError("ctgov /studies/NCT00000002 timed out")
        return None

    settings = Settings(data_dir=tmp_path / "data")
    result = resolve(con, settings, "live", {"ctgov": fetch}, "closure-1")
    checks = {r: (s, reason) for r, s, reason in con.execute(
        "select registry_id, status, reason from raw.reference_checks").fetchall()}
    assert checks["NCT00000001"] == ("fetched", None)
    assert checks["NCT00000002"][0] == "unresolved" and "timed out" in checks["NCT00000002"][1]
    assert "not found" in checks["NCT00000003"][1]
    assert "only through WHO ICTRP exports" in checks["ChiCTR2300000001"][1]
    assert result.fetched == {"ctgov": 1}
    (run,) = result.runs["ctgov"]
    assert run.is_complete and sum(e.record_count for e in run.entries()) == 1


def test_the_per_run_budget_bounds_the_fetches(con, tmp_path):
    calls = []
    settings = Settings(data_dir=tmp_path / "data", closure_max_fetches=1)
    resolve(con, settings, "live", {"ctgov": lambda i: calls.append(i)}, "closure-2")
    assert len(calls) == 1
    reasons = [r for (r,) in con.execute("select reason from raw.reference_checks").fetchall()]
    assert any(r and "more than 1 missing ids" in r for r in reasons)
