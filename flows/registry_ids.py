"""Trial registry id patterns, read from the dbt seed ``registry_id_patterns`` (their one home):
recognise ids in free text (curated sheets, secondary-id lists, ICTRP import)."""

from __future__ import annotations

import re

from flows.seeds import read_seed


def registry_id_patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    """(registry, compiled pattern) in the seed's order (``re`` keeps the compiled patterns)."""
    return tuple((row["registry"], re.compile(row["pattern"]))
                 for row in read_seed("registry_id_patterns"))


def find_registry_ids(text: str | None) -> list[tuple[str, str]]:
    """``(registry, id)`` pairs mentioned in a text, in order of appearance, without repeats."""
    if not text:
        return []
    found: list[tuple[int, str, str]] = []
    for name, pattern in registry_id_patterns():
        found += [(m.start(), name, m.group(0)) for m in pattern.finditer(text)]
    seen: set[str] = set()
    out = []
    for _, name, value in sorted(found):
        if value not in seen:
            seen.add(value)
            out.append((name, value))
    return out
