"""The sources: one package per source under ``flows/sources/<name>/`` (``client.py``: HTTP or
files; ``parse.py``: payload -> records, with the record check; ``resource.py``: ``RESOURCE``, the
raw table and how it is filled). Which sources exist, their labels and stages come from the dbt
seed ``sources``, the one settings table (as dlt's pipedrive source builds its resources from a
table of endpoints): adding a source is a package and a row there."""

from __future__ import annotations

import importlib
from functools import cache
from typing import TYPE_CHECKING

from flows.seeds import read_seed

if TYPE_CHECKING:
    from flows.sources.base import Resource

STAGES = ("registries", "publications", "outcomes")


@cache
def resources() -> tuple[Resource, ...]:
    """Every source's resource, in the seed's order."""
    return tuple(importlib.import_module(f"flows.sources.{row['source']}.resource").RESOURCE
                 for row in read_seed("sources"))


def names() -> tuple[str, ...]:
    return tuple(row["source"] for row in read_seed("sources"))


def plan(mode: str, stages: list[str] | None) -> list[Resource]:
    """The sources this run extracts: those of the requested stages that can run in this mode."""
    wanted = stages or list(STAGES)
    return [r for r in resources() if r.stage in wanted and (mode == "live" or not r.live_only)]
