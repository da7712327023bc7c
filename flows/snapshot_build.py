"""Build the shipped offline snapshot from the curated reference facts.

    python -m flows.snapshot_build ../shared/reference

Writes ``data/snapshot/ctgov/`` in the ClinicalTrials.gov API v2 JSON shape, with only the
fields the reference facts give (absent facts are absent keys, as the real API omits them).
The curator's labels (therapy class, cell source, donor) are *not* copied into the registry
records: the warehouse derives its own classification and is measured against those labels.
"""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path
from typing import Any

import orjson

from flows.settings import REPO_DIR

INTERVENTION_TYPES = {
    "biological": "BIOLOGICAL",
    "drug": "DRUG",
    "procedure": "PROCEDURE",
    "device": "DEVICE",
    "other": "OTHER",
    "genetic": "GENETIC",
    "dietary supplement": "DIETARY_SUPPLEMENT",
    "combination product": "COMBINATION_PRODUCT",
    "behavioral": "BEHAVIORAL",
    "radiation": "RADIATION",
    "diagnostic test": "DIAGNOSTIC_TEST",
}
TYPED_INTERVENTION = re.compile(r"^(?P<type>[A-Za-z ]+):\s*(?P<name>.+)$")


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(";") if part.strip()]


def _interventions(value: str) -> list[dict[str, Any]]:
    out = []
    for item in _split(value):
        match = TYPED_INTERVENTION.match(item)
        if match and match.group("type").strip().lower() in INTERVENTION_TYPES:
            out.append(
                {
                    "type": INTERVENTION_TYPES[match.group("type").strip().lower()],
                    "name": match.group("name").strip(),
                }
            )
        else:
            out.append({"name": item})
    return out


def _date(value: str) -> dict[str, str] | None:
    return {"date": value} if value else None


def study_from_reference(row: dict[str, str]) -> dict[str, Any]:
    """One reference row -> a v2 study record holding only the facts the row gives."""
    identification: dict[str, Any] = {"nctId": row["trial_id"]}
    if row["title"]:
        identification["briefTitle"] = row["title"]

    status: dict[str, Any] = {}
    if row["overall_status"]:
        status["overallStatus"] = row["overall_status"]
    if row["why_stopped"]:
        status["whyStopped"] = row["why_stopped"]
    for key, column in (
        ("startDateStruct", "start_date"),
        ("primaryCompletionDateStruct", "primary_completion_date"),
        ("completionDateStruct", "completion_date"),
        ("studyFirstPostDateStruct", "first_posted"),
        ("lastUpdatePostDateStruct", "last_update_posted"),
    ):
        if struct := _date(row[column]):
            status[key] = struct

    protocol: dict[str, Any] = {"identificationModule": identification}
    if status:
        protocol["statusModule"] = status
    if row["lead_sponsor"]:
        sponsor: dict[str, Any] = {"name": row["lead_sponsor"]}
        if row["sponsor_class"]:
            sponsor["class"] = row["sponsor_class"]
        protocol["sponsorCollaboratorsModule"] = {"leadSponsor": sponsor}
    if row["conditions"]:
        protocol["conditionsModule"] = {"conditions": _split(row["conditions"])}

    design: dict[str, Any] = {}
    if row["study_type"]:
        design["studyType"] = row["study_type"]
    if row["phase"]:
        design["phases"] = row["phase"].split("/")
    if row["enrollment"]:
        enrollment: dict[str, Any] = {"count": int(row["enrollment"])}
        if row["enrollment_type"]:
            enrollment["type"] = row["enrollment_type"]
        design["enrollmentInfo"] = enrollment
    if design:
        protocol["designModule"] = design
    if row["intervention_names"]:
        protocol["armsInterventionsModule"] = {
            "interventions": _interventions(row["intervention_names"])
        }
    if row["countries"]:
        protocol["contactsLocationsModule"] = {
            "locations": [{"country": c} for c in _split(row["countries"])]
        }

    study: dict[str, Any] = {"protocolSection": protocol}
    if row["has_results"]:
        study["hasResults"] = row["has_results"].lower() == "true"
    return study


