"""Property: over the documented v2 study structure with modules and fields nulled at random,
the loader rejects exactly the records without a usable ``nctId`` and every ClinicalTrials.gov
staging model builds on the rest.

Hypothesis draws a few records per example from a record holding every documented module
(shared/notes/api_contracts.md §1.8-1.11): each section and module is kept, null, absent,
empty or of the wrong type; each field of a kept module is kept, null or absent; dates are
partial, complete or impossible. The records are landed and loaded for real, then the compiled
SQL of every ``staging/ctgov`` model (as dbt compiled it for the session warehouse) runs on them
in a DuckDB file of the same catalog name, so what breaks here breaks ``dbt build``."""

from __future__ import annotations

import copy
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.landing import LandingRun
from flows.load import NCT_ID, load_ctgov_run
from tests.faults.test_odd_records import DOCUMENTED_MODULES, full_record

pytestmark = pytest.mark.integration

SECTIONS = {**DOCUMENTED_MODULES,
            "protocolSection": ("identificationModule", *DOCUMENTED_MODULES["protocolSection"])}
FATES = ("keep", "keep", "keep", "null", "absent", "empty", "odd")
DATES = st.sampled_from(["2024", "2024-11", "2024-11-30", "2020-13-45", "2021-02-30", "2022-00",
                         None])
DATE_STRUCTS = ("startDateStruct", "primaryCompletionDateStruct", "completionDateStruct",
                "studyFirstPostDateStruct", "lastUpdatePostDateStruct")


def apply_fate(container: dict, key: str, fate: str) -> None:
    if fate == "null":
        container[key] = None
    elif fate == "absent":
        container.pop(key, None)
    elif fate == "empty":
        container[key] = {}
    elif fate == "odd":  # a module of the wrong JSON type
        container[key] = "not an object"


@st.composite
def odd_study(draw, number: int) -> dict:
    record = full_record(f"NCT0998{number:04d}")
    for section, modules in SECTIONS.items():
        for module in modules:
            body = record[section].get(module)
            fate = draw(st.sampled_from(FATES))
            if fate == "keep" and isinstance(body, dict):
                for field in list(body):
                    if field == "nctId":
                        continue
                    field_fate = draw(st.sampled_from(("keep", "keep", "null", "absent")))
                    apply_fate(body, field, field_fate)
            else:
                apply_fate(record[section], module, fate)
        apply_fate(record, section, draw(st.sampled_from(("keep",) * 6 + ("null", "absent"))))
    status = (record.get("protocolSection") or {}).get("statusModule")
    if isinstance(status, dict):
        for struct in DATE_STRUCTS:
            if draw(st.booleans()):
                status[struct] = {"date": draw(DATES)}
    ident = (record.get("protocolSection") or {}).get("identificationModule")
    if isinstance(ident, dict):
        apply_fate(ident, "nctId", draw(st.sampled_from(("keep",) * 8 + ("null", "absent"))))
        if draw(st.integers(0, 9)) == 0:
            ident["nctId"] = "NCT123"  # malformed
    return record


def usable_id(record: dict) -> str | None:
    protocol = record.get("protocolSection")
    ident = protocol.get("identificationModule") if isinstance(protocol, dict) else None
    nct_id = ident.get("nctId") if isinstance(ident, dict) else None
    return nct_id if isinstance(nct_id, str) and NCT_ID.match(nct_id) else None


@pytest.fixture(scope="module")
def staging_sql(built_warehouse) -> list[tuple[str, str]]:
    """(model, compiled SELECT) of every staging/ctgov model, in dependency order."""
    compiled = next((built_warehouse.data / "build" / "dbt_target" / "compiled").glob(
        "*/models/staging/ctgov"))
    pending = {p.stem: p.read_text() for p in compiled.glob("*.sql")}
    assert "stg_ctgov__studies" in pending and "base_ctgov__latest_studies" in pending
    ordered: list[tuple[str, str]] = []
    while pending:
        ready = [name for name, sql in pending.items()
                 if set(re.findall(r'"warehouse"\."staging"\."(\w+)"', sql)) <= {
                     n for n, _ in ordered}]
        assert ready, f"unresolvable references among {sorted(pending)}"
        for name in sorted(ready):
            ordered.append((name, pending.pop(name)))
    return ordered


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.data_too_large])
@given(data=st.data())
def test_odd_records_are_loaded_or_rejected_alone_and_staging_builds(staging_sql, data):
    count = data.draw(st.integers(1, 4))
    records = [data.draw(odd_study(n)) for n in range(count)]
    expected = sorted(i for i in (usable_id(r) for r in records) if i)
    with tempfile.TemporaryDirectory() as scratch:
        run = LandingRun(Path(scratch) / "raw", "ctgov", "20260101T000000Z-prop01")
        run.start({})
        run.land_records([orjson.dumps(copy.deepcopy(r)) for r in records], page=1, query={},
                         fetched_at=datetime(2026, 1, 1, tzinfo=UTC))
        con = duckdb.connect(str(Path(scratch) / "warehouse.duckdb"))
        try:
            result = load_ctgov_run(con, run, mode="api", max_reject_share=1.0)
            loaded = sorted(n for (n,) in con.execute("select nct_id from raw.ctgov_studies")
                            .fetchall())
            assert loaded == expected
            assert result.records_rejected == count - len(expected)
            con.execute("create schema staging")
            for name, sql in staging_sql:
                con.execute(f'create table staging."{name}" as {sql}')
            studies = con.execute(
                "select nct_id, start_date, start_date_precision, completion_date, "
                "completion_date_precision from staging.stg_ctgov__studies order by 1").fetchall()
            assert [s[0] for s in studies] == expected
            for _, start, start_precision, end, end_precision in studies:
                assert (start is None) == (start_precision is None)
                assert (end is None) == (end_precision is None)
        finally:
            con.close()
