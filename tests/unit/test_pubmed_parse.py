"""PubMed XML parsing: date shapes, markup, ids of the article vs its references, safety."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from flows.errors import SourceError
from flows.sources.pubmed.parse import UnsafeXml, iter_articles, parse_pub_date

FIXTURE = Path(__file__).parents[1] / "fixtures" / "pubmed" / "efetch_sample.xml"


@pytest.fixture(scope="module")
def articles() -> dict[str, dict]:
    return {a["pmid"]: a for a in iter_articles(FIXTURE)}


def date_of(xml: str):
    return parse_pub_date(etree.fromstring(xml))


@pytest.mark.parametrize(
    ("xml", "expected"),
    [
        ("<PubDate><Year>2018</Year><Month>05</Month><Day>17</Day></PubDate>", (2018, 5, 17, "day")),
        ("<PubDate><Year>2024</Year><Month>Jan</Month></PubDate>", (2024, 1, None, "month")),
        ("<PubDate><Year>2015</Year></PubDate>", (2015, None, None, "year")),
        ("<PubDate><Year>2021</Year><Season>Spring</Season></PubDate>", (2021, 3, None, "season")),
        ("<PubDate><MedlineDate>2019 Jan-Feb</MedlineDate></PubDate>", (2019, 1, None, "year")),
        ("<PubDate><MedlineDate>1998 Dec-1999 Jan</MedlineDate></PubDate>", (1998, 12, None, "year")),
        ("<PubDate><MedlineDate>Winter</MedlineDate></PubDate>", (None, None, None, None)),
        ("<PubDate/>", (None, None, None, None)),
    ],
)
def test_pub_date_shapes(xml, expected):
    parsed = date_of(xml)
    assert (parsed.year, parsed.month, parsed.day, parsed.precision) == expected


def test_structured_abstract_markup_and_identifiers(articles):
    first = articles["90000001"]
    assert first["title"] == (
        "Stem-cell islets restore C-peptide in type 1 diabetes: HbA1c below 7%."
    )
    assert first["abstract"].startswith("BACKGROUND: Islet replacement works.")
    assert "RESULTS: HbA1c fell" in first["abstract"]
    assert first["doi"] == "10.1056/nejmoa9999999"  # lower-cased
    assert first["pmcid"] == "PMC9999999"
    assert first["journal_iso_abbreviation"] == "N Engl J Med"
    assert [p for p in first["publication_types"]] == ["Clinical Trial, Phase II", "Journal Article"]


def test_reference_list_ids_are_not_taken_for_the_article(articles):
    first = articles["90000001"]
    assert first["doi"] != "10.9999/cited.paper"
    assert "11111111" not in str(first)


def test_authors_collective_orcid_affiliations(articles):
    authors = articles["90000001"]["authors"]
    assert [a["position"] for a in authors] == [1, 2, 3]
    assert authors[0]["orcid"] == "0000-0002-1825-0097"
    assert len(authors[0]["affiliations"]) == 2
    assert authors[1]["fore_name"] is None and authors[1]["initials"] == "B"
    assert authors[2]["collective_name"] == "Islet Study Group"


def test_databank_mesh_keywords(articles):
    first = articles["90000001"]
    assert ("ClinicalTrials.gov", "NCT09999902") in {
        (d["databank_name"], d["accession_number"]) for d in first["databank_accessions"]
    }
    mesh = first["mesh_headings"][0]
    assert mesh["descriptor_ui"] == "D003922" and mesh["is_major_topic"]
    assert mesh["qualifiers"][0]["qualifier_name"] == "therapy"
    assert first["keywords"] == ["islet replacement"]


def test_missing_abstract_vernacular_title_doi_in_elocation(articles):
    second = articles["90000002"]
    assert second["abstract"] is None and second["doi"] is None
    assert second["vernacular_title"] == "Cellules stromales mésenchymateuses."
    assert second["citation_status"] == "In-Process" and second["mesh_headings"] == []
    assert articles["90000003"]["doi"] == "10.1177/abc.2021.xyz"  # from ELocationID


def test_book_articles_in_the_same_set(articles):
    book = articles["90000005"]
    assert book["record_type"] == "book"
    assert book["title"] == "Islet Transplantation: A Primer" and book["pub_year"] == 2020


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE PubmedArticleSet [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>1</PMID>
<Article><ArticleTitle>&xxe;</ArticleTitle></Article></MedlineCitation></PubmedArticle>
</PubmedArticleSet>"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>1</PMID>
<Article><ArticleTitle>&lol9;</ArticleTitle></Article></MedlineCitation></PubmedArticle>
</PubmedArticleSet>"""


@pytest.mark.parametrize("payload", [XXE, BILLION_LAUGHS])
def test_entity_declarations_are_refused(payload):
    with pytest.raises(UnsafeXml, match="declares XML entities"):
        list(iter_articles(payload, name="evil.xml"))


def test_malformed_xml_names_the_document():
    broken = b"<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>1</PMID>"
    with pytest.raises(SourceError, match="broken.xml: malformed XML"):
        list(iter_articles(broken, name="broken.xml"))


def test_external_dtd_is_never_fetched():
    # the real DOCTYPE line points at an https DTD; parsing must not need the network
    assert len(list(iter_articles(FIXTURE.read_bytes(), name="sample"))) == 5
