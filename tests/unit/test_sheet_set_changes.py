"""A fixed sheet is fixed, at the raw loader: what is on disk is what the versions table says
the last run saw, so a change in the set of sheet files (one added, removed, restored) is news
for the no-op check; a rejected sheet's rows are rejected records; row numbers are the
spreadsheet's own (the header is row 1). The marts over this are walked in
tests/integration/test_fixed_sheet.py."""

from __future__ import annotations

import duckdb
import pytest

from flows.db import ensure_raw_schema
from flows.raw_loader import load_sheets
from flows.settings import REPO_DIR, Settings
from flows.sources.base import SourceRun
from flows.sources.outcomes.resource import RESOURCE
from flows.stages import brings_nothing_new

MAIN = "published_outcomes.csv"
SHIPPED = (REPO_DIR / "data" / "outcomes" / MAIN).read_text(encoding="utf-8")


def broken(text: str) -> str:
    """The shipped sheet with an outcome misspelt on its first data row (spreadsheet row 2)
    and a blank line before its last row (a row of the spreadsheet too)."""
    lines = text.splitlines()
    lines[1] = lines[1].replace(",insulin_independence,", ",insulin_indepence,")
    return "\n".join(lines[:-1] + ["", lines[-1]]) + "\n"


@pytest.fixture
def folder(tmp_path):
    folder = tmp_path / "outcomes"
    folder.mkdir()
    (folder / MAIN).write_text(SHIPPED, encoding="utf-8")
    return folder


@pytest.fixture
def run_sheets(tmp_path, folder, monkeypatch):
    """Each call: one sheet run over the folder as it is now, on one warehouse (a rejection is
    remembered: the code is the published one)."""
    monkeypatch.setattr("flows.publish.published_fingerprint", lambda settings: "same")
    monkeypatch.setattr("flows.publish.code_fingerprint", lambda settings: "same")
    settings = Settings(data_dir=tmp_path / "data", outcomes_dir=folder)
    con = duckdb.connect()
    ensure_raw_schema(con)

    def run() -> SourceRun:
        extracted = RESOURCE.extract(type("Request", (), {"settings": settings})())
        return load_sheets(con, settings, RESOURCE, extracted)

    run.con = con
    yield run
    con.close()


def statuses(run: SourceRun) -> dict[str, str]:
    return {d["sheet"]: d["status"] for d in run.details}


def test_reject_restore_add_delete_each_is_news_and_nothing_else_is(folder, run_sheets):
    assert statuses(first := run_sheets()) == {MAIN: "accepted"}
    assert not brings_nothing_new(first)
    assert brings_nothing_new(run_sheets()), "an unchanged folder is no news"

    (folder / MAIN).write_text(broken(SHIPPED), encoding="utf-8")
    assert statuses(rejected := run_sheets()) == {MAIN: "rejected"}
    assert not brings_nothing_new(rejected)
    assert brings_nothing_new(run_sheets()), "a rejected sheet left as it is is no news"

    (folder / MAIN).write_text(SHIPPED, encoding="utf-8")
    restored = run_sheets()
    assert statuses(restored) == {MAIN: "accepted"}, "restoring the sheet in effect is news"
    assert not brings_nothing_new(restored)
    assert brings_nothing_new(run_sheets())

    (folder / "second.csv").write_text(broken(SHIPPED), encoding="utf-8")
    assert statuses(added := run_sheets())["second.csv"] == "rejected"
    assert not brings_nothing_new(added)

    (folder / "second.csv").unlink()
    deleted = run_sheets()
    assert statuses(deleted) == {MAIN: "unchanged", "second.csv": "withdrawn"}, \
        "deleting a rejected sheet is news"
    assert not brings_nothing_new(deleted)
    assert brings_nothing_new(run_sheets())

    latest = dict(run_sheets.con.execute(
        "select sheet_file, status from raw.outcome_sheet_versions qualify row_number() over "
        "(partition by sheet_file order by loaded_at desc) = 1").fetchall())
    assert latest == {MAIN: "accepted", "second.csv": "withdrawn"}


def test_a_rejected_version_put_back_after_another_is_on_disk_again(folder, run_sheets):
    run_sheets()
    first_bad = broken(SHIPPED)
    second_bad = first_bad.replace(",12,", ",-12,", 1)
    for text, expected in ((first_bad, "rejected"), (second_bad, "rejected"),
                           (first_bad, "rejected")):
        (folder / MAIN).write_text(text, encoding="utf-8")
        assert statuses(run := run_sheets()) == {MAIN: expected}
        assert not brings_nothing_new(run)
    assert statuses(run_sheets()) == {MAIN: "still_rejected"}


def test_a_rejected_sheets_rows_are_rejected_records_numbered_as_in_the_spreadsheet(
        folder, run_sheets):
    (folder / MAIN).write_text(broken(SHIPPED), encoding="utf-8")
    run_sheets()
    records = run_sheets.con.execute(
        "select source, source_file, source_line, record_id, reason from raw.rejected_records "
        "order by source_line").fetchall()
    data_rows = len(SHIPPED.splitlines()) - 1
    assert len(records) == data_rows  # every row of the rejected sheet, none twice
    assert {(s, f) for s, f, *_ in records} == {("outcomes", MAIN)}
    (error_row,) = [r for r in records if r[2] == 2]
    assert "column outcome" in error_row[4] and "insulin_indepence" in error_row[4]
    lines = [r[2] for r in records]
    assert lines[:2] == [2, 3], "the header is row 1: the first data row is row 2"
    assert lines[-1] == data_rows + 2, "the blank line before the last row is a row too"
    assert all("rejected whole" in r[4] and r[3] for r in records if r[2] != 2)
    (problems,) = run_sheets.con.execute(
        "select problems from raw.outcome_sheet_versions where status = 'rejected'").fetchone()
    assert problems.startswith(f"{MAIN} row 2 column outcome:")


def test_accepted_rows_keep_their_spreadsheet_row(folder, run_sheets):
    (folder / MAIN).write_text(SHIPPED.replace("\n", "\n\n", 1), encoding="utf-8")  # row 2 blank
    run_sheets()
    rows = [r for (r,) in run_sheets.con.execute(
        "select source_row from raw.outcome_sheet_rows order by source_row").fetchall()]
    assert rows[0] == 3 and rows[-1] == len(SHIPPED.splitlines()) + 1
