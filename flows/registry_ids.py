"""Trial registry id patterns, read from the dbt seed ``registry_id_patterns`` (their one home):
recognise ids in free text (curated sheets, secondary-id lists, ICTRP import)."""

from __future__ import annotations

import csv
import re
from functools import lru_cache

from flows.settings import REPO_DIR

SEED = REPO_DIR / "dbt_project" / "seeds" / "registry_id_patterns.csv"


@lru_cache(maxsize=1)
def registry_id_patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    with SEED.open(newline="", encoding="utf-8") as handle:
        return tuple((row["registry"], re.compile(row["pattern"])) for row in csv.DictReader(handle))


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
