"""The dbt seeds as Python reads them. Every vocabulary, rule table and id pattern has its one
home in ``dbt_project/seeds/`` (dbt loads the same files); this module is the one reader."""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

from flows.settings import REPO_DIR

SEEDS_DIR = REPO_DIR / "dbt_project" / "seeds"


def seed_path(name: str) -> Path:
    return SEEDS_DIR / f"{name}.csv"


def read_seed(name: str) -> tuple[dict[str, str], ...]:
    """The rows of one seed, as text (a file changed on disk is read again)."""
    path = seed_path(name)
    return _read(path, path.stat().st_mtime_ns)


@lru_cache(maxsize=64)
def _read(path: Path, _modified: int) -> tuple[dict[str, str], ...]:
    with path.open(newline="", encoding="utf-8") as handle:
        return tuple(csv.DictReader(handle))


def seed_column(name: str, column: str, **equal: str) -> list[str]:
    """One column of a seed, for the rows whose other columns have the given values."""
    return [row[column] for row in read_seed(name)
            if all(row[key] == value for key, value in equal.items())]
