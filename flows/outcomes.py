"""Outcome extraction sheets: schema, validation (every problem listed), unit conversion, load.

One row per study arm x outcome x timepoint (see data/outcomes/README.md). A sheet with any
error is rejected whole; the previously accepted sheet stays in effect because staging reads
only the newest *accepted* sheet version from ``raw.outcome_sheet_rows``.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import duckdb
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from flows.db import ensure_raw_schema
from flows.errors import BetacellError
from flows.landing import utc_now
from flows.settings import REPO_DIR

OUTCOMES = (
    "insulin_independence", "insulin_dose_change", "c_peptide_change", "c_peptide_auc",
    "hba1c_change", "hba1c_end", "graft_survival", "severe_hypoglycemia",
    "adverse_event_serious", "tumorigenicity", "teratoma", "microthrombosis", "infection",
    "death", "other",
)
MEASURES = ("proportion", "mean", "median", "mean_change", "count", "qualitative")
VERIFIED = ("yes", "secondary", "no")
DIABETES_TYPES = ("T1D", "T2D", "T1D/T2D")
# Controlled units. 'as_reported' = a unit that is kept verbatim in unit_as_reported and is not
# convertible (so never pooled with other units).
UNITS = (
    "proportion", "count", "none", "percent", "percent_change", "hba1c_percent",
    "hba1c_mmol_per_mol", "c_peptide_ng_per_ml", "c_peptide_nmol_per_l", "c_peptide_pmol_per_l",
    "iu_per_day", "iu_per_kg_per_day", "months", "as_reported",
)
# Linear conversions (value_to = value_from * factor + offset). C-peptide molar mass 3020.29 g/mol:
# 1 ng/mL = 0.3311 nmol/L = 331.1 pmol/L. HbA1c IFCC (mmol/mol) = 10.929 x (NGSP % - 2.15).
C_PEPTIDE_NMOL_PER_NG = 1 / 3.02029
CONVERSIONS: dict[tuple[str, str], tuple[float, float]] = {
    ("c_peptide_ng_per_ml", "c_peptide_nmol_per_l"): (C_PEPTIDE_NMOL_PER_NG, 0.0),
    ("c_peptide_nmol_per_l", "c_peptide_ng_per_ml"): (1 / C_PEPTIDE_NMOL_PER_NG, 0.0),
    ("c_peptide_pmol_per_l", "c_peptide_nmol_per_l"): (0.001, 0.0),
    ("c_peptide_nmol_per_l", "c_peptide_pmol_per_l"): (1000.0, 0.0),
    ("c_peptide_ng_per_ml", "c_peptide_pmol_per_l"): (1000 * C_PEPTIDE_NMOL_PER_NG, 0.0),
    ("c_peptide_pmol_per_l", "c_peptide_ng_per_ml"): (0.001 / C_PEPTIDE_NMOL_PER_NG, 0.0),
    ("hba1c_percent", "hba1c_mmol_per_mol"): (10.929, -10.929 * 2.15),
    ("hba1c_mmol_per_mol", "hba1c_percent"): (1 / 10.929, 2.15),
}
CANONICAL_UNIT = {
    "c_peptide_ng_per_ml": "c_peptide_nmol_per_l",
    "c_peptide_pmol_per_l": "c_peptide_nmol_per_l",
    "c_peptide_nmol_per_l": "c_peptide_nmol_per_l",
    "hba1c_mmol_per_mol": "hba1c_percent",
    "hba1c_percent": "hba1c_percent",
}
DIFFERENCE_MEASURES = {"mean_change"}


def convert(value: float, from_unit: str, to_unit: str, *, is_difference: bool = False) -> float:
    """Convert between controlled units; differences (changes) ignore the affine offset."""
    if from_unit == to_unit:
        return value
    try:
        factor, offset = CONVERSIONS[(from_unit, to_unit)]
    except KeyError as exc:
        raise ValueError(f"no conversion from {from_unit} to {to_unit}") from exc
    return value * factor + (0.0 if is_difference else offset)


def normalised_value(value: float | None, unit: str, measure: str) -> tuple[float | None, str]:
    canonical = CANONICAL_UNIT.get(unit, unit)
    if value is None:
        return None, canonical
    return convert(value, unit, canonical, is_difference=measure in DIFFERENCE_MEASURES), canonical


class OutcomeRow(BaseModel):
    """One extraction-sheet row. Text '' means not reported and becomes None."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    study_id: str = Field(min_length=1)
    first_author: str | None = None
    year: int | None = Field(default=None, ge=1950, le=2100)
    journal: str | None = None
    pmid: str | None = Field(default=None, pattern=r"^\d{1,9}$")
    doi: str | None = Field(default=None, pattern=r"^10\.\d{4,9}/\S+$")
    source_url: str | None = None
    trial_id: str | None = None
    design: str | None = None
    randomized: str | None = None
    diabetes_type: Literal["T1D", "T2D", "T1D/T2D"]
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
    verified: Literal["yes", "secondary", "no"]
    source: str | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip() == "":
            return None
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
    def __init__(self, problems: list[SheetProblem]) -> None:
        self.problems = problems
        errors = [p for p in problems if p.severity == "error"]
        listed = "; ".join(str(p) for p in errors[:12])
        more = f"; and {len(errors) - 12} more" if len(errors) > 12 else ""
        super().__init__(
            f"outcome sheet rejected with {len(errors)} problem(s); the previous accepted sheet "
            f"stays in effect. {listed}{more}"
        )


