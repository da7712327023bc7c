"""Outcome extraction sheets: schema, validation (every problem listed), unit conversion, load.

One row per study arm x outcome x timepoint (see data/outcomes/README.md). A sheet with any
error is rejected whole; the previously accepted sheet stays in effect because staging reads
only the newest *accepted* sheet version from ``raw.outcome_sheet_rows``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from zlib import error as zlib_error

import duckdb
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from flows.db import ensure_raw_schema
from flows.errors import BetacellError
from flows.landing import utc_now
from flows.settings import REPO_DIR

SEEDS = REPO_DIR / "dbt_project" / "seeds"


def sheet_vocabulary(column: str) -> tuple[str, ...]:
    """The allowed values of one controlled sheet column (seed sheet_vocabulary, their one home)."""
    with (SEEDS / "sheet_vocabulary.csv").open(newline="", encoding="utf-8") as handle:
        return tuple(row["value"] for row in csv.DictReader(handle) if row["column_name"] == column)


OUTCOMES = sheet_vocabulary("outcome")
MEASURES = sheet_vocabulary("measure")
VERIFIED = sheet_vocabulary("verified")
DIABETES_TYPES = sheet_vocabulary("diabetes_type")
UNITS = sheet_vocabulary("unit")  # 'as_reported': kept verbatim, never converted or pooled
RISK_OF_BIAS = sheet_vocabulary("risk_of_bias")
RISK_OF_BIAS_TOOLS = sheet_vocabulary("risk_of_bias_tool")


class OutcomeRow(BaseModel):
    """One extraction-sheet row. Text '' means not reported and becomes None."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    study_id: str = Field(min_length=1)
    first_author: str | None = None
    year: int | None = Field(default=None, ge=1950, le=2100)
    journal: str | None = None
    pmid: str | None = Field(default=None, pattern=r"^\d{1,9}$")
    doi: str | None = Field(default=None, pattern=r"^10\.\d{4,9}/\S+$")
    source_url: str | None = None  # the source of record: the DOI or PubMed link where there is one
    other_source_urls: str | None = None  # every other URL the curator read, space-separated
    trial_id: str | None = None
    design: str | None = None
    randomized: str | None = None
    diabetes_type: Literal[DIABETES_TYPES]  # type: ignore[valid-type]
    population_note: str | None = None
    therapy_class_as_reported: str | None = None
    cell_source: str | None = None
    donor_type: str | None = None
    route: str | None = None
    dose: str | None = None
    immunosuppression: str | None = None
    arm: str | None = None  # None: the row is about the study as a whole (e.g. "no human data")
    n_arm: int | None = Field(default=None, ge=0)
    n_arm_as_reported: str | None = None
    followup_months: float | None = None
    followup_as_reported: str | None = None
    outcome: Literal[OUTCOMES]  # type: ignore[valid-type]
    outcome_definition: str | None = None  # a definition id of seed outcome_definitions
    timepoint_months: float | None = None
    timepoint_as_reported: str | None = None
    measure: Literal[MEASURES]  # type: ignore[valid-type]
    value: float | None = None
    value_as_reported: str | None = None
    unit: Literal[UNITS]  # type: ignore[valid-type]
    unit_as_reported: str | None = None
    n_events: int | None = Field(default=None, ge=0)
    n_total: int | None = Field(default=None, ge=0)
    ci_low: float | None = None
    ci_high: float | None = None
    verified: Literal[VERIFIED]  # type: ignore[valid-type]
    source: str | None = None
    # the curator's risk-of-bias judgement of this result and the tool that gave it (optional)
    risk_of_bias: Literal[RISK_OF_BIAS] | None = None  # type: ignore[valid-type]
    risk_of_bias_tool: Literal[RISK_OF_BIAS_TOOLS] | None = None  # type: ignore[valid-type]

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip() == "":
            return None
        return value

    @field_validator("followup_months", "timepoint_months", "value", "ci_low", "ci_high")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number (not inf or nan)")
        return value


@dataclass(frozen=True)
class SheetProblem:
    file: str
    row: int  # 1-based data row (the header is row 0)
    column: str
    problem: str
    severity: str = "error"  # error rejects the sheet; warning is reported

    def __str__(self) -> str:
        return f"{self.file} row {self.row} column {self.column}: {self.problem}"


