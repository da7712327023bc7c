"""DuckDB connections and the ``raw`` schema: the pipeline's own tables here (the run ledger,
rejects, reference checks, quarantine requests, refreshes, the previous version), each source's
raw tables in its resource (``flows/sources/<name>/resource.py``)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from flows import sources
from flows.settings import Settings

PIPELINE_DDL = """
create schema if not exists raw;

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

create table if not exists raw.reference_checks (
    registry      varchar not null,
    registry_id   varchar not null,
    referenced_by varchar[] not null,  -- e.g. outcome_sheet:<file>, curated_link, pubmed_databank:<id>
    status        varchar not null,    -- fetched | not_found (the registry does not know it) | unresolved
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
PIPELINE_MIGRATIONS = (
    "alter table raw.ingest_runs add column if not exists topic_fingerprint varchar",
    # whether the registry was asked (false: not fetchable here, over the budget, a known
    # unknown whose wait has not passed; null: checked before this column existed)
    "alter table raw.reference_checks add column if not exists asked_registry boolean",
)


def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Every raw table: the pipeline's and each source's (their migrations included)."""
    con.execute(PIPELINE_DDL)
    for resource in sources.resources():
        con.execute(resource.ddl)
    for statement in PIPELINE_MIGRATIONS + tuple(m for r in sources.resources()
                                                 for m in r.migrations):
        con.execute(statement)
