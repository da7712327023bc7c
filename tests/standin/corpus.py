"""A live-like corpus of real registry and publication facts, shaped as the APIs serve them.

- our curated trials: the shipped snapshot's ClinicalTrials.gov records (facts of
  ../shared/reference/trials.csv);
- real off-topic diabetes trials a topic search also returns (Tregs, tolerogenic DCs, PRP, FMT,
  spinal cord stimulation, drugs and devices in transplant recipients, beta-cell-preserving
  drugs, progenitor-cell measurements, true islet transplantation, product-code-only records),
  built from ``tests/fixtures/live_corpus/offtopic_trials.csv`` (facts only; see SOURCES.md);
  many carry only a title, as the source corpus did;
- real trials whose products the classifier must place or send to review (adipose products
  named as a device or procedure, expanded marrow cells, progenitor-derived islet-like cells,
  cord blood with islets, a closed-loop device trial with an "educator" visit), from
  ``classification_cases.csv``, each with a short excerpt of its registry description;
- real records with full results sections of different shapes (descriptions, eligibility text
  and contacts removed; see SOURCES.md): NCT00763412 (2 groups, no adverse events),
  NCT02513394 (PALLAS: 2 groups, 341 serious and 1,688 other adverse-event terms),
  NCT02552212 (5 groups, dispersions SD / SE / 95 % CI, "NA" values, counts of participants),
  NCT03064438 (outcome measures with categories, several classes, SD and SE);
- optionally records whose own numbers are impossible (made up, NCT0999xxxx: the quarantine);
- PubMed: the snapshot's records plus one real record (PMID 29768149, abstract removed) whose
  DataBank names a trial that no registry record of the corpus carries.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from flows.settings import REPO_DIR

FIXTURES = Path(__file__).parents[1] / "fixtures" / "live_corpus"
SNAPSHOT = REPO_DIR / "data" / "snapshot"
INTERVENTION_TYPES = {"DRUG", "BIOLOGICAL", "DEVICE", "PROCEDURE", "BEHAVIORAL",
                      "DIETARY_SUPPLEMENT", "OTHER", "GENETIC", "RADIATION",
                      "COMBINATION_PRODUCT", "DIAGNOSTIC_TEST"}
# Curated trials that the outcome sheet and curated links name but the topic search does not
# return: the referential closure must fetch them by id.
HIDDEN_FROM_SEARCH = ("NCT03163511", "NCT00014911", "NCT01068951", "NCT00315133")
DATA_TIMESTAMP = "2026-11-30T09:00:04"
RESULTS_RECORDS = ("NCT00763412", "NCT02513394", "NCT02552212", "NCT03064438")


@dataclass
class Corpus:
    search: list[dict[str, Any]]
    registry: dict[str, dict[str, Any]]
    pubmed: list[bytes]
    europepmc: list[dict[str, Any]]
    ctis: list[dict[str, Any]] = field(default_factory=list)
    version: dict[str, str] = field(default_factory=lambda: {
        "apiVersion": "2.0.5", "dataTimestamp": DATA_TIMESTAMP})
    labels: dict[str, str] = field(default_factory=dict)  # nct_id -> expected class (off-topic)


def _split(text: str) -> list[str]:
    return [part.strip() for part in (text or "").split(";") if part.strip()]


def _interventions(text: str) -> list[dict[str, str]]:
    out = []
    for item in _split(text):
        kind, _, name = item.partition(":")
        if name and kind.strip().upper().replace(" ", "_") in INTERVENTION_TYPES:
            out.append({"type": kind.strip().upper().replace(" ", "_"), "name": name.strip()})
        else:
            out.append({"name": item})
    return out


def offtopic_record(row: dict[str, str]) -> dict[str, Any]:
    """A v2 record with exactly the facts the row gives (absent facts are absent keys)."""
    protocol: dict[str, Any] = {"identificationModule": {"nctId": row["nct_id"]}}
    if row["title"]:
        protocol["identificationModule"]["briefTitle"] = row["title"]
    if row.get("description_excerpt"):
        protocol["descriptionModule"] = {"briefSummary": row["description_excerpt"]}
    status: dict[str, Any] = {}
    if row["overall_status"]:
        status["overallStatus"] = row["overall_status"]
    if row["start_date"]:
        status["startDateStruct"] = {"date": row["start_date"]}
    if status:
        protocol["statusModule"] = status
    if row["lead_sponsor"]:
        protocol["sponsorCollaboratorsModule"] = {"leadSponsor": {"name": row["lead_sponsor"]}}
    conditions = {k: v for k, v in (("conditions", _split(row["conditions"])),
                                    ("keywords", _split(row["keywords"]))) if v}
    if conditions:
        protocol["conditionsModule"] = conditions
    design: dict[str, Any] = {}
    if row["study_type"]:
        design["studyType"] = row["study_type"]
    if row["phase"]:
        design["phases"] = row["phase"].split("/")
    if row["enrollment"]:
        design["enrollmentInfo"] = {"count": int(row["enrollment"])}
    if design:
        protocol["designModule"] = design
    arms = {k: v for k, v in (
        ("interventions", _interventions(row["intervention_types_and_names"])),
        ("armGroups", [{"label": label} for label in _split(row["arm_group_labels"])])) if v}
    if arms:
        protocol["armsInterventionsModule"] = arms
    if row["countries"]:
        protocol["contactsLocationsModule"] = {
            "locations": [{"country": c} for c in _split(row["countries"])]}
    record: dict[str, Any] = {"protocolSection": protocol}
    if row["has_results"] in ("true", "false"):
        record["hasResults"] = row["has_results"] == "true"
    return record


def offtopic_rows() -> list[dict[str, str]]:
    return fixture_rows("offtopic_trials.csv")


def classification_case_rows() -> list[dict[str, str]]:
    return fixture_rows("classification_cases.csv")


def fixture_rows(name: str) -> list[dict[str, str]]:
    with (FIXTURES / name).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def snapshot_studies() -> list[dict[str, Any]]:
    return orjson.loads((SNAPSHOT / "ctgov" / "studies-0001.json").read_bytes())["studies"]


def nct_id(study: dict[str, Any]) -> str:
    return study["protocolSection"]["identificationModule"]["nctId"]


def pubmed_articles() -> list[bytes]:
    texts = [(SNAPSHOT / "pubmed" / "efetch-0001.xml").read_bytes(),
             (FIXTURES / "pubmed-29768149.xml").read_bytes()]
    articles = []
    for text in texts:
        articles += re.findall(rb"<PubmedArticle>.*?</PubmedArticle>", text, flags=re.S)
    return articles


def europepmc_results(articles: list[bytes]) -> list[dict[str, Any]]:
    """Europe PMC 'core' results for the same publications (ids and titles only)."""
    out = []
    for article in articles:
        pmid = re.search(rb"<PMID[^>]*>(\d+)</PMID>", article)
        doi = re.search(rb'<ArticleId IdType="doi">([^<]+)</ArticleId>', article)
        title = re.search(rb"<ArticleTitle>(.*?)</ArticleTitle>", article, flags=re.S)
        if not pmid:
            continue
        out.append({"id": pmid.group(1).decode(), "source": "MED", "pmid": pmid.group(1).decode(),
                    "doi": doi.group(1).decode() if doi else None,
                    "title": title.group(1).decode() if title else None})
    return out


def results_records() -> list[dict[str, Any]]:
    """The real records with a results section (tests/fixtures/live_corpus/NCT*.json)."""
    return [orjson.loads((FIXTURES / f"{nct}.json").read_bytes()) for nct in RESULTS_RECORDS]


def live_corpus(hidden: tuple[str, ...] = HIDDEN_FROM_SEARCH,
                impossible: tuple[dict[str, Any], ...] = ()) -> Corpus:
    """The corpus; ``impossible`` adds records whose own numbers are impossible."""
    curated = snapshot_studies()
    rows = offtopic_rows() + classification_case_rows()
    offtopic = [offtopic_record(row) for row in rows]
    with_results = results_records()
    everything = curated + offtopic + with_results + list(impossible)
    registry = {nct_id(s): s for s in everything}
    search = [s for s in everything if nct_id(s) not in hidden]
    articles = pubmed_articles()
    labels = {row["nct_id"]: row["expected_class"] for row in rows}
    labels.update({nct_id(record): "not_stem_cell" for record in with_results})
    return Corpus(search, registry, articles, europepmc_results(articles), labels=labels)
