"""WHO ICTRP search-portal exports (XML and CSV) dropped into data/inbox/ictrp/.

Robust to the known quirks: invalid XML character references in ChiCTR records (stripped before
parsing), ``;``-joined multi-value fields, per-registry date formats, the misspelled
``Date_enrollement`` field, CSV headers with spaces, EUCTR ids with a country suffix, and old
dashed and new ChiCTR id forms. Parsing never resolves entities or fetches DTDs.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lxml import etree

from flows.errors import SourceError
from flows.sources.pubmed_xml import ENTITY_DECLARATION

# XML 1.0 forbids these characters even as references; ChiCTR exports contain them.
INVALID_CHAR_REFERENCE = re.compile(rb"&#(x0*(?:[0-8bBcCeEfF]|1[0-9a-fA-F])|0*(?:[0-8]|1[1-2]|1[4-9]|2[0-9]|3[01]));")
INVALID_RAW_CHARS = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")
MULTI_VALUE_FIELDS = ("Countries", "Condition", "Intervention", "Secondary_ID", "other_records",
                      "Primary_outcome", "Secondary_outcome", "Secondary_Sponsor")
FIELD_ALIASES = {"Date_enrollment": "Date_enrollement"}  # keep the export's own (misspelled) name


def clean_xml(content: bytes) -> bytes:
    """Drop character references and raw characters that XML 1.0 does not allow."""
    return INVALID_RAW_CHARS.sub(b"", INVALID_CHAR_REFERENCE.sub(b"", content))


def _normalise_key(key: str) -> str:
    key = key.strip().replace(" ", "_")
    return FIELD_ALIASES.get(key, key)


def _clean_text(value: str | None) -> str | None:
    if value is None:
        return None
    value = re.sub(r"<br\s*/?>", " ", value, flags=re.I).replace("\r", " ")
    value = " ".join(value.split())
    return value or None


def parse_xml_export(content: bytes, name: str = "export.xml") -> Iterator[dict[str, Any]]:
    head = content[:65536]
    if ENTITY_DECLARATION.search(head):
        raise SourceError(f"{name}: the export declares XML entities; refused")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False, recover=False)
    try:
        root = etree.fromstring(clean_xml(content), parser)
    except etree.XMLSyntaxError as exc:
        raise SourceError(f"{name}: malformed ICTRP XML at line {exc.lineno}: {exc.msg}") from exc
    if root.tag != "Trials_downloaded_from_ICTRP":
        raise SourceError(f"{name}: root element is <{root.tag}>, expected "
                          "<Trials_downloaded_from_ICTRP> (the portal's 'export to XML')")
    for trial in root.iterfind("Trial"):
        yield {_normalise_key(child.tag): _clean_text(child.text) for child in trial
               if isinstance(child.tag, str)}


def parse_csv_export(content: bytes, name: str = "export.csv") -> Iterator[dict[str, Any]]:
    text = content.decode("utf-8-sig", errors="replace")
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "TrialID" not in [f.strip() for f in reader.fieldnames]:
        raise SourceError(f"{name}: no TrialID column; is this an ICTRP CSV export?")
    for row in reader:
        yield {_normalise_key(k): _clean_text(v) for k, v in row.items() if k}


def parse_export(path: Path) -> Iterator[dict[str, Any]]:
    content = path.read_bytes()
    if path.suffix.lower() == ".xml":
        return parse_xml_export(content, path.name)
    if path.suffix.lower() == ".csv":
        return parse_csv_export(content, path.name)
    raise SourceError(f"{path}: ICTRP exports must be .xml or .csv")


def split_multi(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(";") if part.strip()]