def build(reference_dir: Path, snapshot_dir: Path) -> int:
    rows = list(csv.DictReader((reference_dir / "trials.csv").open(encoding="utf-8")))
    ctgov_rows = [r for r in rows if r["registry"] == "ClinicalTrials.gov"]
    studies = [study_from_reference(r) for r in ctgov_rows]
    out = snapshot_dir / "ctgov"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("studies-*.json"):
        old.unlink()
    (out / "studies-0001.json").write_bytes(
        orjson.dumps({"studies": studies}, option=orjson.OPT_INDENT_2) + b"\n"
    )
    as_of = max(r["last_update_posted"] for r in ctgov_rows if r["last_update_posted"])
    (out / "version.json").write_bytes(
        orjson.dumps(
            {"apiVersion": "snapshot", "dataTimestamp": f"{as_of}T00:00:00"},
            option=orjson.OPT_INDENT_2,
        )
        + b"\n"
    )
    with (out / "provenance.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["trial_id", "source"])
        for row in ctgov_rows:
            writer.writerow([row["trial_id"], row["source"]])
    return len(studies)


REGISTRY_ID = re.compile(
    r"NCT\d{8}|ChiCTR(?:-[A-Z]{2,4}-\d{8}|\d{10})|IRCT\d{10,16}N\d{1,3}|ISRCTN\d{8}"
    r"|ACTRN\d{14}|DRKS\d{8}|CTRI/\d{4}/\d{2,3}/\d{6}|jRCT[a-z]?\d{10}"
)


def _first_author(value: str) -> tuple[str, str | None]:
    """'Shapiro AMJ' -> ('Shapiro', 'AMJ'); 'Reichman' -> ('Reichman', None)."""
    parts = value.strip().split()
    if len(parts) >= 2 and parts[-1].isupper() and len(parts[-1]) <= 4:
        return " ".join(parts[:-1]), parts[-1]
    return value.strip(), None


def _publications(reference_dir: Path) -> list[dict[str, str]]:
    """Distinct publications cited in outcomes.csv (by PMID, else DOI), first row's facts."""
    rows = list(csv.DictReader((reference_dir / "outcomes.csv").open(encoding="utf-8")))
    seen: dict[str, dict[str, str]] = {}
    for row in rows:
        key = f"pmid:{row['pmid']}" if row["pmid"] else (f"doi:{row['doi'].lower()}"
                                                          if row["doi"] else "")
        if key and key not in seen:
            seen[key] = row
    return list(seen.values())


def _pubmed_article_xml(row: dict[str, str]) -> str:
    from xml.sax.saxutils import escape

    last_name, initials = _first_author(row["first_author"])
    author = f"<LastName>{escape(last_name)}</LastName>" + (
        f"<Initials>{escape(initials)}</Initials>" if initials else "")
    pub_date = f"<PubDate><Year>{row['year']}</Year></PubDate>" if row["year"] else "<PubDate/>"
    journal = (f"<ISOAbbreviation>{escape(row['journal'])}</ISOAbbreviation>"
               if row["journal"] else "")
    pmid = f'<PMID Version="1">{row["pmid"]}</PMID>' if row["pmid"] else ""
    ids = "".join(
        [f'<ArticleId IdType="pubmed">{row["pmid"]}</ArticleId>' if row["pmid"] else "",
         f'<ArticleId IdType="doi">{escape(row["doi"])}</ArticleId>' if row["doi"] else ""])
    return (
        "<PubmedArticle><MedlineCitation>" + pmid + "<Article><Journal><JournalIssue>"
        + pub_date + "</JournalIssue>" + journal + "</Journal>"
        + f'<AuthorList CompleteYN="N"><Author ValidYN="Y">{author}</Author></AuthorList>'
        + "</Article></MedlineCitation><PubmedData><ArticleIdList>" + ids
        + "</ArticleIdList></PubmedData></PubmedArticle>"
    )


def build_publications(reference_dir: Path, snapshot_dir: Path) -> int:
    publications = _publications(reference_dir)
    out = snapshot_dir / "pubmed"
    out.mkdir(parents=True, exist_ok=True)
    body = "\n".join(_pubmed_article_xml(p) for p in publications)
    (out / "efetch-0001.xml").write_text(
        '<?xml version="1.0" ?>\n<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, '
        '1st January 2025//EN" "https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">\n'
        f"<PubmedArticleSet>\n{body}\n</PubmedArticleSet>\n",
        encoding="utf-8",
    )
    seed = REPO_DIR / "dbt_project" / "seeds" / "curated_publication_trial_links.csv"
    with seed.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["pmid", "doi", "trial_id", "trial_id_as_curated", "source"])
        for pub in publications:
            for trial_id in REGISTRY_ID.findall(pub["trial_id"]):
                writer.writerow([pub["pmid"], pub["doi"].lower(), trial_id, pub["trial_id"],
                                 pub["source"]])
    return len(publications)


def main(argv: list[str]) -> None:
    reference = Path(argv[0]) if argv else REPO_DIR.parent / "shared" / "reference"
    count = build(reference, REPO_DIR / "data" / "snapshot")
    print(f"wrote {count} ClinicalTrials.gov studies to data/snapshot/ctgov/")
    count = build_publications(reference, REPO_DIR / "data" / "snapshot")
    print(f"wrote {count} publications to data/snapshot/pubmed/")


if __name__ == "__main__":
    main(sys.argv[1:])
