"""Publications: PubMed (esearch windows + efetch XML) and Europe PMC (cursor pages).

Ingest lands each response as received under ``data/raw/<source>/<run_id>/``; load parses the
landed documents (streaming, safe XML) into ``raw.pubmed_articles`` / ``raw.europepmc_records``
with polars, one transaction per run, rejects recorded with file, record and reason.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import duckdb
import orjson
import polars as pl

from flows.db import ensure_raw_schema
from flows.errors import LoadRejected, SourceError
from flows.landing import LandingRun, find_resumable_run, new_run_id, utc_now
from flows.load import record_ledger
from flows.settings import Settings
from flows.sources import europepmc, pubmed
from flows.sources.http import PoliteClient
from flows.sources.pubmed_xml import iter_articles
from flows.sources.snapshot import PubmedSnapshotTransport
from flows.sources.topic import load_topic

SNAPSHOT_PUBMED_URL = "http://snapshot.invalid/entrez/eutils"


@dataclass
class PublicationIngest:
    source: str  # pubmed | europepmc
    mode: str
    run: LandingRun | None
    since: date | None = None
    records_landed: int = 0
    pages_landed: int = 0
    skipped_reason: str | None = None
    query: dict[str, Any] = field(default_factory=dict)
    started_at: Any = field(default_factory=utc_now)
    warnings: list[str] = field(default_factory=list)  # said in the run summary


def _count_articles(document: bytes) -> int:
    return (document.count(b"<PubmedArticle>") + document.count(b"<PubmedArticle ")
            + document.count(b"<PubmedBookArticle>") + document.count(b"<PubmedBookArticle "))


def ingest_pubmed(
    settings: Settings,
    *,
    source: str = "snapshot",
    since: date | None = None,
    full: bool = False,
    watermark: date | None = None,
    client: PoliteClient | None = None,
    today: date | None = None,
) -> PublicationIngest:
    """esearch in date windows (each <= 10,000 hits), then efetch every window in batches."""
    topic = load_topic(settings.topic_file)
    mode = "snapshot" if source == "snapshot" else "api"
    if since is None and not full and watermark is not None:
        since = watermark - timedelta(days=settings.ctgov_overlap_days)
    start = since or date.fromisoformat(topic.publications_start_date)
    end = today or date.today()
    own_client = client is None
    if client is None:
        transport = PubmedSnapshotTransport(settings.snapshot_path) if mode == "snapshot" else None
        client = pubmed.make_pubmed_client(settings, transport=transport)
        if mode == "snapshot":
            client._client.base_url = SNAPSHOT_PUBMED_URL  # noqa: SLF001 - offline replay
            client.limiter.per_second = float("inf")
    fingerprint = hashlib.sha256(f"{topic.pubmed_term}|{mode}".encode()).hexdigest()[:16]
    try:
        notes: list[str] = []
        run = find_resumable_run(settings.raw_dir, "pubmed", fingerprint, notes)
        if run is None:
            run = LandingRun(settings.raw_dir, "pubmed", new_run_id())
            run.start({"run_id": run.run_id, "source": "pubmed", "mode": mode,
                       "fingerprint": fingerprint, "term": topic.pubmed_term,
                       "mindate": start.isoformat(), "maxdate": end.isoformat()})
        else:
            meta = run.meta()
            start, end = date.fromisoformat(meta["mindate"]), date.fromisoformat(meta["maxdate"])
        landed = {(e.query.get("mindate"), e.query.get("retstart")) for e in run.entries()}
        outcome = PublicationIngest("pubmed", mode, run, since=since,
                                    query={"term": topic.pubmed_term, "datetype": "edat"},
                                    warnings=notes)
        page = max((e.page for e in run.entries()), default=0) + 1
        for window in pubmed.plan_windows(client, settings, topic.pubmed_term, start, end):
            for retstart, document in pubmed.efetch_window(client, settings, window):
                key = (window.mindate.isoformat(), retstart)
                if key in landed:
                    continue
                count = _count_articles(document)
                run.land_document(
                    document, page=page, suffix="xml", record_count=count,
                    query={"mindate": window.mindate.isoformat(),
                           "maxdate": window.maxdate.isoformat(), "retstart": retstart,
                           "datetype": "edat", "window_count": window.count},
                    fetched_at=utc_now(),
                )
                page += 1
                outcome.pages_landed += 1
                outcome.records_landed += count
        run.complete({"pages": outcome.pages_landed, "records": outcome.records_landed})
        return outcome
    finally:
        if own_client:
            client.close()


def ingest_europepmc(
    settings: Settings, *, source: str = "snapshot", client: PoliteClient | None = None
) -> PublicationIngest:
    """Europe PMC search pages (records PubMed lacks, and a second linkage signal)."""
    if source == "snapshot" and client is None:
        return PublicationIngest("europepmc", "snapshot", None,
                                 skipped_reason="no Europe PMC snapshot is shipped")
    topic = load_topic(settings.topic_file)
    own_client = client is None
    client = client or europepmc.make_europepmc_client(settings)
    run = LandingRun(settings.raw_dir, "europepmc", new_run_id())
    run.start({"run_id": run.run_id, "source": "europepmc", "query": topic.europepmc_query})
    outcome = PublicationIngest("europepmc", "api", run, query={"query": topic.europepmc_query})
    try:
        for number, (cursor, results, next_cursor) in enumerate(
            europepmc.iter_search_pages(client, topic.europepmc_query), start=1
        ):
            run.land_records((orjson.dumps(r) for r in results), page=number,
                             query={"query": topic.europepmc_query}, fetched_at=utc_now(),
                             page_token=cursor, next_page_token=next_cursor)
            outcome.pages_landed += 1
            outcome.records_landed += len(results)
        run.complete({"pages": outcome.pages_landed, "records": outcome.records_landed})
        return outcome
    finally:
        if own_client:
            client.close()


PUBMED_SCALARS = ["pmid", "pmid_version", "record_type", "citation_status", "doi", "pmcid",
                  "title", "vernacular_title", "abstract", "journal_title",
                  "journal_iso_abbreviation", "pub_year", "pub_month", "pub_day",
                  "pub_date_precision", "pub_date_text", "date_revised"]
PUBMED_LISTS = ["publication_types", "languages", "authors", "mesh_headings", "keywords",
                "databank_accessions"]


def load_pubmed_run(
    con: duckdb.DuckDBPyConnection, landing: LandingRun, *, max_reject_share: float,
    ledger: dict[str, Any] | None = None,
) -> dict[str, int]:
    """Parse every landed efetch document and load ``raw.pubmed_articles`` in one transaction."""
    ensure_raw_schema(con)
    if con.execute("select count(*) from raw.ingest_runs where run_id = ? and status = 'loaded'",
                   [landing.run_id]).fetchone()[0]:
        return {"loaded": 0, "rejected": 0, "skipped": 1}
    rows_by_key: dict[str, dict[str, Any]] = {}  # a PMID in two batches: the later one wins
    rejects: list[dict[str, Any]] = []
    for entry in landing.entries():
        source_file = f"{landing.source}/{landing.run_id}/{entry.file}"
        try:
            articles = list(iter_articles(landing.read_document(entry), name=source_file))
        except SourceError as exc:
            raise LoadRejected(f"{exc}; nothing from run {landing.run_id} was loaded") from exc
        for index, article in enumerate(articles, start=1):
            if not article["pmid"] and not article["doi"]:
                rejects.append({"source_file": source_file, "source_line": index,
                                "record_id": None,
                                "reason": "record has neither a PMID nor a DOI",
                                "record_excerpt": (article.get("title") or "")[:300]})
                continue
            key = f"pmid:{article['pmid']}" if article["pmid"] else f"doi:{article['doi']}"
            row = {k: article[k] for k in PUBMED_SCALARS}
            row.update({k: orjson.dumps(article[k]).decode() for k in PUBMED_LISTS})
            row.update({"publication_key": key, "source_file": source_file,
                         "record_index": index, "fetched_at": entry.fetched_at,
                         "payload_md5": hashlib.md5(orjson.dumps(article)).hexdigest()})
            rows_by_key.pop(key, None)
            rows_by_key[key] = row
    rows = list(rows_by_key.values())
    seen = sum(1 for _ in rows) + len(rejects)
    if seen and len(rejects) / seen > max_reject_share:
        raise LoadRejected(
            f"run {landing.run_id} rejected {len(rejects)} of {seen} publication records; "
            f"nothing was loaded. First: {rejects[0]['source_file']} record "
            f"{rejects[0]['source_line']}: {rejects[0]['reason']}"
        )
    con.execute("begin transaction")
    try:
        loaded = 0
        if rows:
            frame = pl.DataFrame(rows, infer_schema_length=None).with_columns(
                pl.col("pub_year", "pub_month", "pub_day", "pmid_version").cast(pl.Int32),
                pl.col("record_index").cast(pl.Int32),
            )
            con.register("pubmed_batch", frame)
            (loaded,) = con.execute(
                f"""insert into raw.pubmed_articles
                select publication_key, {', '.join(PUBMED_SCALARS)},
                       {', '.join(f'{c}::json' for c in PUBMED_LISTS)},
                       $run_id, fetched_at::timestamptz, source_file, record_index, payload_md5
                from pubmed_batch b
                where not exists (select 1 from raw.pubmed_articles r
                                  where r.publication_key = b.publication_key
                                    and r.payload_md5 = b.payload_md5)""",
                {"run_id": landing.run_id},
            ).fetchone()
            con.unregister("pubmed_batch")
        if rejects:
            frame = pl.DataFrame(rejects).with_columns(
                pl.lit("pubmed").alias("source"), pl.lit(landing.run_id).alias("run_id"),
                pl.lit(utc_now()).alias("rejected_at"))
            con.register("rejects_frame", frame)
            con.execute("""insert into raw.rejected_records select source, run_id, source_file,
                           source_line, record_id, reason, record_excerpt, rejected_at
                           from rejects_frame""")
            con.unregister("rejects_frame")
        record_ledger(con, {"mode": landing.meta().get("mode", "api"), **(ledger or {}),
                            "run_id": landing.run_id, "source": "pubmed", "status": "loaded", "pages": len(landing.entries()),
                            "records_landed": seen, "records_loaded": int(loaded),
                            "records_rejected": len(rejects)})
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return {"loaded": int(loaded), "rejected": len(rejects), "skipped": 0}


def load_europepmc_run(
    con: duckdb.DuckDBPyConnection, landing: LandingRun, *, ledger: dict[str, Any] | None = None
) -> dict[str, int]:
    ensure_raw_schema(con)
    if con.execute("select count(*) from raw.ingest_runs where run_id = ? and status = 'loaded'",
                   [landing.run_id]).fetchone()[0]:
        return {"loaded": 0, "rejected": 0, "skipped": 1}
    rows = []
    for entry in landing.entries():
        source_file = f"{landing.source}/{landing.run_id}/{entry.file}"
        for index, line in enumerate(landing.iter_lines(entry), start=1):
            record = orjson.loads(line)
            rows.append({"record_id": str(record.get("id") or ""),
                         "source_db": record.get("source"), "pmid": record.get("pmid"),
                         "doi": (record.get("doi") or "").lower() or None,
                         "payload": line.decode(), "fetched_at": entry.fetched_at,
                         "source_file": source_file, "record_index": index})
    con.execute("begin transaction")
    try:
        if rows:
            con.register("epmc_batch", pl.DataFrame(rows))
            con.execute("""insert into raw.europepmc_records select record_id, source_db, pmid,
                           doi, payload::json, $run_id, fetched_at::timestamptz, source_file,
                           record_index from epmc_batch""", {"run_id": landing.run_id})
            con.unregister("epmc_batch")
        record_ledger(con, {**(ledger or {}), "run_id": landing.run_id, "source": "europepmc",
                            "mode": "api", "status": "loaded", "records_loaded": len(rows),
                            "records_landed": len(rows), "records_rejected": 0})
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return {"loaded": len(rows), "rejected": 0, "skipped": 0}
