"""The real pipeline on the shipped snapshot: Prefect flow, dbt build, DuckDB file, publish."""

from __future__ import annotations

import csv

import duckdb
import orjson
import pytest

from flows.errors import LoadRejected
from flows.pipeline import refresh_warehouse
from flows.settings import REPO_DIR

pytestmark = pytest.mark.integration
REFERENCE = REPO_DIR.parent / "shared" / "reference" / "trials.csv"


def snapshot_nct_ids() -> set[str]:
    doc = orjson.loads((REPO_DIR / "data/snapshot/ctgov/studies-0001.json").read_bytes())
    return {s["protocolSection"]["identificationModule"]["nctId"] for s in doc["studies"]}


def snapshot_publications() -> list[str]:
    text = (REPO_DIR / "data/snapshot/pubmed/efetch-0001.xml").read_text()
    return [line for line in text.splitlines() if line.startswith("<PubmedArticle>")]


def query(settings, sql: str):
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        return con.sql(sql).fetchall()
    finally:
        con.close()


def test_snapshot_run_publishes_every_trial_in_staging(prefect_harness, settings):
    summary = refresh_warehouse(source="snapshot")
    assert settings.warehouse_path.exists()
    assert not settings.build_database.exists()  # moved into place, not copied
    staged = {r[0] for r in query(settings, "select nct_id from staging.stg_ctgov__studies")}
    assert staged == snapshot_nct_ids()
    if REFERENCE.exists():
        with REFERENCE.open() as handle:
            reference = {
                r["trial_id"]
                for r in csv.DictReader(handle)
                if r["registry"] == "ClinicalTrials.gov"
            }
        assert staged == reference
    assert summary["records_loaded"] == len(staged)
    assert summary["dbt_status_counts"].get("error", 0) == 0
    assert summary["dbt_status_counts"].get("fail", 0) == 0

    # Facts survive the trip: status, enrollment, phases, dates with precision, countries.
    if REFERENCE.exists():
        check_facts_against_reference(settings)

    # Publications from the snapshot are loaded and linked to the snapshot trials.
    (articles,) = query(settings, "select count(*) from staging.stg_pubmed__articles")[0]
    assert articles == len(snapshot_publications())
    linked = query(settings, """select trial_id, publication_id, confidence from
        marts.trial_publication_links where is_trial_in_warehouse and is_publication_in_warehouse""")
    assert ("NCT03163511", "pmid:35028608", "high") in linked
    assert {"NCT00014911", "NCT01068951", "NCT03163511"} <= {t for t, _, _ in linked}
    assert ("NCT01374854", "doi:10.2337/dc15-0171", "low") in linked  # "registry match unverified"
    assert (settings.marts_dir / "trial_publication_links.parquet").exists()
    assert (settings.marts_dir / "publication_trends.parquet").exists()

    # A second run with unchanged source data fetches nothing and still publishes.
    second = refresh_warehouse(source="snapshot")
    assert second["skipped_reason"] and "unchanged" in second["skipped_reason"]
    statuses = query(settings, "select status from raw.ingest_runs order by finished_at")
    assert [s for (s,) in statuses if s != "loaded"] == ["skipped_unchanged"]
    assert query(settings, "select count(*) from raw.ctgov_studies") == [(len(staged),)]


def check_facts_against_reference(settings) -> None:
    rows = {
        r[0]: r[1:]
        for r in query(
            settings,
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
    with REFERENCE.open() as handle:
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


def inject(snapshot_dir, *records):
    path = snapshot_dir / "ctgov" / "studies-0001.json"
    doc = orjson.loads(path.read_bytes())
    doc["studies"].extend(records)
    path.write_bytes(orjson.dumps(doc))


def test_too_many_bad_records_fail_the_run_before_loading(
    prefect_harness, settings, snapshot_copy, monkeypatch
):
    monkeypatch.setattr(settings, "max_reject_share", 0.01)
    bad = [{"protocolSection": {"identificationModule": {"nctId": f"NCT{i}"}}} for i in range(5)]
    inject(snapshot_copy, *bad)
    with pytest.raises(LoadRejected, match="nothing from this run was loaded.*does not match"):
        refresh_warehouse(source="snapshot")
    assert not settings.warehouse_path.exists()