class SheetRejected(BetacellError):
    def __init__(self, problems: list[SheetProblem], sheet_sha256: str | None = None) -> None:
        self.problems = problems
        self.sheet_sha256 = sheet_sha256  # the content rejected (None: it could not be read)
        errors = [p for p in problems if p.severity == "error"]
        listed = "; ".join(str(p) for p in errors[:12])
        more = f"; and {len(errors) - 12} more" if len(errors) > 12 else ""
        super().__init__(
            f"outcome sheet rejected with {len(errors)} problem(s); the previous accepted sheet "
            f"stays in effect. {listed}{more}"
        )


MAX_SHEET_BYTES = 50 * 1024**2
MAX_SHEET_ROWS = 100_000  # physical rows read, blank ones included (a curated sheet has hundreds)
# Workbook bounds, checked on the zip's parts before any parsing (a curated sheet has ~40 columns)
MAX_SHEET_COLUMNS = 208  # columns A to GZ
MAX_SHARED_STRINGS = 500_000
MAX_PART_BYTES = 256 * 1024**2  # one XML part of the workbook, unpacked
MAX_WORKBOOK_PARTS = 1_000
SHEET_ENCODINGS = ("utf-8-sig", "cp1252")
EXTRA_CELLS = "(extra cells)"


def unreadable(path: Path, problem: str) -> SheetRejected:
    return SheetRejected([SheetProblem(path.name, 0, "(file)", problem)])


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
    reader = csv.DictReader(io.StringIO(text, newline=""))
    _check_header([h.strip() for h in reader.fieldnames or []], path)
    for number, row in enumerate(reader, start=1):
        if number > max_rows:
            raise _too_many_rows(path, max_rows)
        if "" in row:  # a column without a header: harmless when empty, else an extra cell
            stray = row.pop("")
            if stray and stray.strip():
                row.setdefault(None, []).append(stray)
        extra = [cell for cell in row.pop(None, None) or [] if cell and cell.strip()]
        if extra:  # trailing empty cells (a trailing comma) are harmless
            row[EXTRA_CELLS] = str(len(extra))
        rows.append({k: ("" if v is None else v) for k, v in row.items()})
    if encoding != "utf-8-sig" and rows:
        rows[0]["(encoding)"] = encoding
    return rows


def validate_rows(rows: list[dict[str, Any]], file: str) -> tuple[list[OutcomeRow], list[SheetProblem]]:
    """Check every row and every cross-row rule; return valid rows and all problems found."""
    problems: list[SheetProblem] = []
    parsed: list[tuple[int, OutcomeRow]] = []
    for number, raw in enumerate(rows, start=1):
        raw = dict(raw)
        if encoding := raw.pop("(encoding)", None):
            problems.append(SheetProblem(file, 0, "(file)", f"read as {encoding}, not UTF-8: "
                                         "check accented names, and save the sheet as UTF-8",
                                         "warning"))
        if extra := raw.pop(EXTRA_CELLS, None):
            problems.append(SheetProblem(file, number, "(row)", f"{extra} more cell(s) than the "
                                         "header; the row is not trusted"))
            continue
        try:
            row = OutcomeRow(**raw)
        except ValidationError as exc:
            for error in exc.errors():
                column = ".".join(str(p) for p in error["loc"]) or "(row)"
                given = raw.get(column, "") if isinstance(raw, dict) else ""
                message = error["msg"] + (f" (got {given!r:.60})" if given else "")
                problems.append(SheetProblem(file, number, column, message))
            continue
        problems += _row_rules(row, number, file)
        parsed.append((number, row))
    problems += _arm_size_rules(parsed, file)
    problems += _conflict_rules(parsed, file)
    return [row for _, row in parsed], problems


