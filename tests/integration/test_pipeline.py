"""The real pipeline on the shipped snapshot: Prefect flow, dbt build, DuckDB file, publish."""

from __future__ import annotations

import csv

import duckdb
import orjson
import pytest

from flows.errors import LoadRejected
from flows.refresh import refresh_warehouse
from flows.settings import REPO_DIR, reset_settings_cache
from tests.conftest import inject_studies, reference_file

pytestmark = pytest.mark.integration
RESULTS_FIXTURE_ID = "NCT09999950"  # the injected record with a results section


def snapshot_nct_ids() -> set[str]:
    doc = orjson.loads((REPO_DIR / "data/snapshot/ctgov/studies-0001.json").read_bytes())
    return {s["protocolSection"]["identificationModule"]["nctId"] for s in doc["studies"]}


def snapshot_publications() -> list[str]:
    text = (REPO_DIR / "data/snapshot/pubmed/efetch-0001.xml").read_text()
    return [line for line in text.splitlines() if line.startswith("<PubmedArticle>")]


def query(path, sql: str):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.sql(sql).fetchall()
    finally:
        con.close()


def reference_nct_ids() -> set[str]:
    with reference_file("trials.csv").open() as handle:
        return {r["trial_id"] for r in csv.DictReader(handle)
                if r["registry"] == "ClinicalTrials.gov"}


def test_snapshot_run_publishes_every_trial_in_staging(built_warehouse):
    path, summary = built_warehouse.warehouse, built_warehouse.summary
    assert path.exists()
    assert not (built_warehouse.data / "build" / "warehouse.duckdb").exists()  # moved, not copied
    staged = {r[0] for r in query(path, "select nct_id from staging.stg_ctgov__studies")}
    assert staged == snapshot_nct_ids() | {RESULTS_FIXTURE_ID}
    assert staged - {RESULTS_FIXTURE_ID} == reference_nct_ids()
    assert summary["records_loaded"] == len(staged)
    assert summary["records_rejected"] == 1
    ((source_file, line, record_id, reason),) = query(
        path, "select source_file, source_line, record_id, reason from raw.rejected_records")
    assert source_file.startswith("ctgov/") and source_file.endswith("page-00001.jsonl.zst")
    assert line == len(staged) + 1 and record_id is None
    assert reason == "nctId 'NCT123' does not match ^NCT\\d{8}$"
    assert summary["dbt_status_counts"].get("error", 0) == 0
    assert summary["dbt_status_counts"].get("fail", 0) == 0
    assert summary["dbt_status_counts"]["success"] > 50 and summary["dbt_status_counts"]["pass"] > 100

    # Facts survive the trip: status, enrollment, phases, dates with precision, countries.
    check_facts_against_reference(path)

    # Publications from the snapshot are loaded and linked to the snapshot trials.
    (articles,) = query(path, "select count(*) from staging.stg_pubmed__articles")[0]
    assert articles == len(snapshot_publications()) == 26
    linked = query(path, """select trial_id, publication_id, confidence from
        marts.trial_publication_links where is_trial_in_warehouse and is_publication_in_warehouse""")
    assert ("NCT03163511", "pmid:35028608", "high") in linked
    assert {"NCT00014911", "NCT01068951", "NCT03163511"} <= {t for t, _, _ in linked}
    assert ("NCT01374854", "doi:10.2337/dc15-0171", "low") in linked  # "registry match unverified"
    exported = {p.stem for p in built_warehouse.marts.glob("*.parquet")}
    marts = {name for (name,) in query(path, "select table_name from information_schema.tables "
                                             "where table_schema = 'marts'")}
    assert exported == marts and {"trial_publication_links", "publication_trends"} <= exported


def check_facts_against_reference(path) -> None:
    rows = {
        r[0]: r[1:]
        for r in query(
            path,
            """
        select s.nct_id, s.overall_status, d.enrollment_count, d.enrollment_type,
               s.start_date, s.start_date_precision,
               (select string_agg(phase, '/' order by phase_index)
                  from staging.stg_ctgov__phases p where p.nct_id = s.nct_id),
               (select string_agg(country, ';' order by country)
                  from staging.stg_ctgov__countries c where c.nct_id = s.nct_id)
        from staging.stg_ctgov__studies s join staging.stg_ctgov__designs d using (nct_id)""",
        )
    }
    precision = {4: "year", 7: "month", 10: "day"}
    checked = 0
    with reference_file("trials.csv").open() as handle:
        for ref in csv.DictReader(handle):
            if ref["registry"] != "ClinicalTrials.gov":
                continue
            status, enrollment, enrollment_type, start, start_precision, phases, countries = rows[
                ref["trial_id"]
            ]
            assert status == (ref["overall_status"] or None), ref["trial_id"]
            assert enrollment == (int(ref["enrollment"]) if ref["enrollment"] else None)
            assert enrollment_type == (ref["enrollment_type"] or None)
            assert phases == (ref["phase"] or None), ref["trial_id"]
            if ref["start_date"]:
                assert start.isoformat().startswith(ref["start_date"])
                assert start_precision == precision[len(ref["start_date"])]
            else:
                assert start is None and start_precision is None
            expected = ";".join(
                sorted({c.strip() for c in ref["countries"].split(";") if c.strip()})
            )
            assert (countries or "") == expected, ref["trial_id"]
            checked += 1
    assert checked == 160


def test_a_rerun_with_nothing_new_neither_rebuilds_nor_republishes(published_copy,
                                                                   sheet_edit_rebuild):
    """A rerun on a copy of the session warehouse finds nothing new; one added sheet row is
    enough to rebuild (the session's ``sheet_edit_rebuild``), and its changes list exactly that
    row."""
    settings = published_copy
    before = (settings.data_path / "current").readlink()
    second = refresh_warehouse(source="snapshot")
    assert second["nothing_changed"] is True
    assert second["skipped_reason"].startswith(
        f"nothing changed since the published version {before.name}")
    assert second["records_landed"] == 0 and second["changes"] == {}
    assert second["sources"]["ctgov"]["status"] == "skipped"  # dataTimestamp did not move
    assert (settings.data_path / "current").readlink() == before
    assert not settings.build_database.exists()

    third = sheet_edit_rebuild.result["summary"]
    assert third["nothing_changed"] is False and third["published_version"]
    assert third["sources"]["ctgov"]["status"] == "skipped"  # only the sheet was read again
    assert query(sheet_edit_rebuild.warehouse, "select change_type, count(*) from "
                 "marts.changes_since_last_run group by 1") == [("new_outcome_row", 1)]


def test_too_many_bad_records_fail_the_run_before_loading(pipeline_settings, snapshot_copy,
                                                          monkeypatch):
    monkeypatch.setenv("BETACELL_MAX_REJECT_SHARE", "0.01")
    reset_settings_cache()
    bad = [{"protocolSection": {"identificationModule": {"nctId": f"NCT{i}"}}} for i in range(5)]
    inject_studies(snapshot_copy, *bad)
    with pytest.raises(LoadRejected, match="nothing from this run was loaded.*does not match"):
        refresh_warehouse(source="snapshot")
    assert not pipeline_settings.warehouse_path.exists()
