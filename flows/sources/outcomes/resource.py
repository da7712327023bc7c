"""Curated outcome sheets as a resource: ``raw.outcome_sheet_rows`` and
``raw.outcome_sheet_versions``, written as versioned sheets: a sheet (file name + content hash)
is a version, accepted whole or rejected whole; a rejected sheet leaves its previous accepted
version in effect, and a sheet removed from the folder is withdrawn. The extract lists the
folder's sheets; they are read in place (not landed)."""

from __future__ import annotations

from flows.checks import Check, Expect
from flows.seeds import seed_column
from flows.sources.base import ExtractRequest, Resource, SourceRun
from flows.sources.outcomes import client, parse

SOURCE = "outcomes"


def extract(request: ExtractRequest) -> SourceRun:
    folder = request.settings.outcomes_path
    sheets = client.sheets_in(folder)
    reason = None if sheets else f"no outcome sheet in {folder}" + (
        "" if folder.is_dir() else " (folder not found: sheets already loaded stay in effect)")
    return SourceRun(SOURCE, "files", skipped_reason=reason, records_landed=len(sheets),
                     ledger={"sheets": [str(p) for p in sheets], "folder_found": folder.is_dir()})


GATE_CHECKS = (
    Check(
        "raw_outcome_sheet",
        "raw",
        """select outcome, measure, verified, value, n_events, n_total
           from raw.outcome_sheet_rows
           where sheet_sha256 in (select sheet_sha256 from raw.outcome_sheet_versions
                                  where status = 'accepted')""",
        (
            Expect("ExpectColumnValuesToBeInSet", {"column": "verified",
                                                   "value_set": seed_column(
                                                       "sheet_vocabulary", "value",
                                                       column_name="verified")}),
            Expect("ExpectColumnValuesToNotBeNull", {"column": "outcome"}),
            Expect("ExpectColumnPairValuesAToBeGreaterThanB",
                   {"column_A": "n_total", "column_B": "n_events", "or_equal": True,
                    "ignore_row_if": "either_value_is_missing"}),
        ),
        SOURCE,
    ),
)

DDL = """
create table if not exists raw.outcome_sheet_versions (
    sheet_sha256 varchar not null,
    sheet_file   varchar not null,
    run_id       varchar not null,
    status       varchar not null,   -- accepted | rejected | withdrawn
    loaded_at    timestamptz not null,
    row_count    integer not null,
    error_count  integer not null,
    problems     varchar
);

create table if not exists raw.outcome_sheet_rows (
    study_id varchar, first_author varchar, year integer, journal varchar, pmid varchar,
    doi varchar, source_url varchar, other_source_urls varchar, trial_id varchar,
    design varchar, randomized varchar,
    diabetes_type varchar, population_note varchar, therapy_class_as_reported varchar,
    cell_source varchar, donor_type varchar, route varchar, dose varchar,
    immunosuppression varchar, arm varchar, n_arm integer, n_arm_as_reported varchar, followup_months double,
    followup_as_reported varchar, outcome varchar, timepoint_months double,
    timepoint_as_reported varchar, outcome_definition varchar, measure varchar, value double, value_as_reported varchar,
    unit varchar, unit_as_reported varchar, n_events integer, n_total integer, ci_low double,
    ci_high double, verified varchar, source varchar, source_row integer,
    sheet_sha256 varchar not null, sheet_file varchar not null, run_id varchar not null,
    loaded_at timestamptz not null, risk_of_bias varchar, risk_of_bias_tool varchar
);
"""

RESOURCE = Resource(
    name=SOURCE,
    table="outcome_sheet_rows",
    ddl=DDL,
    primary_key=("sheet_file", "sheet_sha256"),
    write_disposition="versioned_sheet",
    extract=extract,
    parse_sheet=parse.parse_sheet,
    versions_table="outcome_sheet_versions",
    gate_checks=GATE_CHECKS,
    migrations=(
        "alter table raw.outcome_sheet_rows add column if not exists outcome_definition varchar",
        "alter table raw.outcome_sheet_rows add column if not exists risk_of_bias varchar",
        "alter table raw.outcome_sheet_rows add column if not exists risk_of_bias_tool varchar",
        "alter table raw.outcome_sheet_rows add column if not exists other_source_urls varchar",
    ),
    position_column="source_row",
    record_id_field="study_id",
)
