"""Workbook bombs: small .xlsx files that unpack into huge sheets (the probe's two, and kin).

A workbook is a zip of XML parts; these are written part by part, the sheet streamed into its
zip entry, so a bomb of millions of rows is built without holding it in memory.
Usage as a script (the reliability measurement in the README):
    python -m tests.faults.workbook_bombs <rows|strings> <count> <path>
"""

from __future__ import annotations

import sys
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

CONTENT_TYPES = b"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
<Default Extension="xml" ContentType="application/xml"/>
<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>
<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>
<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>
</Types>"""
ROOT_RELS = b"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>
</Relationships>"""
WORKBOOK = b"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">
<sheets><sheet name="outcomes" sheetId="1" r:id="rId1"/></sheets></workbook>"""
WORKBOOK_RELS = b"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>
<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>
</Relationships>"""
SHEET_HEAD = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
              b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">')
HEADER = ("study_id", "diabetes_type", "outcome", "measure", "unit", "verified")


def _column(index: int) -> str:
    letters = ""
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _header_row() -> bytes:
    cells = "".join(f'<c r="{_column(i)}1" t="inlineStr"><is><t>{name}</t></is></c>'
                    for i, name in enumerate(HEADER, start=1))
    return f'<row r="1">{cells}</row>'.encode()


def write_workbook(path: Path, sheet_rows: Iterable[bytes], strings: Iterable[bytes] = (),
                   dimension: str | None = None) -> Path:
    """A minimal workbook: one tab 'outcomes' whose rows are ``sheet_rows`` (after a header
    row), and a shared-strings part holding ``strings``."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES)
        archive.writestr("_rels/.rels", ROOT_RELS)
        archive.writestr("xl/workbook.xml", WORKBOOK)
        archive.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)
        with archive.open("xl/sharedStrings.xml", "w", force_zip64=True) as part:
            part.write(b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<sst xmlns='
                       b'"http://schemas.openxmlformats.org/spreadsheetml/2006/main">')
            _write_chunked(part, (b"<si><t>" + s + b"</t></si>" for s in strings))
            part.write(b"</sst>")
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as part:
            part.write(SHEET_HEAD)
            if dimension:
                part.write(f'<dimension ref="{dimension}"/>'.encode())
            part.write(b"<sheetData>" + _header_row())
            _write_chunked(part, sheet_rows)
            part.write(b"</sheetData></worksheet>")
    return path


def _write_chunked(part, pieces: Iterable[bytes], size: int = 1 << 20) -> None:
    buffer = bytearray()
    for piece in pieces:
        buffer += piece
        if len(buffer) >= size:
            part.write(bytes(buffer))
            buffer.clear()
    part.write(bytes(buffer))


def repeated_rows(count: int) -> Iterator[bytes]:
    """Identical rows without row numbers: they compress about a thousand to one."""
    row = b"<row><c><v>1</v></c></row>"
    for _ in range(count):
        yield row


def row_bomb(path: Path, rows: int = 15_000_000) -> Path:
    """The probe's row bomb: a 2 MB file of 15 million rows declaring the sheet's last column
    (XFD) in its dimension, so a reader pads every row to 16,384 cells."""
    return write_workbook(path, repeated_rows(rows), dimension=f"A1:XFD{rows + 1}")


def strings_bomb(path: Path, strings: int = 6_000_000) -> Path:
    """The probe's shared-strings bomb: a few rows and millions of shared strings."""
    return write_workbook(path, [], (b"s%d" % (i % 10) for i in range(strings)))


if __name__ == "__main__":
    kind, count, target = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    made = (row_bomb if kind == "rows" else strings_bomb)(target, count)
    print(f"{made}: {made.stat().st_size:,} bytes")
