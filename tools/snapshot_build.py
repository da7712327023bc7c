"""Build the shipped offline snapshot from the curated reference facts.

    python -m tools.snapshot_build ../shared/reference

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

from flows.registry_ids import find_registry_ids
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
            for _, trial_id in find_registry_ids(pub["trial_id"]):
                writer.writerow([pub["pmid"], pub["doi"].lower(), trial_id, pub["trial_id"],
                                 pub["source"]])
    return len(publications)


NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
LEADING_NUMBER = re.compile(r"^(\d+(?:\.\d+)?)\s*\(")
UNIT_RULES: tuple[tuple[str, str], ...] = (
    # (regex on the lower-cased unit text, controlled unit) - first match wins
    (r"c-peptide.*pmol/l|pmol/l.*c-peptide|^meal-stimulated c-peptide pmol/l", "c_peptide_pmol_per_l"),
    (r"c-peptide.*nmol/l", "c_peptide_nmol_per_l"),
    (r"c-peptide.*ng/ml", "c_peptide_ng_per_ml"),
    (r"hba1c.*(% points|percentage points)", "hba1c_percent"),
    (r"mmol/mol", "hba1c_mmol_per_mol"),
    (r"^hba1c %", "hba1c_percent"),
    (r"% (relative )?change|% reduction", "percent_change"),
    (r"u/kg/day", "iu_per_kg_per_day"),
    (r"iu/day", "iu_per_day"),
    (r"^months", "months"),
    (r"^% time", "percent"),
)


def _number(text: str) -> float | None:
    return float(text) if NUMBER.match(text.strip()) else None


def _months(text: str) -> float | None:
    """'12' -> 12; '11 (48 weeks)' -> 11; ranges, '>=12', '~3' and words -> None (kept as text)."""
    text = text.strip()
    if NUMBER.match(text):
        return float(text)
    match = LEADING_NUMBER.match(text)
    return float(match.group(1)) if match else None


def _unit(measure: str, unit_text: str) -> str:
    if measure == "proportion":
        return "proportion"
    if measure == "count":
        return "count"
    if measure == "qualitative":
        return "none"
    lowered = unit_text.lower()
    for pattern, unit in UNIT_RULES:
        if re.search(pattern, lowered):
            return unit
    return "as_reported"


def source_of_record(pmid: str, doi: str, urls: list[str]) -> str:
    """The link a reader follows for a row: the DOI, else the PubMed record (the citation of
    record), else the curator's first URL. A site's front page, a forum thread or a clinic's
    page is never chosen over a DOI or PMID."""
    if doi:
        return f"https://doi.org/{doi}"
    if pmid:
        return f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/"
    return urls[0] if urls else ""


def other_source_urls(record: str, urls: list[str]) -> str:
    """Every other URL the curator gave, in their order, space-separated (URLs hold no spaces)."""
    kept: list[str] = []
    for url in urls:
        if url != record and url not in kept:
            kept.append(url)
    return " ".join(kept)


def outcome_sheet_row(row: dict[str, str]) -> dict[str, str]:
    """A reference outcome row in the extraction-sheet format (data/outcomes/README.md).

    Every fact is carried: numbers that are exact become typed columns, and the text as written
    is kept beside them (``*_as_reported``) whenever it is not a plain number.
    """
    value = "" if row["measure"] == "qualitative" else row["value"]
    number = _number(value) if value else None
    followup, timepoint = _months(row["followup_months"]), _months(row["timepoint_months"])
    urls = re.findall(r"https?://[^\s;]+", row["source"])
    record = source_of_record(row["pmid"], row["doi"], urls)
    out = {
        "study_id": row["study_id"], "first_author": row["first_author"], "year": row["year"],
        "journal": row["journal"], "pmid": row["pmid"], "doi": row["doi"],
        "source_url": record, "other_source_urls": other_source_urls(record, urls),
        "trial_id": row["trial_id"],
        "design": row["design"], "randomized": row["randomized"],
        "diabetes_type": row["diabetes_type"], "population_note": row["population_note"],
        "therapy_class_as_reported": row["therapy_class"], "cell_source": row["cell_source"],
        "donor_type": row["donor_type"], "route": row["route"], "dose": row["dose"],
        "immunosuppression": row["immunosuppression"], "arm": row["arm"],
        "n_arm": row["n_arm"] if NUMBER.match(row["n_arm"] or "x") else "",
        "n_arm_as_reported": "" if NUMBER.match(row["n_arm"] or "x") else row["n_arm"],
        "followup_months": "" if followup is None else f"{followup:g}",
        "followup_as_reported": row["followup_months"],
        "outcome": row["outcome"],
        "timepoint_months": "" if timepoint is None else f"{timepoint:g}",
        "timepoint_as_reported": row["timepoint_months"],
        "measure": row["measure"],
        "value": "" if number is None else row["value"],
        "value_as_reported": row["value"],
        "unit": _unit(row["measure"], row["unit"]),
        "unit_as_reported": row["unit"],
        "n_events": row["n_events"], "n_total": row["n_total"],
        "ci_low": row["ci_low"], "ci_high": row["ci_high"],
        "verified": row["verified"], "source": row["source"],
    }
    return out


def build_outcome_sheet(reference_dir: Path, outcomes_dir: Path) -> int:
    rows = list(csv.DictReader((reference_dir / "outcomes.csv").open(encoding="utf-8")))
    converted = [outcome_sheet_row(r) for r in rows]
    outcomes_dir.mkdir(parents=True, exist_ok=True)
    with (outcomes_dir / "published_outcomes.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(converted[0]))
        writer.writeheader()
        writer.writerows(converted)
    return len(converted)


ICTRP_REGISTER = {"IRCT": "IRCT", "ChiCTR": "ChiCTR", "EudraCT": "EU Clinical Trials Register"}
ICTRP_STATUS = {"RECRUITING": "Recruiting", "COMPLETED": "Completed",
                "NOT_YET_RECRUITING": "Not yet recruiting"}
ICTRP_PHASE = {"EARLY_PHASE1": "Early Phase 1", "PHASE1": "Phase 1", "PHASE2": "Phase 2",
               "PHASE3": "Phase 3", "NA": "N/A"}


def ictrp_trial_xml(row: dict[str, str]) -> str:
    """A trials.csv row of another registry in the ICTRP export shape (facts only)."""
    from xml.sax.saxutils import escape

    trial_id = row["trial_id"]
    if row["registry"] == "EudraCT":
        # ICTRP lists EU CTR records per member state; the facts are from the ES record
        trial_id = f"EUCTR{trial_id}-ES"
    fields = [
        ("TrialID", trial_id),
        ("Public_title", row["title"]),
        ("Primary_sponsor", row["lead_sponsor"]),
        ("Date_registration", row["first_posted"]),
        ("Source_Register", ICTRP_REGISTER[row["registry"]]),
        ("Recruitment_Status", ICTRP_STATUS.get(row["overall_status"], row["overall_status"])),
        ("Date_enrollement", row["start_date"]),
        ("Target_size", row["enrollment"]),
        ("Study_type", "Interventional study" if row["study_type"] == "INTERVENTIONAL"
         else row["study_type"]),
        ("Phase", "/".join(ICTRP_PHASE[p] for p in row["phase"].split("/")) if row["phase"]
         else ""),
        ("Countries", row["countries"]),
        ("Condition", row["conditions"]),
        ("Intervention", row["intervention_names"]),
    ]
    body = "".join(f"<{k}>{escape(v)}</{k}>" if v else f"<{k}/>" for k, v in fields)
    return f"<Trial>{body}</Trial>"


def build_ictrp(reference_dir: Path, snapshot_dir: Path) -> int:
    rows = [r for r in csv.DictReader((reference_dir / "trials.csv").open(encoding="utf-8"))
            if r["registry"] in ICTRP_REGISTER]
    out = snapshot_dir / "ictrp"
    out.mkdir(parents=True, exist_ok=True)
    (out / "ictrp_export.xml").write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<Trials_downloaded_from_ICTRP>\n'
        + "\n".join(ictrp_trial_xml(r) for r in rows) + "\n</Trials_downloaded_from_ICTRP>\n",
        encoding="utf-8")
    return len(rows)


def main(argv: list[str]) -> None:
    reference = Path(argv[0]) if argv else REPO_DIR.parent / "shared" / "reference"
    count = build(reference, REPO_DIR / "data" / "snapshot")
    print(f"wrote {count} ClinicalTrials.gov studies to data/snapshot/ctgov/")
    count = build_publications(reference, REPO_DIR / "data" / "snapshot")
    print(f"wrote {count} publications to data/snapshot/pubmed/")
    count = build_ictrp(reference, REPO_DIR / "data" / "snapshot")
    print(f"wrote {count} ICTRP-shaped trials to data/snapshot/ictrp/")
    count = build_outcome_sheet(reference, REPO_DIR / "data" / "outcomes")
    print(f"wrote {count} outcome rows to data/outcomes/published_outcomes.csv")


if __name__ == "__main__":
    main(sys.argv[1:])