def _row_rules(row: OutcomeRow, number: int, file: str) -> list[SheetProblem]:
    out = []

    def add(column: str, problem: str, severity: str = "error") -> None:
        out.append(SheetProblem(file, number, column, problem, severity))

    if not row.pmid and not row.doi:
        if row.source_url:
            add("pmid", "no PMID or DOI; citation is a URL only (kept, flagged url_only)",
                "warning")
        else:
            add("pmid", "every row needs a PMID or a DOI (or at least a source URL)")
    for column in ("source_url", "other_source_urls"):
        for url in (getattr(row, column) or "").split():
            if not url.lower().startswith(("https://", "http://")):
                add(column, f"{url!r:.80} is not an http(s) URL (several URLs are separated by "
                            "spaces)")
    if row.n_events is not None and row.n_total is not None and row.n_events > row.n_total:
        add("n_events", f"n_events {row.n_events} exceeds n_total {row.n_total}")
    if row.measure == "proportion" and row.value is not None and not 0 <= row.value <= 1:
        add("value", f"a proportion must be in [0, 1], got {row.value}")
    for name in ("ci_low", "ci_high"):
        bound = getattr(row, name)
        if bound is not None and row.measure == "proportion" and not 0 <= bound <= 1:
            add(name, f"a proportion's interval must be in [0, 1], got {bound}")
    if row.ci_low is not None and row.ci_high is not None and row.ci_low > row.ci_high:
        add("ci_low", f"ci_low {row.ci_low} is above ci_high {row.ci_high}")
    if row.value is not None:
        if row.ci_low is not None and row.value < row.ci_low:
            add("value", f"value {row.value} is below ci_low {row.ci_low}")
        if row.ci_high is not None and row.value > row.ci_high:
            add("value", f"value {row.value} is above ci_high {row.ci_high}")
    if row.followup_months is not None and row.followup_months <= 0:
        add("followup_months", f"follow-up must be positive, got {row.followup_months}")
    if row.timepoint_months is not None and row.timepoint_months < 0:
        add("timepoint_months", f"timepoint must not be negative, got {row.timepoint_months}")
    if row.measure == "qualitative" and row.value is not None:
        add("value", "a qualitative row carries its direction in value_as_reported, not a number")
    if row.measure in {"mean", "median", "mean_change"} and row.value is not None and row.unit in {
        "none", "proportion", "count"}:
        add("unit", f"a {row.measure} needs a measurement unit, got {row.unit}")
    if row.unit == "as_reported" and not row.unit_as_reported:
        add("unit_as_reported", "unit 'as_reported' needs the unit text in unit_as_reported")
    if row.measure == "count" and row.value is not None and row.value != int(row.value):
        add("value", f"a count must be a whole number, got {row.value}")
    if (row.risk_of_bias is None) != (row.risk_of_bias_tool is None):
        given, missing = (("risk_of_bias", "risk_of_bias_tool") if row.risk_of_bias
                          else ("risk_of_bias_tool", "risk_of_bias"))
        add(missing, f"{given} is given without {missing}: a risk-of-bias judgement names the "
                     f"tool that gave it ({', '.join(RISK_OF_BIAS_TOOLS)}) and the tool its "
                     f"judgement ({', '.join(RISK_OF_BIAS)})")
    return out


def _arm_size_rules(parsed: list[tuple[int, OutcomeRow]], file: str) -> list[SheetProblem]:
    """Within a study, one arm has one size (n_arm) across its rows."""
    sizes: dict[tuple[str, str], tuple[int, int]] = {}
    out = []
    for number, row in parsed:
        if row.n_arm is None:
            continue
        key = (row.study_id, row.arm)
        if key in sizes and sizes[key][1] != row.n_arm:
            first_row, first_size = sizes[key]
            out.append(SheetProblem(
                file, number, "n_arm",
                f"arm {row.arm!r} of {row.study_id} has n_arm {row.n_arm} here but "
                f"{first_size} on row {first_row}"))
        sizes.setdefault(key, (number, row.n_arm))
        if row.n_total is not None and row.n_total > row.n_arm and row.measure == "proportion":
            out.append(SheetProblem(
                file, number, "n_total",
                f"n_total {row.n_total} exceeds the arm size n_arm {row.n_arm}"))
    return out


@lru_cache(maxsize=1)
def outcome_definitions() -> dict[str, str]:
    """definition id -> its outcome (seed outcome_definitions, the one home)."""
    with (SEEDS / "outcome_definitions.csv").open(newline="", encoding="utf-8") as handle:
        return {row["definition_id"]: row["outcome"] for row in csv.DictReader(handle)}


@lru_cache(maxsize=1)
def definition_map() -> dict[tuple[str, str, str], tuple[str, str]]:
    """The reviewed mapping (seed outcome_definition_map): (study or '', outcome, text as
    reported) -> (definition id, population)."""
    with (SEEDS / "outcome_definition_map.csv").open(newline="", encoding="utf-8") as handle:
        return {(r["study_id"], r["outcome"], r["text_as_reported"]): (r["definition_id"],
                                                                       r["population"])
                for r in csv.DictReader(handle)}


