"""The search topic, read from a versioned TOML file (``flows/topic.toml`` by default) and
validated by a typed model before anything starts: a wrong type is an error naming the key."""

from __future__ import annotations

import hashlib
import tomllib
from datetime import date
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from flows.errors import BetacellError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class TopicSection(_Section):
    name: str = "unnamed"
    version: str = ""

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int | float | date) else value


class CtgovSection(_Section):
    conditions: list[str] = Field(default_factory=list)
    interventions: list[str] = Field(default_factory=list)
    terms: list[str] = Field(default_factory=list)
    exclusions: list[str] = Field(default_factory=list)


class BulkSection(_Section):
    condition_patterns: list[str] = Field(default_factory=list)
    intervention_patterns: list[str] = Field(default_factory=list)


class PubmedSection(_Section):
    term: str = ""
    europepmc_query: str = ""
    start_date: date = Field(default=date(1990, 1, 1), strict=False)  # a TOML date or "YYYY-MM-DD"


class CtisSection(_Section):
    medical_condition: str = "diabetes"


class TopicFile(_Section):
    topic: TopicSection = Field(default_factory=TopicSection)
    ctgov: CtgovSection = Field(default_factory=CtgovSection)
    bulk: BulkSection = Field(default_factory=BulkSection)
    pubmed: PubmedSection = Field(default_factory=PubmedSection)
    ctis: CtisSection = Field(default_factory=CtisSection)


class Topic(BaseModel):
    """What "relevant" means for this warehouse, in each source's terms."""

    model_config = ConfigDict(frozen=True)

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
    ctis_medical_condition: str = "diabetes"

    @property
    def fingerprint(self) -> str:
        """Changes whenever what the registry search asks for changes (not the name/version)."""
        text = repr((self.conditions, self.interventions, self.terms, self.exclusions)).encode()
        return hashlib.sha256(text).hexdigest()[:16]

    @property
    def publications_fingerprint(self) -> str:
        text = repr((self.pubmed_term, self.europepmc_query)).encode()
        return hashlib.sha256(text).hexdigest()[:16]


def _describe(error: dict) -> str:
    key = ".".join(str(part) for part in error["loc"])
    given = error.get("input")
    shown = f" (got {given!r:.60})" if given is not None and not isinstance(given, dict) else ""
    return f"{key}: {error['msg']}{shown}"


def load_topic(path: Path) -> Topic:
    try:
        doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BetacellError(f"topic file {path} does not exist (BETACELL_TOPIC_FILE)") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BetacellError(f"topic file {path} is not valid TOML: {exc}") from exc
    try:
        parsed = TopicFile.model_validate(doc)
    except ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors())
        raise BetacellError(f"topic file {path} is invalid: {problems}") from None
    topic = Topic(
        name=parsed.topic.name,
        version=parsed.topic.version,
        conditions=tuple(parsed.ctgov.conditions),
        interventions=tuple(parsed.ctgov.interventions),
        terms=tuple(parsed.ctgov.terms),
        exclusions=tuple(parsed.ctgov.exclusions),
        bulk_condition_patterns=tuple(p.lower() for p in parsed.bulk.condition_patterns),
        bulk_intervention_patterns=tuple(p.lower() for p in parsed.bulk.intervention_patterns),
        pubmed_term=parsed.pubmed.term,
        europepmc_query=parsed.pubmed.europepmc_query,
        publications_start_date=parsed.pubmed.start_date.isoformat(),
        ctis_medical_condition=parsed.ctis.medical_condition,
    )
    if not topic.conditions and not topic.interventions and not topic.terms:
        raise BetacellError(
            f"topic file {path} has no condition, intervention or term: it would fetch the "
            "whole registry through the search API; use --full (bulk mode) for that"
        )
    return topic
