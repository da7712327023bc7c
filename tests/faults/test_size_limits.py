"""Size limits on what is decompressed or read, each naming the source: a zip bomb in the
registry archive, a workbook whose few megabytes expand to endless rows, an oversized sheet."""

from __future__ import annotations

import time
import zipfile

import pytest

from flows.errors import SourceError
from flows.sources.base import SheetRejected
from flows.sources.ctgov.client import MAX_STUDY_BYTES, iter_archive_studies
from flows.sources.outcomes.client import MAX_SHEET_ROWS, read_sheet


def test_a_zip_bomb_entry_in_the_registry_archive_is_refused_by_name(tmp_path):
    archive = tmp_path / "json.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as out:
        out.writestr("NCT0000xxxx/NCT00000001.json", b'{"protocolSection": {}}')
        with out.open("NCT0000xxxx/NCT00000002.json", "w") as entry:
            chunk = b" " * (1 << 20)
            for _ in range(MAX_STUDY_BYTES // len(chunk) + 8):
                entry.write(chunk)
    assert archive.stat().st_size < 2_000_000
    studies = iter_archive_studies(archive)
    assert next(studies)[0].endswith("NCT00000001.json")
    with pytest.raises(SourceError, match=r"entry 'NCT0000xxxx/NCT00000002.json' is larger than "
                                          r"67,108,864 bytes once decompressed"):
        next(studies)


XLSX_PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
        'package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.'
        'openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType='
        '"application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.'
        'openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/'
        'worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.'
        'spreadsheetml.worksheet+xml"/></Types>'),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats'
        '.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxml'
        'formats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
        '</Relationships>'),
    "xl/workbook.xml": (
        '<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/'
        'spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'),
    "xl/_rels/workbook.xml.rels": (
        '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats'
        '.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxml'
        'formats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
        '</Relationships>'),
}


def test_a_workbook_expanding_to_endless_rows_is_rejected_quickly(tmp_path):
    path = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as out:
        for name, text in XLSX_PARTS.items():
            out.writestr(name, text)
        with out.open("xl/worksheets/sheet1.xml", "w") as sheet:
            sheet.write(b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.'
                        b'openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
                        b'<row r="1"><c r="A1" t="inlineStr"><is><t>study_id</t></is></c></row>')
            for number in range(2, 3 * MAX_SHEET_ROWS):
                sheet.write(b'<row r="%d"/>' % number)
            sheet.write(b"</sheetData></worksheet>")
    assert path.stat().st_size < 1_000_000
    started = time.monotonic()
    with pytest.raises(SheetRejected, match=r"bomb.xlsx row 0 column \(file\): more than "
                                            r"100,000 rows"):
        read_sheet(path)
    assert time.monotonic() - started < 60


def test_a_csv_sheet_with_too_many_rows_is_rejected_by_name(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("study_id\n" + "S1\n" * 11)
    with pytest.raises(SheetRejected, match=r"long.csv row 0 column \(file\): more than 10 rows"):
        read_sheet(path, max_rows=10)


def test_a_sheet_with_a_header_and_no_rows_is_rejected_not_taken_as_a_withdrawal(tmp_path):
    import duckdb

    from flows.raw_loader import load_sheet
    from flows.sources.outcomes.resource import RESOURCE

    path = tmp_path / "published_outcomes.csv"
    path.write_text("study_id,outcome\n")
    with pytest.raises(SheetRejected, match="the sheet has no data rows; to withdraw a sheet, "
                                            "remove the file"):
        load_sheet(duckdb.connect(), RESOURCE, path, "sheets-1")


def test_trailing_empty_cells_in_a_sheet_are_not_extra_cells(tmp_path):
    path = tmp_path / "trailing.csv"
    path.write_text("study_id,outcome\nS1,death,\nS2,death,,\n")
    assert read_sheet(path) == [{"study_id": "S1", "outcome": "death", "(sheet row)": "2"},
                                {"study_id": "S2", "outcome": "death", "(sheet row)": "3"}]