def row_definition(row: OutcomeRow) -> tuple[str | None, str]:
    """The row's outcome definition and population: the sheet's column, else the reviewed
    mapping of its as-reported text (study-specific first); (None, 'all') when neither."""
    if row.outcome_definition:
        return row.outcome_definition, "all"
    text = row.unit_as_reported or ""
    mapping = definition_map()
    return mapping.get((row.study_id, row.outcome, text)) or mapping.get(
        ("", row.outcome, text)) or (None, "all")


def _conflict_rules(parsed: list[tuple[int, OutcomeRow]], file: str) -> list[SheetProblem]:
    """One study arm x population x outcome x definition x timepoint has one value: two rows
    that disagree are an error naming both (nothing chooses between them)."""
    out = []
    known = outcome_definitions()
    seen: dict[tuple, tuple[int, tuple]] = {}
    for number, row in parsed:
        if row.outcome_definition and known.get(row.outcome_definition) != row.outcome:
            out.append(SheetProblem(
                file, number, "outcome_definition",
                f"{row.outcome_definition!r} is not a definition of {row.outcome} "
                "(seed outcome_definitions)"))
            continue
        definition, population = row_definition(row)
        timepoint = (row.timepoint_months if row.timepoint_months is not None
                     else row.timepoint_as_reported)
        key = (row.study_id, row.arm, population, row.outcome,
               definition or f"as reported: {row.unit_as_reported}", row.measure, timepoint)
        numbers = (row.value, row.n_events, row.n_total)
        if key in seen and seen[key][1] != numbers:
            first_row, first = seen[key]
            out.append(SheetProblem(
                file, number, "value",
                f"conflicts with row {first_row}: {row.study_id} arm {row.arm!r} "
                f"{row.outcome} ({definition or 'no definition'}) at timepoint {timepoint} is "
                f"{_numbers(numbers)} here but {_numbers(first)} on row {first_row}"))
        seen.setdefault(key, (number, numbers))
    return out


def _numbers(numbers: tuple) -> str:
    value, events, total = numbers
    shown = "no value" if value is None else f"value {value}"
    return shown + (f" ({events}/{total})" if events is not None else "")


def sheet_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def current_sheet_version(con: duckdb.DuckDBPyConnection, sheet_file: str) -> str | None:
    """sha256 of the version of ``sheet_file`` now in effect (None: none, or withdrawn)."""
    row = con.execute(
        "select status, sheet_sha256 from raw.outcome_sheet_versions "
        "where sheet_file = ? and status in ('accepted', 'withdrawn') "
        "order by loaded_at desc limit 1", [sheet_file]).fetchone()
    return row[1] if row and row[0] == "accepted" else None


def rejected_before(con: duckdb.DuckDBPyConnection, sheet_file: str,
                    digest: str) -> tuple[Any, int, str | None] | None:
    """When, with how many errors and which, this very content of ``sheet_file`` was rejected
    (None if it never was): a rejected file left in the folder is not read again."""
    return con.execute(
        "select loaded_at, error_count, problems from raw.outcome_sheet_versions "
        "where sheet_file = ? and sheet_sha256 = ? and status = 'rejected' "
        "order by loaded_at limit 1", [sheet_file, digest]).fetchone()


def _revert_to(con: duckdb.DuckDBPyConnection, sheet_file: str, digest: str, run_id: str,
               loaded_at: Any) -> dict[str, Any] | None:
    """A sheet put back to a version accepted before becomes current again (a new version row
    pointing at the rows already loaded for that content)."""
    earlier = con.execute(
        "select count(*) from raw.outcome_sheet_rows where sheet_file = ? and sheet_sha256 = ?",
        [sheet_file, digest]).fetchone()[0]
    if not earlier:
        return None
    (problems,) = con.execute(  # the content's own warnings stay in effect with it
        "select problems from raw.outcome_sheet_versions where sheet_file = ? and "
        "sheet_sha256 = ? and status = 'accepted' order by loaded_at limit 1",
        [sheet_file, digest]).fetchone() or (None,)
    con.execute(
        "insert into raw.outcome_sheet_versions values (?, ?, ?, 'accepted', ?, ?, 0, ?)",
        [digest, sheet_file, run_id, loaded_at, earlier, problems])
    return {"status": "accepted", "rows": earlier, "warnings": 0, "sheet_sha256": digest,
            "message": "reverted to a version accepted before"}