def read_sheet(path: Path) -> list[dict[str, Any]]:
    """Rows of a CSV or XLSX sheet as dicts of strings (cells as written)."""
    if path.suffix.lower() in {".xlsx", ".xlsm"}:
        from openpyxl import load_workbook

        workbook = load_workbook(path, read_only=True, data_only=True)
        rows = list(workbook.active.iter_rows(values_only=True))
        header = [str(h).strip() if h is not None else "" for h in rows[0]]
        return [
            {h: ("" if v is None else str(v)) for h, v in zip(header, row, strict=False) if h}
            for row in rows[1:]
            if any(v not in (None, "") for v in row)
        ]
    if path.suffix.lower() != ".csv":
        raise BetacellError(f"{path}: outcome sheets must be .csv or .xlsx")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def validate_rows(rows: list[dict[str, Any]], file: str) -> tuple[list[OutcomeRow], list[SheetProblem]]:
    """Check every row and every cross-row rule; return valid rows and all problems found."""
    problems: list[SheetProblem] = []
    parsed: list[tuple[int, OutcomeRow]] = []
    for number, raw in enumerate(rows, start=1):
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


SEEDS = REPO_DIR / "dbt_project" / "seeds"


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


def load_outcome_sheet(con: duckdb.DuckDBPyConnection, path: Path, run_id: str) -> dict[str, Any]:
    """Validate and load one sheet as a new version; reject it whole on any error."""
    ensure_raw_schema(con)
    digest = sheet_sha256(path)
    already = con.execute(
        "select count(*) from raw.outcome_sheet_versions where sheet_sha256 = ? and status = "
        "'accepted'", [digest]).fetchone()[0]
    if already:
        return {"status": "unchanged", "rows": 0, "warnings": 0, "sheet_sha256": digest}
    rows, problems = validate_rows(read_sheet(path), path.name)
    errors = [p for p in problems if p.severity == "error"]
    loaded_at = utc_now()
    if errors:
        con.execute(
            "insert into raw.outcome_sheet_versions values (?, ?, ?, 'rejected', ?, 0, ?, ?)",
            [digest, path.name, run_id, loaded_at, len(errors),
             "; ".join(str(p) for p in errors[:50])])
        raise SheetRejected(problems)
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
