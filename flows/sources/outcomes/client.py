"""Curated outcome sheets are files in a folder (``data/outcomes/``, ``BETACELL_OUTCOMES_DIR``):
CSV or Excel, read in place as cells of text. Anything that cannot be read as a sheet (a corrupt
workbook, a workbook bomb, an encoding that is neither UTF-8 nor Windows-1252, a file or row
count past the limits) rejects that sheet alone, naming the file."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from pathlib import Path
from typing import Any
from zlib import error as zlib_error

from flows.sources.base import SheetRejected

SHEET_SUFFIXES = {".csv", ".xlsx", ".xlsm"}


def sheets_in(folder: Path) -> list[Path]:
    """The sheets of a folder: regular files with a sheet suffix, not Office lock or hidden
    files."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*") if p.suffix.lower() in SHEET_SUFFIXES
                  and not p.name.startswith(("~", ".")) and p.is_file())


MAX_SHEET_BYTES = 50 * 1024**2
MAX_SHEET_ROWS = 100_000  # physical rows read, blank ones included (a curated sheet has hundreds)
# Workbook bounds, checked on the zip's parts before any parsing (a curated sheet has ~40 columns)
MAX_SHEET_COLUMNS = 208  # columns A to GZ
MAX_SHARED_STRINGS = 500_000
MAX_PART_BYTES = 256 * 1024**2  # one XML part of the workbook, unpacked
MAX_WORKBOOK_PARTS = 1_000
SHEET_ENCODINGS = ("utf-8-sig", "cp1252")
EXTRA_CELLS = "(extra cells)"
SHEET_ROW = "(sheet row)"  # the row's number in the spreadsheet itself: the header is row 1


def unreadable(path: Path, problem: str) -> SheetRejected:
    return SheetRejected.of_file(path, problem)


def read_sheet(path: Path, max_rows: int = MAX_SHEET_ROWS) -> list[dict[str, Any]]:
    """Rows of a CSV or XLSX sheet as dicts of strings (cells as written).

    Anything that cannot be read as a sheet (a corrupt workbook, a text encoding that is neither
    UTF-8 nor Windows-1252, a file or row count past the limits) raises :class:`SheetRejected`
    naming the file, so only that sheet is rejected. Cells beyond the header are kept under
    ``(extra cells)`` for validation to report."""
    suffix = path.suffix.lower()
    if suffix not in {".csv", ".xlsx", ".xlsm"}:
        raise unreadable(path, "outcome sheets must be .csv or .xlsx")
    size = path.stat().st_size
    if size > MAX_SHEET_BYTES:
        raise unreadable(path, f"the file is {size:,} bytes, more than the {MAX_SHEET_BYTES:,} "
                               "a sheet may have")
    try:
        rows = _read_xlsx(path, max_rows) if suffix != ".csv" else _read_csv(path, max_rows)
    except SheetRejected:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure rejects this sheet only
        raise unreadable(path, f"cannot be read as a sheet ({type(exc).__name__}: {exc})") from exc
    return rows


def _too_many_rows(path: Path, max_rows: int) -> SheetRejected:
    return unreadable(path, f"more than {max_rows:,} rows; a curated sheet is far smaller, so "
                            "this is not read further")


WORKSHEET_PART = re.compile(r"xl/worksheets/[^/]+\.xml")
DIMENSION = re.compile(rb'<(?:\w+:)?dimension\s+ref="([A-Z]+)(\d+)(?::([A-Z]+)(\d+))?"')
UNIQUE_COUNT = re.compile(rb'<(?:\w+:)?sst\b[^>]*?\buniqueCount="(\d+)"')
ROW_START = re.compile(rb"<(?:\w+:)?row[\s>/]")
STRING_START = re.compile(rb"<(?:\w+:)?si[\s>/]")
FAR_CELL = re.compile(rb'<(?:\w+:)?c\s[^>]*?\br="((?:[H-Z][A-Z]|[A-Z]{3})\d+)"')


def column_number(letters: str) -> int:
    number = 0
    for letter in letters:
        number = number * 26 + ord(letter) - 64
    return number


