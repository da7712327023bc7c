"""Safe, streaming parser for PubMed efetch / baseline XML (``PubmedArticleSet``), and a landed
efetch document -> rows of ``raw.pubmed_articles`` (a record needs a PMID or a DOI).

Safety: documents declaring entities are refused before parsing (no billion-laughs), external
entities and DTDs are never resolved or fetched (no XXE, works offline with the real
``pubmed_250101.dtd`` DOCTYPE line). Streaming: ``iterparse`` over each ``PubmedArticle`` /
``PubmedBookArticle``, clearing every element once read, so memory stays flat on a 30,000-record
baseline file.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import IO, Any

import orjson
from lxml import etree

from flows.errors import SourceError
from flows.sources.base import Parsed, RecordProblem
from flows.sources.safe_xml import PROLOG_SCAN_BYTES, UnsafeXml, check_prolog

MONTHS = {m: i for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1)}
SEASONS = {"spring": 3, "summer": 6, "fall": 9, "autumn": 9, "winter": 12}
RECORD_TAGS = ("PubmedArticle", "PubmedBookArticle")
__all__ = ["UnsafeXml", "iter_articles", "parse_article", "parse_document", "parse_pub_date"]


@dataclass(frozen=True)
class PubDate:
    year: int | None
    month: int | None
    day: int | None
    precision: str | None  # 'year', 'season', 'month', 'day', or None
    text: str  # as written (MedlineDate, Season, or Y/M/D joined)


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    text = text.strip()
    return int(text) if text.isdigit() else None


def _month(text: str | None) -> int | None:
    if not text:
        return None
    text = text.strip().lower()
    if text.isdigit():
        value = int(text)
        return value if 1 <= value <= 12 else None
    return MONTHS.get(text[:3])


def parse_pub_date(element: etree._Element | None) -> PubDate:
    """The three PubDate shapes: Year[/Month[/Day]], Year + Season, MedlineDate free text."""
    if element is None:
        return PubDate(None, None, None, None, "")
    medline = element.findtext("MedlineDate")
    if medline:
        year_match = re.search(r"(1[89]\d\d|20\d\d)", medline)
        year = int(year_match.group(1)) if year_match else None
        month_match = re.search(r"(1[89]\d\d|20\d\d)\s+([A-Za-z]{3})", medline)
        month = _month(month_match.group(2)) if month_match else None
        # a free-text range ("2019 Dec-2020 Jan"): only its first year is certain
        return PubDate(year, month, None, "year" if year else None, medline.strip())
    year = _int(element.findtext("Year"))
    season = element.findtext("Season")
    if season:
        month = SEASONS.get(season.strip().lower())
        return PubDate(year, month, None, "season" if month else "year",
                       f"{year} {season.strip()}")
    month = _month(element.findtext("Month"))
    day = _int(element.findtext("Day")) if month else None
    precision = "day" if day else "month" if month else "year" if year else None
    text = "-".join(str(p) for p in (year, month, day) if p is not None)
    return PubDate(year, month, day, precision, text)


def _text(element: etree._Element | None) -> str | None:
    """All text inside an element, inline markup (<i>, <sub>, MathML) flattened."""
    if element is None:
        return None
    text = " ".join("".join(element.itertext()).split())
    return text or None


def _abstract(article: etree._Element) -> str | None:
    parts = []
    for node in article.findall("Abstract/AbstractText"):
        body = _text(node)
        if not body:
            continue
        label = node.get("Label")
        parts.append(f"{label}: {body}" if label else body)
    return "\n".join(parts) or None


def _authors(article: etree._Element) -> list[dict[str, Any]]:
    authors = []
    for position, author in enumerate(article.findall("AuthorList/Author"), start=1):
        orcid = None
        for identifier in author.findall("Identifier"):
            if (identifier.get("Source") or "").upper() == "ORCID":
                orcid = (identifier.text or "").strip() or None
        authors.append(
            {
                "position": position,
                "last_name": author.findtext("LastName"),
                "fore_name": author.findtext("ForeName"),
                "initials": author.findtext("Initials"),
                "collective_name": _text(author.find("CollectiveName")),
                "orcid": orcid,
                "affiliations": [
                    a for a in (_text(x) for x in author.findall("AffiliationInfo/Affiliation"))
                    if a
                ],
            }
        )
    return authors


def _mesh(citation: etree._Element) -> list[dict[str, Any]]:
    headings = []
    for heading in citation.findall("MeshHeadingList/MeshHeading"):
        descriptor = heading.find("DescriptorName")
        if descriptor is None:
            continue
        headings.append(
            {
                "descriptor_ui": descriptor.get("UI"),
                "descriptor_name": _text(descriptor),
                "is_major_topic": descriptor.get("MajorTopicYN") == "Y",
                "qualifiers": [
                    {"qualifier_ui": q.get("UI"), "qualifier_name": _text(q),
                     "is_major_topic": q.get("MajorTopicYN") == "Y"}
                    for q in heading.findall("QualifierName")
                ],
            }
        )
    return headings


def _article_ids(record: etree._Element) -> dict[str, str]:
    """ids of THIS article: direct children of PubmedData/ArticleIdList only.

    ``ReferenceList/Reference/ArticleIdList`` holds the ids of *cited* papers and must not leak in.
    """
    ids: dict[str, str] = {}
    for data in ("PubmedData", "PubmedBookData"):
        for node in record.findall(f"{data}/ArticleIdList/ArticleId"):
            kind = (node.get("IdType") or "").lower()
            if kind and node.text and kind not in ids:
                ids[kind] = node.text.strip()
    return ids


def parse_article(record: etree._Element) -> dict[str, Any]:
    """One ``PubmedArticle`` or ``PubmedBookArticle`` element -> a flat-ish dict."""
    is_book = record.tag == "PubmedBookArticle"
    citation = record.find("BookDocument" if is_book else "MedlineCitation")
    if citation is None:
        raise SourceError(f"{record.tag} without {'BookDocument' if is_book else 'MedlineCitation'}")
    pmid_node = citation.find("PMID")
    pmid = (pmid_node.text or "").strip() if pmid_node is not None else ""
    article = citation if is_book else citation.find("Article")
    if article is None:
        article = etree.Element("Article")
    ids = _article_ids(record)
    doi = ids.get("doi")
    if not doi:
        for location in article.findall("ELocationID"):
            if location.get("EIdType") == "doi" and location.text:
                doi = location.text.strip()
                break
    journal = article.find("Journal")
    pub_date = parse_pub_date(
        journal.find("JournalIssue/PubDate") if journal is not None else citation.find("PubDate")
    )
    if pub_date.year is None and is_book:
        pub_date = parse_pub_date(citation.find("Book/PubDate"))
    databanks = [
        {"databank_name": (bank.findtext("DataBankName") or "").strip(),
         "accession_number": (acc.text or "").strip()}
        for bank in article.findall("DataBankList/DataBank")
        for acc in bank.findall("AccessionNumberList/AccessionNumber")
        if acc.text
    ]
    return {
        "pmid": pmid or None,
        "pmid_version": _int(pmid_node.get("Version")) if pmid_node is not None else None,
        "record_type": "book" if is_book else "article",
        "citation_status": citation.get("Status"),
        "doi": doi.lower() if doi else None,
        "pmcid": ids.get("pmc"),
        "title": _text(article.find("ArticleTitle")) or _text(citation.find("Book/BookTitle")),
        "vernacular_title": _text(article.find("VernacularTitle")),
        "abstract": _abstract(article),
        "journal_title": _text(journal.find("Title")) if journal is not None else None,
        "journal_iso_abbreviation": (
            _text(journal.find("ISOAbbreviation")) if journal is not None else None
        ),
        "pub_year": pub_date.year,
        "pub_month": pub_date.month,
        "pub_day": pub_date.day,
        "pub_date_precision": pub_date.precision,
        "pub_date_text": pub_date.text or None,
        "publication_types": [t for t in (_text(x) for x in
                              article.findall("PublicationTypeList/PublicationType")) if t],
        "languages": [t.strip() for t in (x.text for x in article.findall("Language")) if t],
        "authors": _authors(article),
        "mesh_headings": _mesh(citation),
        "keywords": [k for k in (_text(x) for x in citation.findall("KeywordList/Keyword")) if k],
        "databank_accessions": databanks,
        "date_revised": "-".join(
            filter(None, (citation.findtext(f"DateRevised/{p}") for p in ("Year", "Month", "Day")))
        ) or None,
    }


def iter_articles(source: bytes | Path | IO[bytes], name: str = "<xml>") -> Iterator[dict]:
    """Stream parsed articles from a PubmedArticleSet document."""
    if isinstance(source, bytes):
        check_prolog(source[:PROLOG_SCAN_BYTES], name)
        stream: Any = BytesIO(source)
    elif isinstance(source, Path):
        opener = gzip.open if source.suffix == ".gz" else open  # baseline files are .xml.gz
        with opener(source, "rb") as handle:
            check_prolog(handle.read(PROLOG_SCAN_BYTES), name)
        stream = gzip.open(source, "rb") if source.suffix == ".gz" else str(source)  # noqa: SIM115 - closed below
    else:
        head = source.read(PROLOG_SCAN_BYTES)
        check_prolog(head, name)
        stream = _Prefixed(head, source)
    context = etree.iterparse(
        stream,
        events=("end",),
        tag=RECORD_TAGS,
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
    )
    try:
        for _, element in context:
            try:
                yield parse_article(element)
            finally:
                element.clear(keep_tail=False)
                parent = element.getparent()
                if parent is not None:
                    while element.getprevious() is not None:
                        del parent[0]
    except etree.XMLSyntaxError as exc:
        raise SourceError(f"{name}: malformed XML at line {exc.lineno}: {exc.msg}") from exc
    finally:
        if hasattr(stream, "close"):
            stream.close()


class _Prefixed:
    """A file-like object replaying bytes already read, then the rest of a stream."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self.head = head
        self.rest = rest

    def read(self, size: int = -1) -> bytes:
        if self.head:
            if size < 0 or size >= len(self.head):
                out, self.head = self.head, b""
                return out + (self.rest.read(size - len(out)) if size > 0 else
                              (self.rest.read() if size < 0 else b""))
            out, self.head = self.head[:size], self.head[size:]
            return out
        return self.rest.read(size)


