"""Trial registry id patterns, shared with the dbt macro ``registry_id_patterns`` (kept in step
by a test). Used by Python code that needs to recognise ids (snapshot build, ICTRP import)."""

from __future__ import annotations

import re

REGISTRY_ID_PATTERNS: tuple[tuple[str, str], ...] = (
    ("ClinicalTrials.gov", "NCT[0-9]{8}"),
    ("ChiCTR", "ChiCTR(?:-[A-Z]{2,4}-[0-9]{8}|[0-9]{10})"),
    ("IRCT", "IRCT[0-9]{10,16}N[0-9]{1,3}"),
    ("CTRI", "CTRI/[0-9]{4}/[0-9]{2,3}/[0-9]{6}"),
    ("ISRCTN", "ISRCTN[0-9]{8}"),
    ("EU CT", r"\b20[0-9]{2}-5[0-9]{5}-[0-9]{2}-[0-9]{2}\b"),
    ("EudraCT", r"\b(?:19|20)[0-9]{2}-0[0-9]{5}-[0-9]{2}\b"),
    ("jRCT", "jRCT[a-z]?[0-9]{10}"),
    ("ANZCTR", "ACTRN[0-9]{14}"),
    ("DRKS", "DRKS[0-9]{8}"),
)
_COMPILED = tuple((name, re.compile(pattern)) for name, pattern in REGISTRY_ID_PATTERNS)


def find_registry_ids(text: str | None) -> list[tuple[str, str]]:
    """``(registry, id)`` pairs mentioned in a text, in order of appearance, without repeats."""
    if not text:
        return []
    found: list[tuple[int, str, str]] = []
    for name, pattern in _COMPILED:
        found += [(m.start(), name, m.group(0)) for m in pattern.finditer(text)]
    seen: set[str] = set()
    out = []
    for _, name, value in sorted(found):
        if value not in seen:
            seen.add(value)
            out.append((name, value))
    return out
