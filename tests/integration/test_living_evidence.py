"""Living evidence on the session warehouse: a certainty beside every estimate, a PRISMA flow that
reconciles with the marts it summarises, and its diagram."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import duckdb
import pytest

from dashboards.presentation import therapy_name
from flows.prisma import prisma_svg, read_flow

pytestmark = pytest.mark.integration


def query(path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def scalar(path, sql: str):
    return query(path, sql)[0][0]


def test_every_comparison_row_has_a_certainty_with_a_reason_per_domain(built_warehouse):
    path = built_warehouse.warehouse
    rows = query(path, """select comparison_id, certainty, certainty_start, certainty_downgrade,
        certainty_design, certainty_risk_of_bias_reason, certainty_inconsistency_reason,
        certainty_imprecision_reason, certainty_indirectness_reason,
        certainty_publication_bias_reason, certainty_method, k_cohorts
        from marts.therapy_outcome_comparison where estimate is not null""")
    assert len(rows) > 100
    levels = {"high": 4, "moderate": 3, "low": 2, "very low": 1}
    for (comparison_id, certainty, start, downgrade, *reasons, method, k) in rows:
        assert certainty in levels, comparison_id
        assert levels[certainty] == max(1, levels[start] - downgrade), comparison_id
        assert all(reasons), comparison_id
        assert "not a guideline panel's judgement" in method
        # the snapshot's sheets carry no risk-of-bias judgement and no row has 10 cohorts
        assert reasons[1].startswith("not assessed"), comparison_id
        assert reasons[-1].startswith("not assessable") and k < 10
    # single-arm studies start low; the randomised-only rows start high
    assert scalar(path, """select count(*) from marts.therapy_outcome_comparison
        where randomised_only and certainty_start <> 'high'""") == 0
    assert scalar(path, """select count(*) from marts.therapy_outcome_comparison
        where list_contains(caveats, 'single-arm studies only') and certainty_start <> 'low'""") == 0


def test_the_prisma_flow_reconciles_with_trials_review_queue_and_comparisons(built_warehouse):
    path = built_warehouse.warehouse

    def flow(stage: str, **equal) -> int:
        where = " and ".join([f"stage = '{stage}'", *(f"{k} = '{v}'" for k, v in equal.items())])
        return scalar(path, f'select coalesce(sum("count"), 0) from marts.prisma_flow where {where}')

    # identified: each source as staged
    for source, table in (("ClinicalTrials.gov", "stg_ctgov__studies"),
                          ("ICTRP", "stg_ictrp__trials"), ("EU CTIS", "stg_ctis__trials"),
                          ("PubMed", "stg_pubmed__articles"),
                          ("Europe PMC", "stg_europepmc__records")):
        assert flow("identified", source=source) == scalar(
            path, f"select count(*) from staging.{table}"), source
    assert flow("identified", source="ICTRP") > 0  # the injected ICTRP exports

    trials = scalar(path, "select count(*) from marts.dim_trials")
    registry_records = sum(flow("identified", source=s) for s in ("ClinicalTrials.gov", "ICTRP",
                                                                 "EU CTIS"))
    duplicates = sum(flow("duplicates_removed", source=s) for s in ("ClinicalTrials.gov",
                                                                   "ICTRP", "EU CTIS"))
    assert registry_records - duplicates == flow("screened", record_type="trial") == trials
    excluded = scalar(path, "select count(*) from marts.dim_trials "
                            "where therapy_class = 'not_stem_cell'")
    in_review = scalar(path, "select count(*) from marts.classification_review_queue "
                             "where review_status = 'open'")
    included = flow("included", path="registers and databases")
    assert flow("excluded") == excluded and flow("sent_to_review") == in_review
    assert excluded + in_review + included == trials
    assert included == scalar(path, """select count(*) from marts.dim_trials
        where therapy_class not in ('not_stem_cell', 'needs_review')""")
    # the exclusion reasons are the classifier's
    reasons = {r for (r,) in query(path, "select reason from marts.prisma_flow "
                                         "where stage = 'excluded'")}
    assert reasons == {r for (r,) in query(path, """select distinct therapy_class_reason
        from marts.dim_trials where therapy_class = 'not_stem_cell'""")}

    publications = scalar(path, "select count(*) from marts.dim_publications")
    assert flow("screened", record_type="publication") == publications
    assert flow("reports_of_included") + flow("reports_not_linked") == publications

    cohorts = {c for (c,) in query(path, """select distinct cohort_id from marts.outcome_effects
        where nullif(cohort_id, '') is not null""")}
    assert flow("with_outcome_data") == len(cohorts)
    assert flow("with_outcome_data", path="other methods") == flow("included",
                                                                   path="other methods") > 0

    headline = query(path, """select comparison_id, k_cohorts, cohort_ids
        from marts.therapy_outcome_comparison where is_headline order by 1""")
    assert query(path, """select source, "count" from marts.prisma_flow
        where stage = 'in_headline_comparison' order by 1""") == [(c, k) for c, k, _ in headline]
    assert headline and all(set(ids) <= cohorts for _, _, ids in headline)


def test_the_prisma_diagram_draws_the_flows_numbers(built_warehouse):
    rows = read_flow(built_warehouse.warehouse)
    svg = prisma_svg(rows, "PRISMA 2020 flow")
    root = ET.fromstring(svg)  # well-formed SVG
    assert root.tag.endswith("svg")
    text = " ".join(t.text or "" for t in root.iter() if t.tag.endswith("text"))
    screened = next(r["count"] for r in rows if r["stage"] == "screened"
                    and r["record_type"] == "trial")
    assert f"trials (n = {screened})" in text
    assert "Identification of studies via other methods" in text
    assert text.count(": k = ") == sum(r["stage"] == "in_headline_comparison" for r in rows)


HEADLINE_ESC = ("all_sources:no_overlaps:any_design:esc_derived_islets:-:T1D:insulin_independence:"
                "ii_at_timepoint:m6_18")


def add_synthetic_cohort(sheet) -> str:
    """Append one made-up cohort (a test input, not a fact: no citation but an example URL) to
    the ESC-derived islet headline row's outcome; returns its fact id."""
    import csv

    with sheet.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    template = next(r for r in rows if r["trial_id"] == "NCT04786262"
                    and r["outcome"] == "insulin_independence" and r["timepoint_months"] == "12")
    added = {**template, "study_id": "SYNTHETIC_TEST_COHORT", "first_author": "", "year": "",
             "journal": "", "pmid": "", "doi": "", "trial_id": "",
             "source_url": "https://example.org/betacell-test-cohort", "arm": "cells",
             "n_arm": "8", "n_total": "8", "n_events": "4", "value": "0.5",
             "value_as_reported": "0.5", "source": "synthetic test row"}
    with sheet.open("a", newline="", encoding="utf-8") as handle:
        csv.DictWriter(handle, fieldnames=list(rows[0])).writerow(added)
    return f"publication:{sheet.name}:{len(rows) + 2}"  # the sheet's own row: 1 is the header


