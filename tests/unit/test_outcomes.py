"""Extraction-sheet validation: every rule, all problems listed, CSV and XLSX; unit conversions."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from flows.settings import REPO_DIR
from flows.sources.outcomes.client import read_sheet
from flows.sources.outcomes.parse import SheetRejected, validate_rows
from tests.conftest import reference_file

SHEET = REPO_DIR / "data" / "outcomes" / "published_outcomes.csv"


def good_row(**overrides) -> dict[str, str]:
    row = {name: "" for name in next(csv.reader(SHEET.open()))}
    row.update(study_id="S1", pmid="12345678", diabetes_type="T1D", arm="cells", n_arm="10",
               outcome="insulin_independence", measure="proportion", value="0.5", unit="proportion",
               n_events="5", n_total="10", followup_months="12", verified="yes")
    row.update(overrides)
    return row


def problems_for(*rows) -> list[str]:
    _, problems = validate_rows(list(rows), "sheet.csv")
    return [str(p) for p in problems if p.severity == "error"]


def test_a_good_row_passes():
    assert problems_for(good_row()) == []


@pytest.mark.parametrize(
    ("overrides", "column", "message"),
    [
        ({"outcome": "cure"}, "outcome", "Input should be"),
        ({"measure": "ratio"}, "measure", "Input should be"),
        ({"n_events": "11"}, "n_events", "exceeds n_total"),
        ({"value": "1.2"}, "value", "must be in [0, 1]"),
        ({"ci_low": "0.6", "ci_high": "0.9"}, "value", "below ci_low"),
        ({"ci_low": "0.7", "ci_high": "0.2", "value": ""}, "ci_low", "above ci_high"),
        ({"unit": "mg/dL"}, "unit", "Input should be"),
        ({"pmid": "", "doi": "", "source_url": ""}, "pmid", "needs a PMID or a DOI"),
        ({"pmid": "PMID123"}, "pmid", "should match pattern"),
        ({"doi": "doi.org/10.1/x"}, "doi", "should match pattern"),
        ({"followup_months": "0"}, "followup_months", "must be positive"),
        ({"followup_months": "-3"}, "followup_months", "must be positive"),
        ({"verified": "maybe"}, "verified", "Input should be"),
        ({"measure": "mean", "unit": "proportion"}, "unit", "needs a measurement unit"),
        ({"n_arm": "ten"}, "n_arm", "valid integer"),
    ],
)
def test_each_rule_names_row_column_and_problem(overrides, column, message):
    problems = problems_for(good_row(), good_row(**overrides))
    assert problems, overrides
    assert any(f"row 3 column {column}" in p and message in p for p in problems), problems


def test_arm_sizes_must_agree_within_a_study():
    problems = problems_for(good_row(), good_row(outcome="death", measure="count", value="0",
                                                 unit="count", n_arm="12", n_events="",
                                                 n_total=""))
    assert any("arm 'cells' of S1 has n_arm 12 here but 10 on row 2" in p for p in problems)


def test_every_problem_is_listed_not_only_the_first():
    rows = [good_row(value="2"), good_row(outcome="x"), good_row(n_events="99")]
    with pytest.raises(SheetRejected) as caught:
        _, problems = validate_rows(rows, "bad.csv")
        raise SheetRejected(problems)
    text = str(caught.value)
    assert "row 2 column value" in text and "row 3 column outcome" in text
    assert "row 4 column n_events" in text
    assert "previous accepted sheet stays in effect" in text


def test_url_only_citation_is_a_warning_not_an_error():
    _, problems = validate_rows([good_row(pmid="", doi="", source_url="https://x.org/a")], "s")
    assert [(p.severity, p.column) for p in problems] == [("warning", "pmid")]


def test_xlsx_sheets_are_read_like_csv(tmp_path: Path):
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    header = list(good_row())
    sheet.append(header)
    sheet.append([good_row()[h] for h in header])
    sheet.append([good_row(value="3", arm="second arm")[h] for h in header])
    path = tmp_path / "sheet.xlsx"
    workbook.save(path)
    rows = read_sheet(path)
    assert len(rows) == 2
    _, problems = validate_rows(rows, "sheet.xlsx")
    assert [str(p) for p in problems if p.severity == "error"] == [
        "sheet.xlsx row 3 column value: a proportion must be in [0, 1], got 3.0"
    ]


def test_the_conversion_seed_encodes_the_physical_constants():
    """Units are converted once, in dbt, from seed unit_conversions: check its factors against
    C-peptide's molar mass (3020.29 g/mol) and the IFCC-NGSP master equation."""
    seed = REPO_DIR / "dbt_project" / "seeds" / "unit_conversions.csv"
    rows = {(r["from_unit"], r["to_unit"]): (float(r["factor"]), float(r["offset_value"]))
            for r in csv.DictReader(seed.open())}
    assert rows[("c_peptide_ng_per_ml", "c_peptide_nmol_per_l")] == (
        pytest.approx(1 / 3.02029, 1e-6), 0.0)
    assert rows[("c_peptide_pmol_per_l", "c_peptide_nmol_per_l")] == (0.001, 0.0)
    factor, offset = rows[("hba1c_mmol_per_mol", "hba1c_percent")]
    assert 53.0 * factor + offset == pytest.approx(7.0, abs=0.01)  # 53 mmol/mol is 7.0 %
    assert factor == pytest.approx(1 / 10.929, 1e-6)


