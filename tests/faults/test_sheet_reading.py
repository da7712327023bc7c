"""Sheet reading traps found by the second probe: a column named twice, a workbook saved with
a backup tab active, empty unnamed columns, a folder named like a sheet, the same sheet twice."""

from __future__ import annotations

import shutil

import duckdb
import pytest
from openpyxl import Workbook

from flows.raw_loader import load_sheet
from flows.settings import REPO_DIR
from flows.sources.base import SheetRejected
from flows.sources.outcomes.client import read_sheet
from flows.sources.outcomes.resource import RESOURCE

SHEET = REPO_DIR / "data" / "outcomes" / "published_outcomes.csv"


def test_a_column_named_twice_rejects_the_sheet(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("study_id,value,outcome,value\nS1,0.83,death,\n")
    with pytest.raises(SheetRejected, match=r"column\(s\) value appear more than once"):
        read_sheet(path)
    workbook = Workbook()
    workbook.active.append(["study_id", "value", "value"])
    workbook.active.append(["S1", 0.83, 0.5])
    workbook.save(tmp_path / "dup.xlsx")
    with pytest.raises(SheetRejected, match="appear more than once"):
        read_sheet(tmp_path / "dup.xlsx")


def test_a_workbook_is_not_read_from_whichever_tab_was_active(tmp_path):
    workbook = Workbook()
    main = workbook.active
    main.title = "data"
    main.append(["study_id", "outcome"])
    main.append(["S1", "death"])
    backup = workbook.create_sheet("backup 2024")
    backup.append(["study_id", "outcome"])
    backup.append(["OLD", "death"])
    workbook.active = 1  # saved with the backup tab in front
    workbook.save(tmp_path / "tabs.xlsx")
    with pytest.raises(SheetRejected, match="several tabs with data \\('data', 'backup 2024'\\)"):
        read_sheet(tmp_path / "tabs.xlsx")
    main.title = "outcomes"
    workbook.save(tmp_path / "tabs.xlsx")
    assert read_sheet(tmp_path / "tabs.xlsx") == [{"study_id": "S1", "outcome": "death",
                                                   "(sheet row)": "2"}]


def test_an_empty_unnamed_column_is_harmless_a_filled_one_is_an_extra_cell(tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text("study_id,outcome,\nS1,death,\nS2,death, \n")
    assert read_sheet(path) == [{"study_id": "S1", "outcome": "death", "(sheet row)": "2"},
                                {"study_id": "S2", "outcome": "death", "(sheet row)": "3"}]
    path.write_text("study_id,outcome,\nS1,death,oops\n")
    assert read_sheet(path)[0]["(extra cells)"] == "1"


def test_the_same_sheet_under_two_names_is_loaded_once(tmp_path):
    first, copy = tmp_path / "published_outcomes.csv", tmp_path / "published_outcomes - Copy.csv"
    shutil.copy(SHEET, first)
    shutil.copy(SHEET, copy)
    con, seen = duckdb.connect(), {}
    assert load_sheet(con, RESOURCE, first, "sheets-1", seen)["status"] == "accepted"
    with pytest.raises(SheetRejected, match="the same content as published_outcomes.csv"):
        load_sheet(con, RESOURCE, copy, "sheets-1", seen)


def test_a_folder_named_like_a_sheet_is_not_a_sheet(settings, tmp_path, monkeypatch):
    from tests.helpers import extract

    folder = tmp_path / "sheets"
    (folder / "archive.csv").mkdir(parents=True)
    shutil.copy(SHEET, folder / "published_outcomes.xlsm")  # suffix counts; content is CSV
    monkeypatch.setattr(type(settings), "outcomes_path", property(lambda self: folder))
    ingested = extract("outcomes", settings, "snapshot")
    assert ingested.ledger["sheets"] == [str(folder / "published_outcomes.xlsm")]