def test_a_sheet_edit_that_adds_a_cohort_makes_a_digest_and_a_no_op_run_makes_none(
        sheet_edit_rebuild, tmp_path, httpserver, monkeypatch):
    """The session's rebuild after one cohort was added to the sheet (``sheet_edit_rebuild``, a
    copy of the session warehouse) moved the estimate and published a digest; a no-op refresh
    on a copy of what it published makes none."""
    import shutil

    from flows.refresh import refresh_warehouse
    from flows.settings import get_settings, reset_settings_cache
    from tests.conftest import point_at

    summary = sheet_edit_rebuild.result["summary"]
    first_version = sheet_edit_rebuild.result["version_before"]
    fact_id = sheet_edit_rebuild.result["fact_id"]
    warehouse, data = sheet_edit_rebuild.warehouse, sheet_edit_rebuild.data
    version = summary["published_version"]
    assert version and version != first_version
    assert not [w for w in summary["warnings"] if "digest" in w or "PRISMA" in w]
    (moved,) = query(warehouse, f"""select change_type, k_before, k_after,
        estimate_before, estimate_after, fact_ids_added, fact_ids_removed, before, after,
        previous_version_id from marts.evidence_changes where entity_id = '{HEADLINE_ESC}'""")
    assert moved[:3] == ("comparison_moved", 1, 2)
    assert moved[3] == pytest.approx(10 / 12) and moved[4] < moved[3]
    assert moved[5:7] == ([fact_id], [])
    assert moved[7].startswith("0.833 (95 % CI 0.516-0.979), k = 1") and "k = 2" in moved[8]
    assert moved[9] == first_version
    # only the rows of that outcome moved, and no trial changed
    assert query(warehouse, """select distinct entity_type, change_type
        from marts.evidence_changes""") == [("comparison", "comparison_moved")]

    folder = data / "published" / version
    digest = (folder / "digest.md").read_text()
    assert HEADLINE_ESC in digest and fact_id in digest
    assert f"{moved[7]} → {moved[8]}" in digest
    feed = ET.parse(folder / "feed.atom").getroot()
    atom = "{http://www.w3.org/2005/Atom}"
    entries = feed.findall(f"{atom}entry")
    assert [e.findtext(f"{atom}id") for e in entries] == [
        f"urn:betacell:version:{version}", f"urn:betacell:version:{first_version}"]
    assert HEADLINE_ESC in entries[0].findtext(f"{atom}content")
    assert (folder / "prisma_flow.svg").read_text().startswith("<svg")
    posts = sheet_edit_rebuild.result["posts"]
    assert [(p["event"], p["version"]) for p in posts] == [("digest", version)]
    assert HEADLINE_ESC in posts[0]["text"] and fact_id in posts[0]["text"]

    page = run_page("8_What_changed.py", monkeypatch, data)
    assert metric(page, "Estimates moved") == str(len(query(warehouse, """
        select 1 from marts.evidence_changes where change_type = 'comparison_moved'""")))
    shown = page.dataframe[0].value
    row = shown[shown["entity_id"] == HEADLINE_ESC].iloc[0]
    assert (row["before"], row["after"], row["fact_ids_added"]) == (moved[7], moved[8], fact_id)

    copy = tmp_path / "published"
    shutil.copytree(sheet_edit_rebuild.root, copy, symlinks=True,
                    ignore=shutil.ignore_patterns("*.lock", "duckdb_tmp"))
    point_at(monkeypatch, copy / "data", copy / "snapshot", copy / "outcomes")
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    monkeypatch.setenv("BETACELL_ALERT_WEBHOOK_URL", httpserver.url_for("/hook"))
    reset_settings_cache()
    settings = get_settings()
    again = refresh_warehouse(source="snapshot")
    assert again["nothing_changed"] and (settings.data_path / "current").readlink().name == version
    assert len(httpserver.log) == 0  # no digest for a run that published nothing
    assert sorted(p.name for p in (settings.data_path / "published").iterdir()
                  if not p.name.startswith(".")) == sorted([first_version, version])
    reset_settings_cache()


