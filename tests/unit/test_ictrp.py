"""ICTRP export quirks at the parsing layer."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.errors import SourceError
from flows.sources.ictrp import parse as ictrp

FIXTURES = Path(__file__).parents[1] / "fixtures" / "ictrp"


def test_invalid_character_references_are_stripped_valid_ones_kept():
    raw = b"<a>x&#x1F;y&#x2;z&#xB;&#8;&#x0D;&#10;&#xe9;\x01</a>"
    assert ictrp.clean_xml(raw) == b"<a>xyz&#x0D;&#10;&#xe9;</a>"


def test_xml_export_fields_text_and_empties():
    records = list(ictrp.parse_export(FIXTURES / "export_quirks.xml"))
    assert [r["TrialID"] for r in records][:2] == ["ChiCTR2600099991", "ChiCTR-TRC-12009999"]
    first = records[0]
    assert first["Public_title"] == "Umbilical cord mesenchymal stem cells for type 2 diabetes (bridged record)"
    assert first["Condition"] == "Type 2 diabetes"  # &#x0D; and a literal <br> removed
    assert first["Acronym"] is None  # self-closing empty
    assert first["Date_enrollement"] == "2026-10-01"  # the export's own spelling
    assert ictrp.split_multi(first["Countries"]) == ["China", "Hong Kong"]
    assert ictrp.split_multi(first["Target_size"]) == ["Cells group:30", "Control group:30"]


def test_csv_export_headers_with_spaces():
    (record,) = list(ictrp.parse_export(FIXTURES / "export_quirks.csv"))
    assert record["TrialID"] == "IRCT2099020200002N1"
    assert record["Date_enrollement"] == "14/09/2026"
    assert record["Public_title"].startswith("Wharton jelly")


def test_entity_declarations_and_wrong_roots_are_refused():
    with pytest.raises(SourceError, match="declares XML entities"):
        list(ictrp.parse_xml_export(b'<!DOCTYPE x [<!ENTITY e "x">]><Trials_downloaded_from_ICTRP/>'))
    with pytest.raises(SourceError, match="expected <Trials_downloaded_from_ICTRP>"):
        list(ictrp.parse_xml_export(b"<PubmedArticleSet/>"))
    with pytest.raises(SourceError, match="malformed ICTRP XML"):
        list(ictrp.parse_xml_export(b"<Trials_downloaded_from_ICTRP><Trial>"))
