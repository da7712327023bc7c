"""EU CTIS as a resource (live only): ``raw.ctis_trials``, appended per run (staging keeps the
newest per EU CT number); the search pages for the topic's medical condition, each row landed
with its retrieve detail; one trial by id for the referential closure."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson

from flows.landing import LandingRun, new_run_id, utc_now
from flows.settings import Settings
from flows.sources.base import ExtractRequest, Fetch, Resource, SourceRun
from flows.sources.ctis import client, parse
from flows.sources.http import PoliteClient

SOURCE = "ctis"


def extract(request: ExtractRequest, client_: PoliteClient | None = None,
            with_details: bool = True) -> SourceRun:
    settings = request.settings
    criteria: dict[str, Any] = {"medicalCondition": request.topic.ctis_medical_condition
                                if request.topic else "diabetes"}
    own = client_ is None
    api = client_ or client.make_client(settings)
    landing = LandingRun(settings.raw_dir, SOURCE, new_run_id())
    landing.start({"run_id": landing.run_id, "source": SOURCE, "criteria": criteria})
    run = SourceRun(SOURCE, "api", [landing], ledger={"query": criteria})
    try:
        for page, rows, total in client.iter_search_pages(api, criteria):
            if with_details:
                rows = [{**row, "detail": client.retrieve(api, row["ctNumber"])} for row in rows]
            landing.land_records((orjson.dumps(r) for r in rows), page=page,
                                 query={"criteria": criteria, "page": page, "total": total},
                                 fetched_at=utc_now())
            run.records_landed += len(rows)
            run.pages_landed += 1
        landing.complete({"records": run.records_landed})
        return run
    finally:
        if own:
            api.close()


@contextmanager
def fetch_by_id(settings: Settings, mode: str) -> Iterator[Fetch | None]:
    """``/retrieve/{ctNumber}`` (live only: the snapshot ships no CTIS data)."""
    if mode != "live":
        yield None
        return
    with client.make_client(settings) as api:
        yield lambda number: client.fetch_trial(api, number)


DDL = """
create table if not exists raw.ctis_trials (
    record_id       varchar not null,   -- ctNumber
    source_register varchar,
    payload         json not null,      -- search row + retrieve detail
    run_id          varchar not null,
    fetched_at      timestamptz not null,
    source_file     varchar not null,
    source_line     integer not null
);
"""

RESOURCE = Resource(
    name=SOURCE,
    table="ctis_trials",
    ddl=DDL,
    primary_key=("record_id",),
    write_disposition="append",
    extract=extract,
    parse_line=parse.check_record,
    live_only=True,
    fetch_by_id=fetch_by_id,
    fetches_registry="EU CT",
    same_key_in_one_file="rejected_if_different",
    record_id_field="ctNumber",
    limit_reject_share=False,
)
