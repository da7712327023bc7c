"""Registry results and curated outcomes through the real pipeline (Prefect, dbt, DuckDB)."""

from __future__ import annotations

import duckdb
import pytest

from flows.refresh import refresh_warehouse

pytestmark = pytest.mark.integration


def rows(path, sql: str):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.sql(sql).fetchall()
    finally:
        con.close()


def test_registry_results_and_harms(built_warehouse):
    """The session warehouse holds the injected record with a results section (NCT09999950)."""
    settings = built_warehouse.warehouse

    # registry results: strings and NA kept, classes/categories, Total group, flow counts
    measurements = rows(settings, """select class_title, category_title, group_id, value_text,
        value_numeric, is_value_not_available from staging.stg_ctgov__result_measurements
        where nct_id = 'NCT09999950' and outcome_measure_index = 2 order by 1, 2, 3""")
    assert ("Age 18-40", "Women", "OG001", "NA", None, True) in measurements
    assert ("Age 18-40", "Women", "OG000", "-1.2", -1.2, False) in measurements
    assert len(measurements) == 6
    assert rows(settings, """select group_title, participant_count, is_total_group from
        staging.stg_ctgov__result_baseline_groups where nct_id = 'NCT09999950' order by group_id""") == [
        ("Islets", 12, False), ("Control", 12, False), ("Total", 24, True)]
    assert rows(settings, """select participant_count from staging.stg_ctgov__result_participant_flow
        where milestone_type = 'NOT COMPLETED' order by group_id""") == [(1,), (0,)]
    assert rows(settings, """select p_value_text, p_value_numeric, p_value_qualifier, ci_lower_limit
        from staging.stg_ctgov__result_analyses""") == [("<0.001", 0.001, "<", 0.40)]

    # the harms taxonomy on realistic terms
    classified = dict(rows(settings, """select distinct term, harm_category
        from intermediate.int_adverse_events_classified"""))
    assert classified == {
        "Portal vein thrombosis": "thrombosis", "Teratoma": "tumorigenicity",
        "Cytomegalovirus infection": "infection", "Intraperitoneal haemorrhage": "procedural_bleeding",
        "Neutropenia": "immunosuppression_toxicity", "Thrombocytopenia": "immunosuppression_toxicity",
        "Hypoglycaemia": "severe_hypoglycemia", "Nausea": "other"}
    harms = {(arm, cat): (status, affected, at_risk) for arm, cat, status, affected, at_risk in rows(
        settings, """select arm, harm_category, reporting_status, affected_count, at_risk_count
        from marts.fct_adverse_events where trial_id = 'NCT09999950'""")}
    assert harms[("Islets", "tumorigenicity")] == ("reported", 0, 12)  # a reported zero
    assert harms[("Islets", "death")] == ("reported", 1, 12)
    assert harms[("Control", "death")] == ("reported", 0, 12)
    assert harms[("Islets", "infection")] == ("reported", 2, 12)  # numAtRisk missing: group total
    assert harms[("Control", "procedural_bleeding")][0] == "not_reported"  # not zero
    assert harms[("Islets", "immune_rejection_graft_loss")][0] == "not_reported"
    # at the registry's grain: group totals as stated, a two-term category only as bounds
    grain = {(arm, cat): rest for arm, cat, *rest in rows(settings, """
        select arm, harm_category, affected_count, affected_low, affected_high, at_risk_count,
               count_basis, terms
        from marts.fct_adverse_events where trial_id = 'NCT09999950'""")}
    assert grain[("Islets", "any_serious_adverse_event")][:5] == [5, 5, 5, 12, "group_total"]
    assert grain[("Islets", "any_other_adverse_event")][:5] == [10, 10, 10, 12, "group_total"]
    assert grain[("Islets", "immunosuppression_toxicity")] == [  # neutropenia 4, thrombocytopenia 2
        None, 4, 6, 12, "term_bounds", ["Neutropenia", "Thrombocytopenia"]]

    # fct_outcomes: registry rows with provenance and the curated published rows
    registry = rows(settings, """select outcome, measure, value, n_analyzed, source_record_id
        from marts.fct_outcomes where source = 'registry_results' and outcome = 'insulin_independence'
        order by group_id""")
    assert registry[0][:4] == ("insulin_independence", "count", 8.0, 12)
    assert registry[0][4].startswith("NCT09999950 outcomeMeasuresModule[1] OG000")
    assert rows(settings, "select count(*) from marts.fct_outcomes where source = 'publication'") == [(162,)]


def test_safety_signals_never_pool_diabetes_types(built_warehouse):
    """BM-MNC serious adverse events: 0/134 in type 1 and 0/56 in type 2 diabetes, two rows, not
    0/190 (the grain of therapy_outcome_comparison)."""
    assert rows(built_warehouse.warehouse, """
        select diabetes_type, participants_affected, participants_at_risk, reporting_study_ids
        from marts.safety_signals
        where therapy_class = 'bm_mononuclear' and harm_category = 'any_serious_adverse_event'
        order by diabetes_type""") == [
        ("T1D", 0, 134, ["MESPLES2020_ABMSCT_T1D"]), ("T2D", 0, 56, ["HU_BMMNC_T2D_(review_table)"])]


def test_a_broken_sheet_is_rejected_whole_and_the_previous_version_stays(published_copy):
    """Why over 30 s: a rejected sheet is a source failure, so the run rebuilds to record it."""
    settings = published_copy
    sheet = settings.outcomes_path / "published_outcomes.csv"
    lines = sheet.read_text().splitlines()
    lines[1] = lines[1].replace(",insulin_independence,", ",insulin_indepence,")
    sheet.write_text("\n".join(lines) + "\n")
    summary = refresh_warehouse(source="snapshot")
    assert summary["outcome_sheets"][0]["status"] == "rejected"
    assert "row 2 column outcome" in summary["outcome_sheets"][0]["message"]
    path = settings.warehouse_path
    assert rows(path, "select count(*) from marts.fct_outcomes where source = 'publication'") == [(162,)]
    assert rows(path, "select status from raw.outcome_sheet_versions order by loaded_at") == [
        ("accepted",), ("rejected",)]


def test_every_outcome_row_links_its_citation_of_record_and_keeps_the_other_pages(built_warehouse):
    """marts.fct_outcomes: the DOI (else PubMed) link is the source of record of every sheet row
    that has one, and the other pages the curator read stay beside it, never lost."""
    path = built_warehouse.warehouse
    wrong = rows(path, """select study_id, source_url from marts.fct_outcomes
        where source = 'publication' and (doi is not null or pmid is not null)
          and lower(source_url) not in (lower('https://doi.org/' || doi),
                                        'https://pubmed.ncbi.nlm.nih.gov/' || pmid || '/')""")
    assert wrong == []
    assert rows(path, """select distinct source_url, other_source_urls from marts.fct_outcomes
        where study_id = 'GU2012_AHST_DKA'""") == [
        ("https://doi.org/10.2337/dc11-2161", ["https://pubmed.ncbi.nlm.nih.gov/22723579/"])]
    # the source of record is never repeated among the other pages, whatever its spelling
    assert rows(path, """select count(*) from marts.fct_outcomes
        where list_contains(list_transform(other_source_urls, u -> lower(u)),
                            lower(source_url))""") == [(0,)]
    assert rows(path, """select count(*) from marts.fct_outcomes
        where source = 'publication' and len(other_source_urls) > 0""")[0][0] > 50
    assert rows(path, """select count(*) from marts.fct_outcomes
        where other_source_urls is null""") == [(0,)]
