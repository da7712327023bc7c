"""DuckDB connections and the ``raw`` schema DDL."""

from __future__ import annotations

from pathlib import Path

import duckdb

from flows.settings import Settings

RAW_DDL = """
create schema if not exists raw;

create table if not exists raw.ctgov_studies (
    nct_id                varchar   not null,
    last_update_post_date date,
    payload               json      not null,
    run_id                varchar   not null,
    fetched_at            timestamptz not null,
    source_file           varchar   not null,
    source_line           integer   not null,
    payload_md5           varchar   not null
);

create table if not exists raw.rejected_records (
    source         varchar not null,
    run_id         varchar not null,
    source_file    varchar not null,
    source_line    integer,
    record_id      varchar,
    reason         varchar not null,
    record_excerpt varchar,
    rejected_at    timestamptz not null
);

create table if not exists raw.pubmed_articles (
    publication_key          varchar not null,
    pmid                     varchar,
    pmid_version             integer,
    record_type              varchar,
    citation_status          varchar,
    doi                      varchar,
    pmcid                    varchar,
    title                    varchar,
    vernacular_title         varchar,
    abstract                 varchar,
    journal_title            varchar,
    journal_iso_abbreviation varchar,
    pub_year                 integer,
    pub_month                integer,
    pub_day                  integer,
    pub_date_precision       varchar,
    pub_date_text            varchar,
    date_revised             varchar,
    publication_types        json,
    languages                json,
    authors                  json,
    mesh_headings            json,
    keywords                 json,
    databank_accessions      json,
    run_id                   varchar not null,
    fetched_at               timestamptz not null,
    source_file              varchar not null,
    record_index             integer not null,
    payload_md5              varchar not null
);

create table if not exists raw.europepmc_records (
    record_id    varchar not null,
    source_db    varchar,
    pmid         varchar,
    doi          varchar,
    payload      json not null,
    run_id       varchar not null,
    fetched_at   timestamptz not null,
    source_file  varchar not null,
    record_index integer not null
);

create table if not exists raw.outcome_sheet_versions (
    sheet_sha256 varchar not null,
    sheet_file   varchar not null,
    run_id       varchar not null,
    status       varchar not null,   -- accepted | rejected
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

create table if not exists raw.ictrp_trials (
    record_id       varchar not null,   -- TrialID as exported
    source_register varchar,
    payload         json not null,      -- the export's Trial fields (text cleaned of invalid chars)
    run_id          varchar not null,
    fetched_at      timestamptz not null,
    source_file     varchar not null,
    source_line     integer not null
);

create table if not exists raw.ctis_trials (
    record_id       varchar not null,   -- ctNumber
    source_register varchar,
    payload         json not null,      -- search row + retrieve detail
    run_id          varchar not null,
    fetched_at      timestamptz not null,
    source_file     varchar not null,
    source_line     integer not null
);

create table if not exists raw.reference_checks (
    registry      varchar not null,
    registry_id   varchar not null,
    referenced_by varchar[] not null,  -- e.g. outcome_sheet:<file>, curated_link, pubmed_databank:<id>
    status        varchar not null,    -- fetched | unresolved
    reason        varchar,             -- why it is unresolved
    run_id        varchar not null,
    checked_at    timestamptz not null
);

create table if not exists raw.quarantine_requests (
    source          varchar not null,    -- records the mart gate traced failing rows to
    record_id       varchar not null,
    record_version  varchar,             -- the version quarantined (ctgov: payload_md5)
    check_name      varchar not null,
    offending_values varchar,
    refresh_id      varchar not null,
    requested_at    timestamptz not null
);

create table if not exists raw.refreshes (
    refresh_id  varchar not null,    -- one row per refresh that built the warehouse
    started_at  timestamptz not null,
    mode        varchar
);

-- The published version a build is compared with (marts.evidence_changes), copied from the
-- build copy's marts before dbt replaces them (flows/digest.py); empty before the first publish
create table if not exists raw.previous_version (
    version_id   varchar not null,
    published_at timestamptz,
    copied_at    timestamptz not null
);

create table if not exists raw.previous_version_comparisons (
    comparison_id    varchar not null,
    therapy_label    varchar,
    outcome          varchar,
    definition_label varchar,
    window_label     varchar,
    diabetes_type    varchar,
    is_headline      boolean,
    k_cohorts        integer,
    n_participants   integer,
    n_events         integer,
    estimate         double,
    ci_low           double,
    ci_high          double,
    certainty        varchar,
    outcome_fact_ids varchar[]
);

create table if not exists raw.previous_version_trials (
    trial_id             varchar not null,
    brief_title          varchar,
    therapy_class        varchar,
    overall_status       varchar,
    has_results          boolean,
    is_overdue_12_months boolean
);

create table if not exists raw.ingest_runs (
    run_id           varchar not null,
    source           varchar not null,
    mode             varchar not null,
    status           varchar not null,
    started_at       timestamptz not null,
    finished_at      timestamptz,
    topic_version    varchar,
    topic_fingerprint varchar,
    query            json,
    api_version      varchar,
    data_timestamp   varchar,
    since_date       date,
    watermark        date,
    pages            integer,
    records_landed   bigint,
    records_loaded   bigint,
    records_rejected bigint,
    message          varchar
);
"""


def connect(
    path: Path, settings: Settings, *, read_only: bool = False
) -> duckdb.DuckDBPyConnection:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only)
    con.execute(f"set memory_limit = {sql_literal(settings.duckdb_memory_limit)}")
    con.execute(f"set threads = {int(settings.duckdb_threads)}")
    if not read_only:
        temp = settings.build_dir / "duckdb_tmp"
        temp.mkdir(parents=True, exist_ok=True)
        con.execute(f"set temp_directory = {sql_literal(temp.as_posix())}")
    return con


def sql_literal(text: str) -> str:
    """A SQL string literal (for the statements that take no parameters: SET, COPY ... TO)."""
    return "'" + str(text).replace("'", "''") + "'"


# Columns added after a table first shipped: warehouses published before them gain them here.
RAW_MIGRATIONS = (
    "alter table raw.ingest_runs add column if not exists topic_fingerprint varchar",
    "alter table raw.outcome_sheet_rows add column if not exists outcome_definition varchar",
    "alter table raw.outcome_sheet_rows add column if not exists risk_of_bias varchar",
    "alter table raw.outcome_sheet_rows add column if not exists risk_of_bias_tool varchar",
    "alter table raw.outcome_sheet_rows add column if not exists other_source_urls varchar",
)


def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(RAW_DDL)
    for statement in RAW_MIGRATIONS:
        con.execute(statement)
