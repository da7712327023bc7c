"""PubMed as a resource: ``raw.pubmed_articles`` keyed by ``publication_key`` (``pmid:…``, else
``doi:…``) with a content hash; the incremental cursor is the last loaded run (its finish date,
minus the overlap); the extract runs esearch in date windows (each <= 10,000 hits) and lands
every efetch batch as received, resuming an interrupted run."""

from __future__ import annotations

import hashlib
from datetime import date

from flows.checks import WARNING, Check, Expect
from flows.landing import LandingRun, find_resumable_run, new_run_id, utc_now
from flows.sources.base import ExtractRequest, Incremental, Resource, SourceRun, skipped
from flows.sources.http import PoliteClient
from flows.sources.pubmed import client, parse
from flows.sources.topic import load_topic

SOURCE = "pubmed"
CURSOR = Incremental("finished_at", in_ledger=True, overlap_setting="ctgov_overlap_days")


def _count_articles(document: bytes) -> int:
    return (document.count(b"<PubmedArticle>") + document.count(b"<PubmedArticle ")
            + document.count(b"<PubmedBookArticle>") + document.count(b"<PubmedBookArticle "))


def extract(request: ExtractRequest, client_: PoliteClient | None = None,
            today: date | None = None) -> SourceRun:
    """esearch in date windows (each <= 10,000 hits), then efetch every window in batches."""
    settings = request.settings
    folder = settings.snapshot_path / SOURCE
    if request.mode == "snapshot" and not folder.is_dir():
        return skipped(request, SOURCE, f"the snapshot has no PubMed data ({folder} does not "
                       "exist)")
    topic = load_topic(settings.topic_file)
    mode = "snapshot" if request.mode == "snapshot" else "api"
    since = CURSOR.since(request)
    start = since or date.fromisoformat(topic.publications_start_date)
    end = today or date.today()
    own_client = client_ is None
    api = client_ or (client.make_snapshot_client(settings) if mode == "snapshot"
                      else client.make_client(settings))
    fingerprint = hashlib.sha256(f"{topic.pubmed_term}|{mode}".encode()).hexdigest()[:16]
    try:
        notes: list[str] = []
        landing = find_resumable_run(settings.raw_dir, SOURCE, fingerprint, notes)
        if landing is None:
            landing = LandingRun(settings.raw_dir, SOURCE, new_run_id())
            landing.start({"run_id": landing.run_id, "source": SOURCE, "mode": mode,
                           "fingerprint": fingerprint, "term": topic.pubmed_term,
                           "mindate": start.isoformat(), "maxdate": end.isoformat()})
        else:
            meta = landing.meta()
            start, end = date.fromisoformat(meta["mindate"]), date.fromisoformat(meta["maxdate"])
        landed = {(e.query.get("mindate"), e.query.get("retstart")) for e in landing.entries()}
        run = SourceRun(SOURCE, mode, [landing], warnings=notes,
                        ledger={"query": {"term": topic.pubmed_term, "datetype": "edat"},
                                "since_date": since})
        page = max((e.page for e in landing.entries()), default=0) + 1
        for window in client.plan_windows(api, settings, topic.pubmed_term, start, end):
            for retstart, document in client.efetch_window(api, settings, window):
                if (window.mindate.isoformat(), retstart) in landed:
                    continue
                count = _count_articles(document)
                landing.land_document(
                    document, page=page, suffix="xml", record_count=count,
                    query={"mindate": window.mindate.isoformat(),
                           "maxdate": window.maxdate.isoformat(), "retstart": retstart,
                           "datetype": "edat", "window_count": window.count},
                    fetched_at=utc_now(),
                )
                page += 1
                run.pages_landed += 1
                run.records_landed += count
        landing.complete({"pages": run.pages_landed, "records": run.records_landed})
        return run
    finally:
        if own_client:
            api.close()


GATE_CHECKS = (
    Check(
        "raw_pubmed_articles",
        "raw",
        """select publication_key, pmid, doi, pub_year, title
           from raw.pubmed_articles where list_contains($run_ids, run_id)""",
        (
            Expect("ExpectColumnValuesToNotBeNull", {"column": "publication_key"}),
            Expect("ExpectColumnValuesToBeUnique", {"column": "publication_key"}),
            Expect("ExpectColumnValuesToMatchRegex", {"column": "pmid", "regex": r"^\d{1,9}$"}),
            Expect("ExpectColumnValuesToMatchRegex", {"column": "doi", "regex": r"^10\.\d{4,9}/\S+$"}),
            Expect("ExpectColumnValuesToBeBetween",
                   {"column": "pub_year", "min_value": 1900, "max_value": 2100}),
            Expect("ExpectColumnValuesToNotBeNull", {"column": "pub_year", "mostly": 0.95}, WARNING),
        ),
        SOURCE,
    ),
)

DDL = """
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
"""

RESOURCE = Resource(
    name=SOURCE,
    table="pubmed_articles",
    ddl=DDL,
    primary_key=("publication_key",),
    write_disposition="content_hash",
    extract=extract,
    parse_document=parse.parse_document,
    cursor=CURSOR,
    gate_checks=GATE_CHECKS,
    position_column="record_index",
    record_id_field="PMID",
)
