"""Loader: rejects with file/line/id, the reject-share limit, idempotent reloads."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import orjson
import pytest

from flows.errors import LoadRejected
from flows.landing import LandingRun
from tests.fixtures.ctgov_records import ALL_RECORDS, study
from tests.helpers import load_landed


def land(tmp_path, run_id: str, pages: list[list[bytes]]) -> LandingRun:
    run = LandingRun(tmp_path / "raw", "ctgov", run_id)
    run.start({"fingerprint": "f"})
    for number, lines in enumerate(pages, start=1):
        run.land_records(lines, page=number, query={}, fetched_at=datetime.now(UTC))
    run.complete({})
    return run


def good(n: int) -> list[bytes]:
    return [orjson.dumps(study(f"NCT0998{i:04d}")) for i in range(n)]


def test_rejects_are_recorded_with_file_line_and_reason(tmp_path):
    lines = good(60) + [
        b'{"protocolSection": {"identificationModule": {"nctId": "NCT0',  # truncated line
        orjson.dumps(study("NCT00000042")),
        orjson.dumps(study("NCT00000042")),  # the same study twice in one page
    ]
    run = land(tmp_path, "run-a", [lines])
    con = duckdb.connect()
    result = load_landed(con, run, max_reject_share=0.05)
    assert result.records_loaded == 61 and result.records_rejected == 2
    rejects = con.sql(
        "select source_file, source_line, record_id, reason from raw.rejected_records "
        "order by source_line"
    ).fetchall()
    assert rejects[0][0] == "ctgov/run-a/page-00001.jsonl.zst"
    assert rejects[0][1] == 61 and "malformed JSON" in rejects[0][3]
    assert rejects[1][1:3] == (63, "NCT00000042") and "twice in one page" in rejects[1][3]
    ledger = con.sql("select status, records_loaded, records_rejected from raw.ingest_runs")
    assert ledger.fetchall() == [("loaded", 61, 2)]


def test_too_many_rejects_loads_nothing(tmp_path):
    lines = good(5) + [b"not json"] * 2
    run = land(tmp_path, "run-b", [lines])
    con = duckdb.connect()
    with pytest.raises(LoadRejected, match=r"rejected 2 of 7 records.*line 6.*malformed JSON"):
        load_landed(con, run, max_reject_share=0.1)
    assert con.sql("select count(*) from raw.ctgov_studies").fetchone()[0] == 0
    assert con.sql("select count(*) from raw.ingest_runs").fetchone()[0] == 0
    assert con.sql("select count(*) from raw.rejected_records").fetchone()[0] == 0


def test_same_run_twice_and_same_content_in_another_run_add_no_rows(tmp_path):
    records = [orjson.dumps(r) for r in ALL_RECORDS]
    first = land(tmp_path, "run-c", [records[:3], records[3:]])
    con = duckdb.connect()
    assert load_landed(con, first, max_reject_share=0).records_loaded == 5
    again = load_landed(con, first, max_reject_share=0)  # already loaded: skipped whole
    assert again.records_loaded == 0 and again.run_ids == [first.run_id]
    assert con.sql("select count(*) from raw.ingest_runs").fetchone()[0] == 1
    second = land(tmp_path, "run-d", [records])
    assert load_landed(con, second, max_reject_share=0).records_loaded == 0
    assert con.sql("select count(*) from raw.ctgov_studies").fetchone()[0] == 5


def test_changed_raw_file_is_refused(tmp_path):
    run = land(tmp_path, "run-e", [good(3)])
    target = run.dir / run.entries()[0].file
    target.write_bytes(target.read_bytes() + b"x")
    con = duckdb.connect()
    with pytest.raises(LoadRejected, match="does not match its manifest checksum"):
        load_landed(con, run, max_reject_share=0)
    assert con.sql("select count(*) from raw.ctgov_studies").fetchone()[0] == 0


def test_crash_mid_load_leaves_nothing(tmp_path, monkeypatch):
    run = land(tmp_path, "run-f", [good(10), good(10)])
    con = duckdb.connect()
    calls = []

    def explode(n):
        calls.append(n)
        if len(calls) == 2:
            raise KeyboardInterrupt  # e.g. Ctrl-C between two batches

    with pytest.raises(KeyboardInterrupt):
        load_landed(con, run, max_reject_share=1, load_batch_records=5, on_progress=explode)
    assert con.sql("select count(*) from raw.ctgov_studies").fetchone()[0] == 0
