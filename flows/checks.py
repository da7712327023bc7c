"""The vocabulary of a Great Expectations gate check: a query and what its rows must satisfy.

Raw checks are declared by the source that owns the table (its ``resource.py``); mart checks live
in :mod:`flows.quality`, which runs both gates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CRITICAL, WARNING = "critical", "warning"
PARTIAL_DATE = r"^\d{4}(?:-\d{2}(?:-\d{2})?)?$"


@dataclass(frozen=True)
class Expect:
    kind: str  # a gx.expectations class name
    kwargs: dict[str, Any]
    severity: str = CRITICAL


@dataclass(frozen=True)
class Check:
    name: str
    gate: str  # raw | mart
    sql: str  # a query over the build database; $run_ids (this run's runs of the source) is bound
    expectations: tuple[Expect, ...]
    source: str | None = None  # raw checks: the source whose runs they validate
