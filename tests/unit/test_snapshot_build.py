"""Provenance a reader can follow (tools/snapshot_build.py -> data/outcomes/published_outcomes.csv):
each row's source of record is its DOI or PubMed link, every other URL the curator gave is kept,
and no verified row links to a bare home page, a forum or a clinic's page."""

from __future__ import annotations

import csv
import re
from urllib.parse import urlsplit

import pytest

from flows.outcomes import read_sheet, validate_rows
from flows.settings import REPO_DIR
from tests.conftest import reference_file
from tools.snapshot_build import other_source_urls, outcome_sheet_row, source_of_record

SHEET = REPO_DIR / "data" / "outcomes" / "published_outcomes.csv"
URL = re.compile(r"https?://[^\s;]+")
FORUM_MARKERS = ("forum", "community", "boomja", "reddit", "/t/", "/thread")
CLINIC_MARKERS = ("clinic", "medicalgroup", "medical-group", "stemcellcenter", "treatment-center")


def weak_source(url: str) -> str | None:
    """Why a URL is no source of record (None when it may be one)."""
    parts = urlsplit(url)
    text = (parts.netloc + parts.path).lower()
    if parts.path.strip("/") == "" and not parts.query:
        return "a bare home page"
    if any(marker in text for marker in FORUM_MARKERS):
        return "a forum"
    if any(marker in parts.netloc.lower() for marker in CLINIC_MARKERS):
        return "a clinic's page"
    return None


def citation_links(row: dict[str, str]) -> set[str]:
    links = set()
    if row["doi"]:
        links.add(f"https://doi.org/{row['doi']}")
    if row["pmid"]:
        links.add(f"https://pubmed.ncbi.nlm.nih.gov/{row['pmid']}/")
    return links


def shipped_rows() -> list[dict[str, str]]:
    return list(csv.DictReader(SHEET.open(encoding="utf-8")))


@pytest.mark.parametrize("url, reason", [
    ("https://archive.org/", "a bare home page"),
    ("https://forum.tudiabetes.org/t/reversal-of-type-1-diabetes-via-islet-cell-regeneration/11432",
     "a forum"),
    ("https://reliefmedicalgroup.com/stem-cell-derived-fully-differentiated-islets-for-type-1-diabetes",
     "a clinic's page"),
    ("https://doi.org/10.2337/dc11-2161", None),
    ("https://pubmed.ncbi.nlm.nih.gov/22723579/", None),
    ("https://www.cell.com/cell-stem-cell/fulltext/S1934-5909(21)00415-X", None),
])
def test_the_oracle_knows_a_weak_source(url, reason):
    """The three links of issue 27 (the shipped sheet's sources before the fix) are caught."""
    assert weak_source(url) == reason


def test_no_verified_row_links_a_home_page_forum_or_clinic():
    rows = [r for r in shipped_rows() if r["verified"] == "yes"]
    assert len(rows) > 100
    weak = {(r["study_id"], r["source_url"], weak_source(r["source_url"]))
            for r in rows if weak_source(r["source_url"])}
    assert not weak, weak


def test_a_row_with_a_doi_or_pmid_links_its_citation_of_record():
    rows = [r for r in shipped_rows() if r["doi"] or r["pmid"]]
    assert rows
    wrong = {(r["study_id"], r["source_url"]) for r in rows
             if r["source_url"] not in citation_links(r)}
    assert not wrong, wrong
    assert all(r["source_url"] == f"https://doi.org/{r['doi']}" for r in rows if r["doi"])


@pytest.mark.parametrize("study_id, link", [
    ("GU2012_AHST_DKA", "https://doi.org/10.2337/dc11-2161"),
    ("ZHAO2012_EDUCATOR", "https://doi.org/10.1186/1741-7015-10-3"),
    ("REICHMAN2025_ZIMISLECEL", "https://doi.org/10.1056/NEJMoa2506549"),
])
def test_the_three_corrected_studies_link_their_doi(study_id, link):
    rows = [r for r in shipped_rows() if r["study_id"] == study_id]
    assert rows and {r["source_url"] for r in rows} == {link}


def test_every_url_of_the_reference_is_kept():
    reference = list(csv.DictReader(reference_file("outcomes.csv").open(encoding="utf-8")))
    shipped = shipped_rows()
    assert len(shipped) == len(reference)
    for ref, row in zip(reference, shipped, strict=True):
        kept = [row["source_url"], *row["other_source_urls"].split()]
        assert set(URL.findall(ref["source"])) <= set(kept), (ref["study_id"], kept)
        assert len(kept) == len(set(kept)), "a URL listed twice"
        assert row == outcome_sheet_row(ref), "the shipped sheet is not what make snapshot builds"


def test_the_source_of_record_prefers_doi_then_pmid_then_the_first_url():
    urls = ["https://forum.example.org/t/1", "https://news.example.org/a"]
    assert source_of_record("123", "10.1/x", urls) == "https://doi.org/10.1/x"
    assert source_of_record("123", "", urls) == "https://pubmed.ncbi.nlm.nih.gov/123/"
    assert source_of_record("", "", urls) == urls[0]
    assert source_of_record("", "", []) == ""
    assert other_source_urls("https://doi.org/10.1/x", urls + [urls[0]]) == " ".join(urls)
    assert other_source_urls(urls[0], urls) == urls[1]


def test_the_shipped_sheet_validates_with_its_new_column():
    rows, problems = validate_rows(read_sheet(SHEET), SHEET.name)
    assert not [p for p in problems if p.severity == "error"]
    assert any(r.other_source_urls for r in rows)


def test_other_source_urls_must_be_urls():
    row = dict(read_sheet(SHEET)[0], other_source_urls="see the review table")
    _, problems = validate_rows([row], "s.csv")
    assert [(p.column, p.severity) for p in problems if "http(s) URL" in p.problem] == \
        [("other_source_urls", "error")] * 4  # one per word
