"""The search topic, read from a versioned TOML file (``flows/topic.toml`` by default)."""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path

from flows.errors import BetacellError


@dataclass(frozen=True)
class Topic:
    name: str
    version: str
    conditions: tuple[str, ...]
    interventions: tuple[str, ...]
    terms: tuple[str, ...]
    exclusions: tuple[str, ...]
    bulk_condition_patterns: tuple[str, ...]
    bulk_intervention_patterns: tuple[str, ...]
    pubmed_term: str = ""
    europepmc_query: str = ""
    publications_start_date: str = "1990-01-01"

    @property
    def fingerprint(self) -> str:
        text = repr((self.conditions, self.interventions, self.terms, self.exclusions)).encode()
        return hashlib.sha256(text).hexdigest()[:16]


def load_topic(path: Path) -> Topic:
    try:
        doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BetacellError(f"topic file {path} does not exist (BETACELL_TOPIC_FILE)") from exc
    except tomllib.TOMLDecodeError as exc:
        raise BetacellError(f"topic file {path} is not valid TOML: {exc}") from exc
    ctgov = doc.get("ctgov", {})
    bulk = doc.get("bulk", {})
    topic = Topic(
        name=doc.get("topic", {}).get("name", "unnamed"),
        version=str(doc.get("topic", {}).get("version", "")),
        conditions=tuple(ctgov.get("conditions", [])),
        interventions=tuple(ctgov.get("interventions", [])),
        terms=tuple(ctgov.get("terms", [])),
        exclusions=tuple(ctgov.get("exclusions", [])),
        bulk_condition_patterns=tuple(p.lower() for p in bulk.get("condition_patterns", [])),
        bulk_intervention_patterns=tuple(p.lower() for p in bulk.get("intervention_patterns", [])),
        pubmed_term=doc.get("pubmed", {}).get("term", ""),
        europepmc_query=doc.get("pubmed", {}).get("europepmc_query", ""),
        publications_start_date=doc.get("pubmed", {}).get("start_date", "1990-01-01"),
    )
    if not topic.conditions and not topic.interventions and not topic.terms:
        raise BetacellError(
            f"topic file {path} has no condition, intervention or term: it would fetch the "
            "whole registry through the search API; use --full (bulk mode) for that"
        )
    return topic