def export(built_warehouse, tmp_path, comparison: str, layout: str) -> list[dict]:
    """`betacell export` as a user runs it, on the session warehouse (read-only)."""
    import csv
    import os
    import subprocess
    import sys

    from flows.settings import REPO_DIR

    target = tmp_path / f"{layout}.csv"
    env = {**os.environ, "BETACELL_DATA_DIR": str(built_warehouse.data)}
    run = subprocess.run([sys.executable, "-m", "flows.cli", "export", "--comparison", comparison,
                          "--format", layout, "--output", str(target)], env=env, cwd=REPO_DIR,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    with target.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def rscript(code: str) -> str:
    """Run R (metafor is the field's reference implementation). Absent locally: skipped; on CI,
    which installs r-cran-metafor, its absence fails."""
    import os
    import shutil
    import subprocess

    if not shutil.which("Rscript"):
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail("Rscript is missing; CI installs r-cran-metafor")
        pytest.skip("Rscript (r-cran-metafor) is not installed here")
    run = subprocess.run(["Rscript", "-e", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_export_writes_the_cohorts_behind_a_headline_row_for_metafor_revman_and_csv(
        built_warehouse, tmp_path):
    path = built_warehouse.warehouse
    (row,) = query(path, f"""select k_cohorts, n_events, n_participants, estimate,
        outcome_fact_ids, cohort_ids from marts.therapy_outcome_comparison
        where comparison_id = '{HEADLINE_ESC}'""")
    k, events, participants, estimate, fact_ids, cohort_ids = row

    metafor = export(built_warehouse, tmp_path, HEADLINE_ESC, "metafor")
    assert len(metafor) == k and {r["cohort_id"] for r in metafor} == set(cohort_ids)
    assert sum(int(r["xi"]) for r in metafor) == events
    assert sum(int(r["ni"]) for r in metafor) == participants
    assert {f for r in metafor for f in r["outcome_fact_ids"].split("; ")} == set(fact_ids)
    assert {r["definition_id"] for r in metafor} == {"ii_at_timepoint"}
    assert metafor[0]["trial_ids"] == "NCT04786262" and metafor[0]["study"] == "Reichman 2025"
    out = rscript(f"""suppressMessages(library(metafor))
        dat <- escalc(measure = "PLO", xi = xi, ni = ni, data = read.csv("{tmp_path}/metafor.csv"),
                      slab = study)
        cat(sprintf("%.10f %s", transf.ilogit(dat$yi[1]), attr(dat$yi, "slab")[1]))""")
    assert float(out.split()[0]) == pytest.approx(estimate, abs=1e-9)  # one cohort: its share
    assert out.endswith("Reichman 2025")

    revman = export(built_warehouse, tmp_path, HEADLINE_ESC, "revman")
    assert list(revman[0])[:6] == ["Study ID", "Year", "Experimental events",
                                   "Experimental total", "Control events", "Control total"]
    assert [(r["Study ID"], r["Experimental events"], r["Experimental total"],
             r["Control events"]) for r in revman] == [("Reichman 2025", "10", "12", "")]

    everything = export(built_warehouse, tmp_path, HEADLINE_ESC, "csv")
    assert everything[0]["comparison_id"] == HEADLINE_ESC
    assert everything[0]["certainty"] in {"high", "moderate", "low", "very low"}
    assert everything[0]["source_urls"] and everything[0]["publication_ids"].startswith("pmid:")


def test_export_of_a_pooled_row_reproduces_its_dersimonian_laird_estimate_in_metafor(
        built_warehouse, tmp_path):
    path = built_warehouse.warehouse
    comparison_id, k, estimate_dl = query(path, """select comparison_id, k_cohorts, estimate_dl
        from marts.therapy_outcome_comparison where k_cohorts >= 3 and estimate_dl is not null
        order by comparison_id limit 1""")[0]
    rows = export(built_warehouse, tmp_path, comparison_id, "metafor")
    assert len(rows) == k
    out = rscript(f"""suppressMessages(library(metafor))
        dat <- escalc(measure = "PLO", xi = xi, ni = ni, data = read.csv("{tmp_path}/metafor.csv"))
        fit <- rma(yi, vi, data = dat, method = "DL")
        cat(sprintf("%.12f", transf.ilogit(coef(fit))))""")
    assert float(out) == pytest.approx(estimate_dl, abs=1e-6)


def test_export_says_what_is_wrong_with_a_selector(built_warehouse, tmp_path):
    import os
    import subprocess
    import sys

    from flows.settings import REPO_DIR

    env = {**os.environ, "BETACELL_DATA_DIR": str(built_warehouse.data)}
    for selector, message in (("no such row", "no comparison row with an estimate matches"),
                              ("colour=blue", "cannot read the filter 'colour=blue'")):
        run = subprocess.run([sys.executable, "-m", "flows.cli", "export", "--comparison",
                              selector, "--format", "csv"], env=env, cwd=REPO_DIR,
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 1 and message in " ".join((run.stdout + run.stderr).split())



def run_page(name: str, monkeypatch, data_dir):
    """A dashboard page run by Streamlit's AppTest on a published data directory."""
    from streamlit.testing.v1 import AppTest

    from flows.settings import REPO_DIR, reset_settings_cache

    monkeypatch.setenv("BETACELL_DATA_DIR", str(data_dir))
    monkeypatch.syspath_prepend(str(REPO_DIR / "dashboards"))
    reset_settings_cache()
    app = AppTest.from_file(str(REPO_DIR / "dashboards" / "pages" / name), default_timeout=60)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def metric(app, label: str) -> str:
    return next(m.value for m in app.metric if m.label == label)


def test_the_prisma_page_draws_the_mart(built_warehouse, monkeypatch):
    app = run_page("7_PRISMA_flow.py", monkeypatch, built_warehouse.data)
    path = built_warehouse.warehouse
    assert metric(app, "Trials screened") == str(scalar(path, "select count(*) from "
                                                               "marts.dim_trials"))
    assert metric(app, "Sent to review") == str(scalar(
        path, "select count(*) from marts.classification_review_queue where review_status = 'open'"))
    assert len(app.get("image")) == 1  # the diagram
    assert len(app.dataframe[0].value) == scalar(path, "select count(*) from marts.prisma_flow")


def test_what_changed_says_so_when_nothing_moved(built_warehouse, monkeypatch):
    app = run_page("8_What_changed.py", monkeypatch, built_warehouse.data)
    assert scalar(built_warehouse.warehouse, "select count(*) from marts.evidence_changes") == 0
    assert any("Nothing moved" in info.value for info in app.info)


def test_the_comparison_page_shows_the_certainty_beside_each_estimate(built_warehouse,
                                                                      monkeypatch):
    app = run_page("1_Therapy_comparison.py", monkeypatch, built_warehouse.data)
    shown = app.table[0].value
    expected = {therapy_name(label, source): certainty for label, source, certainty in query(
        built_warehouse.warehouse, """select therapy_label, msc_source, certainty
        from marts.therapy_outcome_comparison where is_headline
        and outcome = 'insulin_independence' and diabetes_type = 'T1D'""")}
    assert dict(zip(shown.index, shown["certainty (automatic)"], strict=True)) == expected
    reasons = app.dataframe[0].value
    assert list(reasons.columns)[2:] == ["certainty", "design", "risk_of_bias", "inconsistency",
                                         "imprecision", "indirectness", "publication_bias"]