def withdraw_missing_sheets(con: duckdb.DuckDBPyConnection, present: set[str],
                            run_id: str) -> list[dict[str, Any]]:
    """Sheets in effect whose file is gone from the sheet folder: their rows leave the warehouse
    (a ``withdrawn`` version row; ``changes_since_last_run`` lists it)."""
    ensure_raw_schema(con)
    in_effect = con.execute(
        "select sheet_file, sheet_sha256, row_count from raw.outcome_sheet_versions "
        "where status in ('accepted', 'withdrawn') "
        "qualify row_number() over (partition by sheet_file order by loaded_at desc) = 1 "
        "and status = 'accepted'").fetchall()
    withdrawn = []
    for sheet_file, digest, rows in in_effect:
        if sheet_file in present:
            continue
        con.execute(
            "insert into raw.outcome_sheet_versions values (?, ?, ?, 'withdrawn', ?, 0, 0, ?)",
            [digest, sheet_file, run_id, utc_now(),
             f"the file was removed from the sheet folder; its {rows} rows are withdrawn"])
        withdrawn.append({"sheet": sheet_file, "status": "withdrawn", "rows": 0,
                          "message": f"{rows} rows withdrawn (file removed)"})
    return withdrawn


def load_outcome_sheet(con: duckdb.DuckDBPyConnection, path: Path, run_id: str,
                       seen: dict[str, str] | None = None,
                       remember_rejections: bool = True) -> dict[str, Any]:
    """Validate and load one sheet as a new version; reject it whole on any error. ``seen``
    maps the content hashes of this run's other sheets to their names: a copy of a sheet under
    another name is rejected (it would count every row twice). Content rejected before is not
    read again (status ``still_rejected``) unless ``remember_rejections`` is off (the code that
    validates sheets changed since)."""
    ensure_raw_schema(con)
    try:
        digest = sheet_sha256(path)
    except OSError as exc:
        raise unreadable(path, f"cannot be read ({type(exc).__name__}: {exc})") from exc
    if seen is not None:
        if digest in seen:
            raise unreadable(path, f"the same content as {seen[digest]}: a copy would count "
                                   "every row twice; remove one of them")
        seen[digest] = path.name
    current = current_sheet_version(con, path.name)
    if current == digest:
        return {"status": "unchanged", "rows": 0, "warnings": 0, "sheet_sha256": digest}
    if remember_rejections and (earlier := rejected_before(con, path.name, digest)):
        rejected_at, errors, problems = earlier
        return {"status": "still_rejected", "rows": 0, "sheet_sha256": digest,
                "message": f"unchanged since it was rejected at {rejected_at:%Y-%m-%d %H:%M %Z}"
                           f" with {errors} problem(s), so not read again; the previous "
                           f"accepted sheet stays in effect. {(problems or '')[:1500]}"}
    loaded_at = utc_now()
    if reverted := _revert_to(con, path.name, digest, run_id, loaded_at):
        return reverted
    try:
        rows, problems = validate_rows(read_sheet(path), path.name)
    except SheetRejected as exc:
        rows, problems = [], exc.problems
    if not rows and not any(p.severity == "error" for p in problems):
        problems.append(SheetProblem(path.name, 0, "(file)", "the sheet has no data rows; to "
                                     "withdraw a sheet, remove the file"))
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        con.execute(
            "insert into raw.outcome_sheet_versions values (?, ?, ?, 'rejected', ?, 0, ?, ?)",
            [digest, path.name, run_id, loaded_at, len(errors),
             "; ".join(str(p) for p in errors[:50])])
        raise SheetRejected(problems, digest)
    frame = pl.DataFrame(
        [{**r.model_dump(), "source_row": i} for i, r in enumerate(rows, start=1)],
        infer_schema_length=None,
    ).with_columns(
        pl.lit(digest).alias("sheet_sha256"), pl.lit(path.name).alias("sheet_file"),
        pl.lit(run_id).alias("run_id"), pl.lit(loaded_at).alias("loaded_at"),
    )
    con.execute("begin transaction")
    try:
        con.register("sheet_rows", frame)
        con.execute("insert into raw.outcome_sheet_rows by name select * from sheet_rows")
        con.unregister("sheet_rows")
        con.execute(
            "insert into raw.outcome_sheet_versions values (?, ?, ?, 'accepted', ?, ?, 0, ?)",
            [digest, path.name, run_id, loaded_at, len(rows),
             "; ".join(str(p) for p in problems) or None])
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return {"status": "accepted", "rows": len(rows), "warnings": len(problems),
            "sheet_sha256": digest}
