"""XML from outside is parsed safely: a document declaring entities is refused before any parser
sees it (no billion laughs), and parsers never resolve entities or fetch DTDs (no XXE; works
offline). Shared by the PubMed and WHO ICTRP parsers."""

from __future__ import annotations

import re

from flows.errors import SourceError

ENTITY_DECLARATION = re.compile(rb"<!ENTITY", re.IGNORECASE)
PROLOG_SCAN_BYTES = 64 * 1024


class UnsafeXml(SourceError):
    """The document declares entities or otherwise asks the parser to do something unsafe."""


def check_prolog(head: bytes, name: str) -> None:
    if ENTITY_DECLARATION.search(head):
        raise UnsafeXml(f"{name}: the document declares XML entities; refused (entity expansion "
                        "and external entities are never processed)")
