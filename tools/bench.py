"""Benchmarks (not tests): ``make bench`` / ``betacell bench``.

ClinicalTrials.gov path: generate N synthetic studies shaped like real API v2 records (sizes like
the real registry: ~17 KB average, long tail), pack them as the bulk archive, then time
archive -> raw landing -> DuckDB raw -> dbt staging, and, in the same run, a plain pandas
``json_normalize`` -> DuckDB load of the same archive. Peak RSS is sampled per stage.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import psutil
from rich.console import Console
from rich.table import Table

console = Console()

WORDS = ["islet", "stem", "cell", "mesenchymal", "stromal", "umbilical", "cord", "bone", "marrow", "adipose", "infusion", "diabetes", "insulin", "c-peptide", "hba1c", "glucose", "graft", "transplantation", "immunosuppression", "patients", "safety", "efficacy", "outcome", "baseline", "month", "year", "dose", "week", "randomized", "placebo", "controlled", "open", "label", "phase", "trial", "study", "participants", "inclusion", "exclusion", "criteria", "history", "therapy", "treatment"]
STATUSES = ["RECRUITING", "COMPLETED", "UNKNOWN", "ACTIVE_NOT_RECRUITING", "TERMINATED",
            "NOT_YET_RECRUITING", "WITHDRAWN"]
PHASES = [["PHASE1"], ["PHASE1", "PHASE2"], ["PHASE2"], ["PHASE3"], ["NA"], ["EARLY_PHASE1"]]
COUNTRIES = ["United States", "China", "Iran", "India", "Spain", "Brazil", "Canada", "France",
             "Germany", "Italy", "Sweden", "Japan"]


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choices(WORDS, k=words))


def synthetic_study(index: int, rng: random.Random) -> dict[str, Any]:
    """A study record with the v2 module layout; sizes drawn to mimic the registry's spread."""
    n_locations = min(int(rng.paretovariate(1.3)), 400)
    criteria_words = int(rng.lognormvariate(6.2, 0.7))
    description_words = int(rng.lognormvariate(5.8, 0.8))
    year = rng.randint(2000, 2026)
    return {
        "protocolSection": {
            "identificationModule": {
                "nctId": f"NCT{10_000_000 + index:08d}",
                "orgStudyIdInfo": {"id": f"ORG-{index}"},
                "briefTitle": f"Stem cell therapy in diabetes {_text(rng, 8)}",
                "officialTitle": _text(rng, 20),
                "organization": {"fullName": f"Org {index % 5000}", "class": "OTHER"},
            },
            "statusModule": {
                "statusVerifiedDate": f"{year}-{rng.randint(1, 12):02d}",
                "overallStatus": rng.choice(STATUSES),
                "startDateStruct": {"date": f"{year}-{rng.randint(1, 12):02d}"},
                "primaryCompletionDateStruct": {"date": f"{year + 2}", "type": "ESTIMATED"},
                "completionDateStruct": {"date": f"{year + 3}-01-15", "type": "ESTIMATED"},
                "studyFirstPostDateStruct": {"date": f"{year}-03-01", "type": "ACTUAL"},
                "lastUpdatePostDateStruct": {"date": f"{year}-06-{rng.randint(1, 28):02d}"},
            },
            "sponsorCollaboratorsModule": {
                "leadSponsor": {"name": f"Sponsor {index % 3000}", "class": "OTHER"},
                "collaborators": [{"name": f"Collab {i}", "class": "INDUSTRY"}
                                  for i in range(rng.randint(0, 3))],
            },
            "descriptionModule": {
                "briefSummary": _text(rng, description_words // 3 + 10),
                "detailedDescription": _text(rng, description_words),
            },
            "conditionsModule": {
                "conditions": ["Type 1 Diabetes", "Diabetes Mellitus"][: rng.randint(1, 2)],
                "keywords": rng.sample(WORDS, 4),
            },
            "designModule": {
                "studyType": "INTERVENTIONAL",
                "phases": rng.choice(PHASES),
                "designInfo": {"allocation": "RANDOMIZED", "interventionModel": "PARALLEL",
                               "primaryPurpose": "TREATMENT",
                               "maskingInfo": {"masking": "NONE"}},
                "enrollmentInfo": {"count": rng.randint(0, 500), "type": "ESTIMATED"},
            },
            "armsInterventionsModule": {
                "armGroups": [{"label": f"Arm {i}", "type": "EXPERIMENTAL",
                               "description": _text(rng, 30),
                               "interventionNames": [f"Biological: cells {i}"]}
                              for i in range(rng.randint(1, 3))],
                "interventions": [{"type": "BIOLOGICAL", "name": "Mesenchymal stem cells",
                                   "description": _text(rng, 40),
                                   "armGroupLabels": ["Arm 0"]}],
            },
            "outcomesModule": {
                "primaryOutcomes": [{"measure": _text(rng, 8), "description": _text(rng, 40),
                                     "timeFrame": "12 months"} for _ in range(rng.randint(1, 4))]
            },
            "eligibilityModule": {
                "eligibilityCriteria": "Inclusion Criteria:\n\n* " + _text(rng, criteria_words),
                "healthyVolunteers": False, "sex": "ALL", "minimumAge": "18 Years",
                "maximumAge": "65 Years", "stdAges": ["ADULT"],
            },
            "contactsLocationsModule": {
                "locations": [{"facility": f"Hospital {i} {_text(rng, 3)}", "city": f"City {i}",
                               "country": rng.choice(COUNTRIES),
                               "geoPoint": {"lat": rng.uniform(-60, 60),
                                            "lon": rng.uniform(-170, 170)}}
                              for i in range(n_locations)]
            },
            "referencesModule": {"references": [{"pmid": str(30_000_000 + index),
                                                 "type": "BACKGROUND",
                                                 "citation": _text(rng, 25)}]},
        },
        "derivedSection": {
            "miscInfoModule": {"versionHolder": "2026-10-02"},
            "conditionBrowseModule": {"meshes": [{"id": "D003922",
                                                  "term": "Diabetes Mellitus, Type 1"}]},
        },
        "hasResults": False,
    }


def write_archive(path: Path, studies: int, seed: int = 7) -> tuple[int, int]:
    """Write the synthetic bulk archive; return (uncompressed JSON bytes, archive bytes)."""
    rng = random.Random(seed)
    total = 0
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for i in range(studies):
            body = orjson.dumps(synthetic_study(i, rng))
            total += len(body)
            archive.writestr(f"ctg-studies/NCT{10_000_000 + i:08d}.json", body)
    return total, path.stat().st_size


class PeakRss:
    """Samples RSS every 50 ms: this process, and separately its largest child (dbt)."""

    def __init__(self) -> None:
        self.peak = 0
        self.child_peak = 0
        self._stop = threading.Event()
        self._process = psutil.Process()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            for child in self._process.children(recursive=True):
                with suppress(psutil.Error):
                    self.child_peak = max(self.child_peak, child.memory_info().rss)
            time.sleep(0.05)

    @contextmanager
    def watch(self) -> Iterator[PeakRss]:
        self.peak = self._process.memory_info().rss
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()
            self._stop.clear()


@dataclass
class StageResult:
    name: str
    seconds: float
    peak_rss: int
    records: int
    bytes: int


def timed(name: str, records: int, nbytes: int, fn: Callable[[], Any]) -> StageResult:
    with PeakRss().watch() as peak:
        start = time.perf_counter()
        fn()
        seconds = time.perf_counter() - start
    return StageResult(name, seconds, max(peak.peak, peak.child_peak), records, nbytes)


PANDAS_BASELINE = r"""
import json, sys, time, zipfile
import duckdb, pandas as pd
archive, db = sys.argv[1], sys.argv[2]
start = time.perf_counter()
records = []
with zipfile.ZipFile(archive) as z:
    for info in z.infolist():
        if info.filename.endswith('.json'):
            records.append(json.loads(z.read(info)))
frame = pd.json_normalize(records)
con = duckdb.connect(db)
con.register('frame', frame)
con.execute('create table studies as select * from frame')
con.close()
print(json.dumps({"seconds": time.perf_counter() - start, "rows": len(frame),
                  "columns": len(frame.columns)}))
"""


def run_pandas_baseline(archive: Path, workdir: Path, timeout: int = 3600) -> dict[str, Any]:
    db = workdir / "pandas_baseline.duckdb"
    db.unlink(missing_ok=True)
    with PeakRss().watch() as peak:
        completed = subprocess.run(
            [sys.executable, "-c", PANDAS_BASELINE, str(archive), str(db)],
            capture_output=True, text=True, timeout=timeout,
        )
    if completed.returncode != 0:
        return {"error": (completed.stderr or completed.stdout).strip().splitlines()[-1:]}
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    result["peak_rss"] = peak.child_peak  # sampled: ru_maxrss would count the forked parent
    return result


@contextmanager
def scratch_directory(workdir: str | None) -> Iterator[Path]:
    """The benchmark's scratch space: ``workdir`` when given (kept, for a look afterwards),
    else a temporary ``betacell-bench-*`` folder removed however the benchmark ends (it holds
    the archive, the landed files and a DuckDB file: ~90 MB at 2,000 studies, GBs by default)."""
    if workdir:
        root = Path(workdir)
        root.mkdir(parents=True, exist_ok=True)
        yield root
        console.print(f"Scratch data kept in {root} (delete it when done).")
        return
    root = Path(tempfile.mkdtemp(prefix="betacell-bench-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


# dbt build --select staging alone would not load the seeds that staging's tests read
# (sheet_vocabulary): build them with it, and only the tests whose every parent is built (the
# seeds' tests against marts are not)
STAGING_BUILD = ["build", "--select", "resource_type:seed", "staging",
                 "--indirect-selection", "cautious"]


def run_ctgov_benchmark(studies: int, workdir: str | None, with_pandas: bool = True) -> None:
    with scratch_directory(workdir) as root:
        _run_ctgov_benchmark(studies, root, with_pandas)


def _run_ctgov_benchmark(studies: int, root: Path, with_pandas: bool) -> None:
    from flows.db import connect
    from flows.ingest import IngestOutcome, land_archive
    from flows.landing import LandingRun
    from flows.load import load_ctgov_run
    from flows.settings import Settings
    from flows.sources.topic import load_topic
    from flows.transform import run_dbt

    settings = Settings(data_dir=root / "data")
    archive = root / "ctg-studies.json.zip"
    console.print(f"Generating {studies:,} synthetic studies into {archive} …")
    start = time.perf_counter()
    json_bytes, zip_bytes = write_archive(archive, studies)
    console.print(
        f"  {json_bytes / 1e6:,.0f} MB of JSON ({json_bytes / studies / 1e3:.1f} KB/study avg), "
        f"{zip_bytes / 1e6:,.0f} MB zipped, in {time.perf_counter() - start:.0f} s"
    )

    run = LandingRun(settings.raw_dir, "ctgov", "bench")
    run.start({"fingerprint": "bench", "mode": "bulk"})
    outcome = IngestOutcome(mode="bulk", run=run)
    results = [timed("archive -> raw files", studies, json_bytes,
                     lambda: land_archive(run, archive, outcome))]
    run.complete({})
    database = settings.build_database
    database.parent.mkdir(parents=True, exist_ok=True)
    database.unlink(missing_ok=True)

    def load() -> None:
        con = connect(database, settings)
        try:
            load_ctgov_run(con, run, mode="bulk", max_reject_share=0.0,
                           topic=load_topic(settings.topic_file),
                           batch_records=settings.load_batch_records)
        finally:
            con.close()

    results.append(timed("raw files -> DuckDB raw", studies, json_bytes, load))
    results.append(timed("dbt build (staging)", studies, json_bytes,
                         lambda: run_dbt(settings, STAGING_BUILD, database)))
    staged = _staged_studies(database)
    console.print(f"stg_ctgov__studies holds {staged:,} of the {studies:,} studies")
    total = StageResult(
        "archive -> staging (total)",
        sum(r.seconds for r in results),
        max(r.peak_rss for r in results),
        studies,
        json_bytes,
    )
    results.append(total)

    table = Table(title=f"ClinicalTrials.gov ingest benchmark ({studies:,} studies, "
                        f"{json_bytes / 1e9:.2f} GB JSON, {os.cpu_count()} cores)")
    for column in ("stage", "seconds", "studies/s", "MB/s", "peak RSS (MB)"):
        table.add_column(column, justify="right" if column != "stage" else "left")
    for r in results:
        table.add_row(r.name, f"{r.seconds:.1f}", f"{r.records / r.seconds:,.0f}",
                      f"{r.bytes / 1e6 / r.seconds:,.1f}", f"{r.peak_rss / 1e6:,.0f}")
    console.print(table)

    registry_studies, registry_bytes = 605_599, 10_329_479_257
    projected = total.seconds * registry_bytes / json_bytes
    console.print(
        f"Linear projection to the whole registry ({registry_studies:,} studies, "
        f"{registry_bytes / 1e9:.1f} GB): ~{projected / 60:.1f} min "
        f"(target < 5 min); peak RSS is bounded by DuckDB's memory_limit "
        f"({settings.duckdb_memory_limit}) plus one load batch, not by registry size."
    )
    if with_pandas:
        console.print("Running the pandas json_normalize -> DuckDB baseline on the same archive …")
        baseline = run_pandas_baseline(archive, root)
        if "error" in baseline:
            console.print(f"[red]pandas baseline failed:[/] {baseline['error']}")
        else:
            console.print(
                f"pandas baseline: {baseline['seconds']:.1f} s "
                f"({studies / baseline['seconds']:,.0f} studies/s, "
                f"{json_bytes / 1e6 / baseline['seconds']:,.1f} MB/s), "
                f"{baseline['columns']} flattened columns (nested lists left as objects), "
                f"peak RSS {baseline['peak_rss'] / 1e6:,.0f} MB"
            )
            ingest_only = results[0].seconds + results[1].seconds
            console.print(
                f"Ratio (pandas time / Betacell archive->raw time): "
                f"{baseline['seconds'] / ingest_only:.2f}x; "
                f"(pandas time / Betacell archive->staging time): "
                f"{baseline['seconds'] / total.seconds:.2f}x; "
                f"peak RSS ratio: {baseline['peak_rss'] / total.peak_rss:.1f}x"
            )


def _staged_studies(database: Path) -> int:
    import duckdb

    con = duckdb.connect(str(database), read_only=True)
    try:
        return con.execute("select count(*) from staging.stg_ctgov__studies").fetchone()[0]
    finally:
        con.close()


PUBMED_ARTICLE = """<PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM">
<PMID Version="1">{pmid}</PMID><DateRevised><Year>2024</Year><Month>01</Month><Day>{day:02d}</Day></DateRevised>
<Article PubModel="Print-Electronic"><Journal><ISSN IssnType="Electronic">1234-5678</ISSN>
<JournalIssue CitedMedium="Internet"><Volume>{volume}</Volume><Issue>{issue}</Issue>{pubdate}</JournalIssue>
<Title>Journal of {word} research</Title><ISOAbbreviation>J {word} Res</ISOAbbreviation></Journal>
<ArticleTitle>{title} <i>in vivo</i> HbA<sub>1c</sub></ArticleTitle>
<Pagination><MedlinePgn>{page}-{page2}</MedlinePgn></Pagination>
<ELocationID EIdType="doi" ValidYN="Y">10.1000/bench.{pmid}</ELocationID>
<Abstract>{abstract}</Abstract>
<AuthorList CompleteYN="Y">{authors}</AuthorList><Language>eng</Language>
<PublicationTypeList><PublicationType UI="D016428">Journal Article</PublicationType></PublicationTypeList>
</Article><MedlineJournalInfo><Country>England</Country><MedlineTA>J Res</MedlineTA></MedlineJournalInfo>
<MeshHeadingList>{mesh}</MeshHeadingList>
<KeywordList Owner="NOTNLM"><Keyword MajorTopicYN="N">{word}</Keyword></KeywordList>
</MedlineCitation><PubmedData><History><PubMedPubDate PubStatus="entrez"><Year>2023</Year><Month>5</Month><Day>3</Day></PubMedPubDate></History>
<PublicationStatus>ppublish</PublicationStatus><ArticleIdList><ArticleId IdType="pubmed">{pmid}</ArticleId>
<ArticleId IdType="doi">10.1000/bench.{pmid}</ArticleId></ArticleIdList>
<ReferenceList>{references}</ReferenceList></PubmedData></PubmedArticle>
"""


def write_pubmed_baseline(path: Path, records: int, seed: int = 11) -> int:
    """A synthetic file shaped like a PubMed baseline file (PubmedArticleSet, ~30k records)."""
    rng = random.Random(seed)
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as out:
        out.write('<?xml version="1.0" ?>\n<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD '
                  'PubMedArticle, 1st January 2025//EN" "https://dtd.nlm.nih.gov/ncbi/pubmed/'
                  'out/pubmed_250101.dtd">\n<PubmedArticleSet>\n')
        for i in range(records):
            shape = i % 3
            pubdate = ("<PubDate><Year>2019</Year><Month>Jan</Month><Day>5</Day></PubDate>"
                       if shape == 0 else "<PubDate><MedlineDate>2019 Jan-Feb</MedlineDate></PubDate>"
                       if shape == 1 else "<PubDate><Year>2020</Year><Season>Spring</Season></PubDate>")
            abstract = "".join(
                f'<AbstractText Label="{label}" NlmCategory="{label}">{_text(rng, 60)}</AbstractText>'
                for label in ("BACKGROUND", "METHODS", "RESULTS", "CONCLUSIONS"))
            authors = "".join(
                f"<Author ValidYN=\"Y\"><LastName>Author{j}</LastName><ForeName>A</ForeName>"
                f"<Initials>A</Initials><AffiliationInfo><Affiliation>{_text(rng, 8)}"
                "</Affiliation></AffiliationInfo></Author>" for j in range(rng.randint(1, 12)))
            mesh = "".join(
                f'<MeshHeading><DescriptorName UI="D00{3900 + j}" MajorTopicYN="N">{w}'
                '</DescriptorName></MeshHeading>' for j, w in enumerate(rng.sample(WORDS, 6)))
            references = "".join(
                f"<Reference><Citation>{_text(rng, 12)}</Citation><ArticleIdList>"
                f'<ArticleId IdType="pubmed">{rng.randint(1, 9_999_999)}</ArticleId>'
                "</ArticleIdList></Reference>" for _ in range(rng.randint(0, 25)))
            out.write(PUBMED_ARTICLE.format(
                pmid=30_000_000 + i, day=1 + i % 28, volume=i % 50, issue=i % 12,
                pubdate=pubdate, word=rng.choice(WORDS), title=_text(rng, 12),
                page=i % 900, page2=i % 900 + 9, abstract=abstract, authors=authors, mesh=mesh,
                references=references))
        out.write("</PubmedArticleSet>\n")
    return path.stat().st_size


PARSE_OURS = r"""
import sys, time, json
from pathlib import Path
from flows.sources.pubmed_xml import iter_articles
start = time.perf_counter()
n = sum(1 for _ in iter_articles(Path(sys.argv[1])))
print(json.dumps({"seconds": time.perf_counter() - start, "records": n}))
"""
PARSE_PUBMED_PARSER = r"""
import sys, time, json
import pubmed_parser as pp
start = time.perf_counter()
n = sum(1 for _ in pp.parse_medline_xml(sys.argv[1]))
print(json.dumps({"seconds": time.perf_counter() - start, "records": n}))
"""


def _run_parser(script: str, path: Path) -> dict[str, Any]:
    with PeakRss().watch() as peak:
        completed = subprocess.run([sys.executable, "-c", script, str(path)],
                                   capture_output=True, text=True)
    if completed.returncode != 0:
        return {"error": (completed.stderr or completed.stdout).strip().splitlines()[-1:]}
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    result["peak_rss"] = peak.child_peak
    return result


def run_pubmed_benchmark(records: int, workdir: str | None) -> None:
    with scratch_directory(workdir) as root:
        _run_pubmed_benchmark(records, root)


def _run_pubmed_benchmark(records: int, root: Path) -> None:
    path = root / "pubmed-baseline-synthetic.xml.gz"
    write_pubmed_baseline(path, records)
    with gzip.open(path, "rb") as handle:
        size = sum(len(chunk) for chunk in iter(lambda: handle.read(1 << 20), b""))
    console.print(f"PubMed parse benchmark: {records:,} records, {size / 1e6:,.0f} MB of XML "
                  f"({path.stat().st_size / 1e6:,.0f} MB gzipped, like a baseline file)")
    table = Table(title="PubMed XML parse (same file, separate processes)")
    for column in ("parser", "seconds", "records/s", "MB/s", "peak RSS (MB)"):
        table.add_column(column, justify="right" if column != "parser" else "left")
    results = {}
    for name, script in (("betacell iter_articles", PARSE_OURS),
                         ("pubmed-parser parse_medline_xml", PARSE_PUBMED_PARSER)):
        result = _run_parser(script, path)
        results[name] = result
        if "error" in result:
            table.add_row(name, "failed", str(result["error"]), "", "")
            continue
        table.add_row(name, f"{result['seconds']:.1f}", f"{result['records'] / result['seconds']:,.0f}",
                      f"{size / 1e6 / result['seconds']:,.1f}", f"{result['peak_rss'] / 1e6:,.0f}")
    console.print(table)
    ours, theirs = results["betacell iter_articles"], results["pubmed-parser parse_medline_xml"]
    if "error" not in ours and "error" not in theirs:
        console.print(f"Speed ratio (pubmed-parser time / betacell time): "
                      f"{theirs['seconds'] / ours['seconds']:.2f}x; peak RSS ratio: "
                      f"{theirs['peak_rss'] / max(ours['peak_rss'], 1):.1f}x")
