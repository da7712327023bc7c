"""Europe PMC as a resource (live only): ``raw.europepmc_records`` keyed by the Europe PMC
``id`` with a content hash (a record seen before with the same content adds no row); the
extract lands the search's cursor pages (records PubMed lacks, and a second linkage signal)."""

from __future__ import annotations

import orjson

from flows.landing import LandingRun, new_run_id, utc_now
from flows.sources.base import ExtractRequest, Resource, SourceRun, skipped
from flows.sources.europepmc import client, parse
from flows.sources.http import PoliteClient
from flows.sources.topic import load_topic

SOURCE = "europepmc"


def extract(request: ExtractRequest, client_: PoliteClient | None = None) -> SourceRun:
    if request.mode == "snapshot" and client_ is None:
        return skipped(request, SOURCE, "no Europe PMC snapshot is shipped")
    settings = request.settings
    topic = load_topic(settings.topic_file)
    own_client = client_ is None
    api = client_ or client.make_client(settings)
    landing = LandingRun(settings.raw_dir, SOURCE, new_run_id())
    landing.start({"run_id": landing.run_id, "source": SOURCE, "query": topic.europepmc_query})
    run = SourceRun(SOURCE, "api", [landing], ledger={"query": {"query": topic.europepmc_query}})
    try:
        for number, (cursor, results, next_cursor) in enumerate(
            client.iter_search_pages(api, topic.europepmc_query), start=1
        ):
            landing.land_records((orjson.dumps(r) for r in results), page=number,
                                 query={"query": topic.europepmc_query}, fetched_at=utc_now(),
                                 page_token=cursor, next_page_token=next_cursor)
            run.pages_landed += 1
            run.records_landed += len(results)
        landing.complete({"pages": run.pages_landed, "records": run.records_landed})
        return run
    finally:
        if own_client:
            api.close()


DDL = """
create table if not exists raw.europepmc_records (
    record_id    varchar not null,
    source_db    varchar,
    pmid         varchar,
    doi          varchar,
    payload      json not null,
    run_id       varchar not null,
    fetched_at   timestamptz not null,
    source_file  varchar not null,
    record_index integer not null,
    payload_md5  varchar
);
"""

RESOURCE = Resource(
    name=SOURCE,
    table="europepmc_records",
    ddl=DDL,
    primary_key=("source_db", "record_id"),
    write_disposition="content_hash",
    extract=extract,
    parse_line=parse.check_record,
    live_only=True,
    migrations=("alter table raw.europepmc_records add column if not exists payload_md5 varchar",),
    position_column="record_index",
)
