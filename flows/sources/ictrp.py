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
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Export:
    records: list[dict[str, Any]]
    encoding: str


CSV_FIELD_LIMIT = 1024 * 1024  # the csv module's default (128 KiB) is below some trial texts
CSV_ENCODINGS = ("utf-8-sig", "cp1252", "latin-1")  # the portal's exports, then Excel re-saves


def decode_csv(content: bytes, name: str) -> tuple[str, str]:
    """The text of a CSV export and the encoding that decoded it without loss."""
    for encoding in CSV_ENCODINGS:
        try:
            return content.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise SourceError(f"{name}: not UTF-8, Windows-1252 or Latin-1 text")  # unreachable


def parse_xml_export(content: bytes, name: str = "export.xml") -> Iterator[dict[str, Any]]:
    if ENTITY_DECLARATION.search(content):
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


def parse_csv_export(content: bytes, name: str = "export.csv",
                     text: str | None = None) -> Iterator[dict[str, Any]]:
    """One record per row. A row with more cells than the header keeps its fields and carries a
    ``_parse_problem``, so the loader rejects it with the reason instead of dropping cells."""
    if text is None:
        text, _ = decode_csv(content, name)
    previous_limit = csv.field_size_limit(CSV_FIELD_LIMIT)
    try:
        reader = csv.DictReader(io.StringIO(text))
        try:
            if not reader.fieldnames or "TrialID" not in [f.strip() for f in reader.fieldnames]:
                raise SourceError(f"{name}: no TrialID column; is this an ICTRP CSV export?")
            for row in reader:
                record = {_normalise_key(k): _clean_text(v) for k, v in row.items()
                          if k and isinstance(v, str)}
                extra = [cell for cell in row.get(None) or [] if cell and cell.strip()]
                missing = [k for k, v in row.items() if k is not None and v is None]
                if extra:  # trailing empty cells (a trailing comma) are harmless
                    record["_parse_problem"] = (
                        f"{name} line {reader.line_num}: {len(extra)} more cell(s) than the "
                        "header; the row is not trusted")
                elif missing:  # a cut-off row would replace a complete record
                    record["_parse_problem"] = (
                        f"{name} line {reader.line_num}: {len(missing)} fewer cell(s) than the "
                        "header (cut off?); the row is not trusted")
                yield record
        except csv.Error as exc:
            raise SourceError(f"{name} line {reader.line_num}: unreadable CSV ({exc}; fields "
                              f"are limited to {CSV_FIELD_LIMIT:,} characters)") from exc
    finally:
        csv.field_size_limit(previous_limit)


def read_export(path: Path, content: bytes | None = None) -> Export:
    """Every record of one export file (``content``, when already read), with the text encoding
    it was read in."""
    content = path.read_bytes() if content is None else content
    if path.suffix.lower() == ".xml":
        return Export(list(parse_xml_export(content, path.name)), "xml")
    if path.suffix.lower() == ".csv":
        text, encoding = decode_csv(content, path.name)
        return Export(list(parse_csv_export(content, path.name, text)), encoding)
    raise SourceError(f"{path}: ICTRP exports must be .xml or .csv")


def parse_export(path: Path) -> Iterator[dict[str, Any]]:
    return iter(read_export(path).records)


def split_multi(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(";") if part.strip()]