def test_shipped_sheet_loads_without_errors():
    rows = read_sheet(SHEET)
    valid, problems = validate_rows(rows, SHEET.name)
    assert [p for p in problems if p.severity == "error"] == []
    assert len(valid) == len(rows) == 162


def test_shipped_sheet_carries_every_reference_row():
    rows = read_sheet(SHEET)
    reference = list(csv.DictReader(reference_file("outcomes.csv").open()))
    assert len(rows) == len(reference)
    for ours, theirs in zip(rows, reference, strict=True):
        assert ours["study_id"] == theirs["study_id"]
        assert ours["verified"] == theirs["verified"]
        assert ours["value_as_reported"] == theirs["value"]
        assert ours["unit_as_reported"] == theirs["unit"]
        assert (ours["pmid"], ours["doi"]) == (theirs["pmid"], theirs["doi"])


def test_harm_taxonomy_unit_test_fixture_is_the_seed():
    seed = REPO_DIR / "dbt_project" / "seeds" / "harm_taxonomy.csv"
    fixture = REPO_DIR / "dbt_project" / "tests" / "fixtures" / "harm_taxonomy_fixture.csv"
    assert seed.read_text() == fixture.read_text()


def test_two_rows_disagreeing_on_one_arm_definition_and_timepoint_are_an_error_naming_both():
    first = good_row(timepoint_months="12", unit_as_reported="proportion insulin independent")
    second = good_row(timepoint_months="12", unit_as_reported="proportion insulin independent",
                      value="0.6", n_events="6")
    (problem,) = problems_for(first, second)
    assert "row 3 column value: conflicts with row 2" in problem
    assert "ii_at_timepoint" in problem and "0.6 (6/10)" in problem and "0.5 (5/10)" in problem


def test_rows_of_different_definitions_or_timepoints_do_not_conflict():
    at_twelve = good_row(timepoint_months="12", unit_as_reported="proportion insulin independent")
    ever = good_row(timepoint_months="12", unit_as_reported="insulin independent at any point",
                    value="0.7", n_events="7")
    at_six = good_row(timepoint_months="6", unit_as_reported="proportion insulin independent",
                      value="0.6", n_events="6")
    identical = dict(at_twelve)
    assert problems_for(at_twelve, ever, at_six, identical) == []


def test_the_definition_column_must_name_a_definition_of_the_rows_outcome():
    assert problems_for(good_row(outcome_definition="ii_ever")) == []
    (problem,) = problems_for(good_row(outcome_definition="graft_failure"))
    assert "'graft_failure' is not a definition of insulin_independence" in problem


def test_risk_of_bias_is_optional_and_takes_its_vocabulary_with_its_tool():
    assert problems_for(good_row(risk_of_bias="some_concerns", risk_of_bias_tool="rob2")) == []
    assert problems_for(good_row(risk_of_bias="", risk_of_bias_tool="")) == []  # not assessed
    unknown = problems_for(good_row(risk_of_bias="moderate", risk_of_bias_tool="robins_i"))
    assert any("row 2 column risk_of_bias" in p and "Input should be" in p for p in unknown)
    unknown_tool = problems_for(good_row(risk_of_bias="low", risk_of_bias_tool="jadad"))
    assert any("column risk_of_bias_tool" in p for p in unknown_tool)


@pytest.mark.parametrize(("given", "missing"), [({"risk_of_bias": "high"}, "risk_of_bias_tool"),
                                               ({"risk_of_bias_tool": "rob2"}, "risk_of_bias")])
def test_a_risk_of_bias_judgement_and_its_tool_come_together(given, missing):
    problems = problems_for(good_row(**given))
    assert any(f"row 2 column {missing}:" in p and "without" in p for p in problems), problems


def test_risk_of_bias_lands_in_raw_also_in_a_warehouse_from_before_the_column(tmp_path):
    import duckdb

    from flows.db import ensure_raw_schema
    from flows.raw_loader import load_sheet
    from flows.sources.outcomes.resource import RESOURCE

    con = duckdb.connect()
    ensure_raw_schema(con)  # then made a warehouse published before risk_of_bias existed
    for column in ("risk_of_bias", "risk_of_bias_tool"):
        con.execute(f"alter table raw.outcome_sheet_rows drop column {column}")
    sheet = tmp_path / "rob.csv"
    rows = [good_row(risk_of_bias="low", risk_of_bias_tool="nih_case_series"), good_row(arm="b")]
    with sheet.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert load_sheet(con, RESOURCE, sheet, "run-1")["status"] == "accepted"
    assert con.sql("select arm, risk_of_bias, risk_of_bias_tool from raw.outcome_sheet_rows "
                   "order by arm").fetchall() == [("b", None, None),
                                                  ("cells", "low", "nih_case_series")]