def check_workbook_bounds(path: Path, max_rows: int = MAX_SHEET_ROWS) -> None:
    """Reject a workbook bomb before any parser sees it: from the zip's parts alone, every
    sheet's declared dimension and the shared strings' declared count, then every part streamed
    (never held in memory) with hard caps on its unpacked size, its rows, its columns and its
    strings — declarations can lie. A small file that unpacks into millions of rows or strings
    is refused in seconds, in a few MB."""
    with zipfile.ZipFile(path) as archive:  # not a zip: "cannot be read as a sheet", named
        parts = archive.infolist()
        if len(parts) > MAX_WORKBOOK_PARTS:
            raise unreadable(path, f"has {len(parts):,} parts; a workbook has a few dozen")
        for part in parts:
            if part.file_size > MAX_PART_BYTES:
                raise unreadable(path, f"part {part.filename} declares {part.file_size:,} bytes "
                                       f"unpacked, more than the {MAX_PART_BYTES:,} allowed")
            if WORKSHEET_PART.fullmatch(part.filename):
                _scan_part(path, archive, part, _SheetBounds(path, part.filename, max_rows))
            elif part.filename.endswith("sharedStrings.xml"):
                _scan_part(path, archive, part, _StringBounds(path))
            else:
                _scan_part(path, archive, part, None)


class _SheetBounds:
    """Rows, columns and the declared dimension of one worksheet part, fed chunk by chunk."""

    def __init__(self, path: Path, part: str, max_rows: int) -> None:
        self.path, self.part, self.max_rows = path, part, max_rows
        self.rows = 0
        self.head = True

    def feed(self, chunk: bytes) -> None:
        if self.head and (found := DIMENSION.search(chunk)):
            last_column = (found.group(3) or found.group(1)).decode()
            last_row = (found.group(4) or found.group(2)).decode()
            self.head = False
            if int(last_row) > self.max_rows + 1:
                raise unreadable(self.path, f"its sheet {self.part} declares {int(last_row):,} "
                                 f"rows (dimension ...{last_column}{last_row}), more than the "
                                 f"{self.max_rows:,} a sheet may have; delete the empty or "
                                 "formatted rows below the data")
            if column_number(last_column) > MAX_SHEET_COLUMNS:
                raise unreadable(self.path, f"its sheet {self.part} declares columns up to "
                                 f"{last_column}, beyond the {MAX_SHEET_COLUMNS} (A to GZ) a "
                                 "sheet may have; delete the empty or formatted columns")
        self.rows += len(ROW_START.findall(chunk))
        if self.rows > self.max_rows + 1:
            raise _too_many_rows(self.path, self.max_rows)
        if far := FAR_CELL.search(chunk):
            raise unreadable(self.path, f"its sheet {self.part} has a cell at {far.group(1).decode()}"
                             f", beyond the {MAX_SHEET_COLUMNS} columns (A to GZ) a sheet may "
                             "have")