SCALARS = ["pmid", "pmid_version", "record_type", "citation_status", "doi", "pmcid", "title",
           "vernacular_title", "abstract", "journal_title", "journal_iso_abbreviation", "pub_year",
           "pub_month", "pub_day", "pub_date_precision", "pub_date_text", "date_revised"]
LISTS = ["publication_types", "languages", "authors", "mesh_headings", "keywords",
         "databank_accessions"]


def parse_document(document: bytes, name: str) -> Iterator[Parsed | RecordProblem]:
    """Every article of one landed efetch document as a row (nested fields as JSON text), keyed
    by PMID, else DOI; an article with neither is a :class:`RecordProblem`. A malformed document
    raises :class:`SourceError` naming it."""
    for article in iter_articles(document, name=name):
        if not article["pmid"] and not article["doi"]:
            yield RecordProblem("record has neither a PMID nor a DOI",
                                excerpt=(article.get("title") or "")[:300])
            continue
        key = f"pmid:{article['pmid']}" if article["pmid"] else f"doi:{article['doi']}"
        row = {column: article[column] for column in SCALARS}
        row.update({column: orjson.dumps(article[column]).decode() for column in LISTS})
        row["publication_key"] = key
        row["payload_md5"] = hashlib.md5(orjson.dumps(article)).hexdigest()
        yield Parsed(key, row)
