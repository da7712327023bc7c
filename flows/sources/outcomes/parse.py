"""A curated outcome sheet's rows -> checked rows of ``raw.outcome_sheet_rows``: the sheet's schema
(one row per study arm x outcome x timepoint, see data/outcomes/README.md), every row and
cross-row rule, and every problem listed. The controlled values and the outcome definitions are
the dbt seeds ``sheet_vocabulary``, ``outcome_definitions`` and ``outcome_definition_map``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from flows.seeds import read_seed, seed_column
from flows.sources.base import SheetProblem, SheetRejected
from flows.sources.outcomes import client

__all__ = ["OutcomeRow", "SheetProblem", "SheetRejected", "parse_sheet", "validate_rows"]


def sheet_vocabulary(column: str) -> tuple[str, ...]:
    """The allowed values of one controlled sheet column (seed sheet_vocabulary, their one home)."""
    return tuple(seed_column("sheet_vocabulary", "value", column_name=column))


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



def validate_rows(rows: list[dict[str, Any]], file: str) -> tuple[list[OutcomeRow], list[SheetProblem]]:
    """Check every row and every cross-row rule; return valid rows and all problems found."""
    parsed, problems = validate_numbered_rows(rows, file)
    return [row for _, row in parsed], problems


def validate_numbered_rows(rows: list[dict[str, Any]], file: str
                           ) -> tuple[list[tuple[int, OutcomeRow]], list[SheetProblem]]:
    """Every valid row with its spreadsheet row number (the reader's, else its place below the
    header: the header is row 1), and all problems found, each naming that number."""
    problems: list[SheetProblem] = []
    parsed: list[tuple[int, OutcomeRow]] = []
    for place, raw in enumerate(rows, start=2):
        raw = dict(raw)
        number = int(raw.pop(client.SHEET_ROW, place))
        if encoding := raw.pop("(encoding)", None):
            problems.append(SheetProblem(file, 0, "(file)", f"read as {encoding}, not UTF-8: "
                                         "check accented names, and save the sheet as UTF-8",
                                         "warning"))
        if extra := raw.pop(client.EXTRA_CELLS, None):
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
    return parsed, problems


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


def outcome_definitions() -> dict[str, str]:
    """definition id -> its outcome (seed outcome_definitions, the one home)."""
    return {row["definition_id"]: row["outcome"] for row in read_seed("outcome_definitions")}


def definition_map() -> dict[tuple[str, str, str], tuple[str, str]]:
    """The reviewed mapping (seed outcome_definition_map): (study or '', outcome, text as
    reported) -> (definition id, population)."""
    return {(r["study_id"], r["outcome"], r["text_as_reported"]): (r["definition_id"],
                                                                   r["population"])
            for r in read_seed("outcome_definition_map")}


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


def parse_sheet(path: Path) -> tuple[list[dict[str, Any]], list[SheetProblem]]:
    """One sheet, read and checked: its valid rows (as raw-table columns) and every problem."""
    parsed, problems = validate_numbered_rows(client.read_sheet(path), path.name)
    return [{**row.model_dump(), "source_row": number} for number, row in parsed], problems