class _StringBounds:
    """The shared-strings part: its declared unique count, then the strings counted."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.strings = 0
        self.head = True

    def feed(self, chunk: bytes) -> None:
        if self.head:
            self.head = False
            if (found := UNIQUE_COUNT.search(chunk)) and int(found.group(1)) > MAX_SHARED_STRINGS:
                raise unreadable(self.path, f"its shared-strings part declares "
                                 f"{int(found.group(1)):,} strings, more than the "
                                 f"{MAX_SHARED_STRINGS:,} a sheet may have")
        self.strings += len(STRING_START.findall(chunk))
        if self.strings > MAX_SHARED_STRINGS:
            raise unreadable(self.path, f"its shared-strings part holds more than the "
                                        f"{MAX_SHARED_STRINGS:,} strings a sheet may have")


def _scan_part(path: Path, archive: zipfile.ZipFile, part: zipfile.ZipInfo, bounds: Any) -> None:
    """Stream one part, unpacked 1 MB at a time; the last bytes of each chunk are carried
    over, so a tag cut by a chunk boundary is still seen (and never counted twice)."""
    unpacked = 0
    carry = b""
    try:
        with archive.open(part) as stream:
            while chunk := stream.read(1 << 20):
                unpacked += len(chunk)
                if unpacked > MAX_PART_BYTES:
                    raise unreadable(path, f"part {part.filename} unpacks to more than "
                                           f"{MAX_PART_BYTES:,} bytes")
                if bounds is not None:
                    window = carry + chunk
                    cut = window.rfind(b"<")  # feed up to the last tag start
                    if cut == -1 or len(window) - cut > 4096:
                        cut = len(window)
                    bounds.feed(window[:cut])
                    carry = window[cut:]
            if bounds is not None and carry:
                bounds.feed(carry)
    except (zipfile.BadZipFile, EOFError, zlib_error) as exc:
        raise unreadable(path, f"part {part.filename} is damaged ({exc})") from exc


def _read_xlsx(path: Path, max_rows: int) -> list[dict[str, Any]]:
    check_workbook_bounds(path, max_rows)
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        sheet = _data_tab(path, workbook)
        width = min(sheet.max_column or MAX_SHEET_COLUMNS, MAX_SHEET_COLUMNS)
        lines = sheet.iter_rows(values_only=True, max_col=width)
        first = next(lines, None)
        if first is None:
            return []
        header = _check_header([str(h).strip() if h is not None else "" for h in first], path)
        rows = []
        for number, values in enumerate(lines, start=1):
            if number > max_rows:
                raise _too_many_rows(path, max_rows)
            if not any(v not in (None, "") for v in values):
                continue
            row = {h: ("" if v is None else str(v)) for h, v in zip(header, values, strict=False)
                   if h}
            row[SHEET_ROW] = str(number + 1)
            extra = [v for v in values[len(header):] if v is not None and str(v).strip()]
            extra += [v for h, v in zip(header, values, strict=False)
                      if not h and v is not None and str(v).strip()]
            if extra:
                row[EXTRA_CELLS] = str(len(extra))
            rows.append(row)
        return rows
    finally:
        workbook.close()


def _data_tab(path: Path, workbook: Any) -> Any:
    """The tab holding the sheet: the only tab with data, or the one named "outcomes" — never
    whichever tab happened to be active when the workbook was saved."""
    named = [ws for ws in workbook.worksheets if ws.title.strip().lower() == "outcomes"]
    if named:
        return named[0]
    with_data = [ws for ws in workbook.worksheets if (ws.max_row or 0) > 1]
    if len(with_data) > 1:
        raise unreadable(path, "the workbook has several tabs with data ("
                         + ", ".join(repr(ws.title) for ws in with_data)
                         + "); name the one to load 'outcomes' or remove the others")
    return with_data[0] if with_data else workbook.worksheets[0]


def _check_header(header: list[str], path: Path) -> list[str]:
    """A column named twice would silently overwrite the first: reject the sheet instead."""
    named = [h for h in header if h]
    twice = sorted({h for h in named if named.count(h) > 1})
    if twice:
        raise unreadable(path, f"column(s) {', '.join(twice)} appear more than once in the "
                               "header; one would silently overwrite the other")
    return header


def _read_csv(path: Path, max_rows: int) -> list[dict[str, Any]]:
    content = path.read_bytes()
    for encoding in SHEET_ENCODINGS:
        try:
            text = content.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise unreadable(path, "the text is neither UTF-8 nor Windows-1252; save it as UTF-8")
    rows = []
    # csv.reader, not DictReader: a blank line is a row of the spreadsheet too, so numbering
    # every record keeps each row's number the one the curator sees (the header is row 1)
    reader = csv.reader(io.StringIO(text, newline=""))
    fieldnames = next(reader, None) or []
    _check_header([h.strip() for h in fieldnames], path)
    for number, cells in enumerate(reader, start=2):
        if number - 1 > max_rows:
            raise _too_many_rows(path, max_rows)
        if not cells:
            continue
        row: dict[Any, Any] = dict(zip(fieldnames, cells, strict=False))
        if len(cells) > len(fieldnames):
            row[None] = cells[len(fieldnames):]
        if "" in row:  # a column without a header: harmless when empty, else an extra cell
            stray = row.pop("")
            if stray and stray.strip():
                row.setdefault(None, []).append(stray)
        extra = [cell for cell in row.pop(None, None) or [] if cell and cell.strip()]
        if extra:  # trailing empty cells (a trailing comma) are harmless
            row[EXTRA_CELLS] = str(len(extra))
        row = {k: ("" if v is None else v) for k, v in row.items()}
        row.update({name: "" for name in fieldnames[len(cells):] if name})
        row[SHEET_ROW] = str(number)
        rows.append(row)
    if encoding != "utf-8-sig" and rows:
        rows[0]["(encoding)"] = encoding
    return rows


