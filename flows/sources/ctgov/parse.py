"""A landed ClinicalTrials.gov study line -> its ``raw.ctgov_studies`` columns, with the record
check.

Every module of the API's study structure is optional: a record is rejected only when it lacks
what the loader needs (a valid ``nctId``) or a field has the wrong type. A date that has the
right shape but is not a calendar date ("2020-13-45") is kept as text, noted, and becomes NULL in
staging.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import orjson

from flows.sources.base import Parsed, RecordProblem
from flows.sources.topic import Topic

NCT_ID = re.compile(r"^NCT\d{8}$")
PARTIAL_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")

# (path into the study, expected Python type(s), description) checked on every record.
TYPE_RULES: tuple[tuple[tuple[str, ...], tuple[type, ...], str], ...] = (
    (("protocolSection", "designModule", "enrollmentInfo", "count"), (int,), "integer"),
    (("protocolSection", "designModule", "phases"), (list,), "list"),
    (("protocolSection", "conditionsModule", "conditions"), (list,), "list"),
    (("protocolSection", "armsInterventionsModule", "interventions"), (list,), "list"),
    (("protocolSection", "contactsLocationsModule", "locations"), (list,), "list"),
    (("protocolSection", "statusModule", "overallStatus"), (str,), "string"),
    (("hasResults",), (bool,), "boolean"),
)
DATE_FIELDS = (
    "startDateStruct",
    "primaryCompletionDateStruct",
    "completionDateStruct",
    "studyFirstPostDateStruct",
    "lastUpdatePostDateStruct",
    "resultsFirstPostDateStruct",
)
DATE_PATHS = tuple((name, "date") for name in DATE_FIELDS) + (("statusVerifiedDate",),)


def as_object(value: Any) -> dict[str, Any]:
    """A module or struct of the study: any module may be absent, null or not an object."""
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def is_calendar_date(text: str) -> bool:
    """Whether a yyyy[-MM[-dd]] string names a real year, month or day."""
    parts = text.split("-")
    try:
        if len(parts) == 3:
            date.fromisoformat(text)
        elif len(parts) == 2:
            date(int(parts[0]), int(parts[1]), 1)
        else:
            date(int(parts[0]), 1, 1)
    except ValueError:
        return False
    return True


def _texts(values: Any) -> list[str]:
    if isinstance(values, str):
        return [values]
    if isinstance(values, list):
        return [v for v in values if isinstance(v, str)]
    return []


def topic_texts(study: dict[str, Any]) -> tuple[str, str]:
    """The text the bulk topic filter matches against, extracted from the parsed record."""
    protocol = as_object(study.get("protocolSection"))
    ident = as_object(protocol.get("identificationModule"))
    titles = _texts([ident.get("briefTitle"), ident.get("officialTitle"), ident.get("acronym")])
    cond = as_object(protocol.get("conditionsModule"))
    conditions = titles + _texts(cond.get("conditions")) + _texts(cond.get("keywords"))
    arms = as_object(protocol.get("armsInterventionsModule"))
    interventions = list(titles)
    for item in _list(arms.get("interventions")) + _list(arms.get("armGroups")):
        if isinstance(item, dict):
            interventions += _texts(
                [item.get("name"), item.get("label"), item.get("description")]
            )
            interventions += _texts(item.get("otherNames")) + _texts(item.get("interventionNames"))
    return " | ".join(conditions).lower(), " | ".join(interventions).lower()


def _lookup(obj: Any, path: tuple[str, ...]) -> tuple[bool, Any]:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return False, None
        obj = obj[key]
    return True, obj


def check_study_line(line: bytes) -> Parsed:
    """Parse and check one landed line; raise :class:`RecordProblem` with a precise reason.

    The row carries the study as landed, its id and last update (the newest version of a study
    in one run wins), and, for the bulk topic filter, its condition and intervention texts."""
    try:
        study = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise RecordProblem(f"malformed JSON ({exc})") from None
    if not isinstance(study, dict):
        raise RecordProblem(f"record is a JSON {type(study).__name__}, expected an object")
    found, nct_id = _lookup(study, ("protocolSection", "identificationModule", "nctId"))
    if not found or nct_id in (None, ""):
        raise RecordProblem("record has no protocolSection.identificationModule.nctId")
    if not isinstance(nct_id, str) or not NCT_ID.match(nct_id):
        raise RecordProblem(f"nctId {nct_id!r} does not match ^NCT\\d{{8}}$")
    for path, types, expected in TYPE_RULES:
        found, value = _lookup(study, path)
        # bool is an int subclass: enrollment count true/false is a type error too
        if (
            found
            and value is not None
            and (not isinstance(value, types) or (int in types and isinstance(value, bool)))
        ):
            raise RecordProblem(
                f"{nct_id}: {'.'.join(path)} is {type(value).__name__} ({value!r:.40}), "
                f"expected {expected}"
            )
    status = as_object(as_object(study.get("protocolSection")).get("statusModule"))
    impossible = []
    for path in DATE_PATHS:
        found, value = _lookup(status, path)
        if not found or value is None:
            continue
        where = "statusModule." + ".".join(path)
        if not (isinstance(value, str) and PARTIAL_DATE.match(value)):
            raise RecordProblem(f"{nct_id}: {where} is {value!r:.40}, expected yyyy[-MM[-dd]]")
        if not is_calendar_date(value):
            impossible.append(f"{nct_id}: {where} {value!r}")
    last_update = as_object(status.get("lastUpdatePostDateStruct")).get("date")
    # a whole calendar day, or NULL (a month or year alone is no day)
    last_update_date = (date.fromisoformat(last_update) if isinstance(last_update, str)
                        and len(last_update) == 10 and is_calendar_date(last_update) else None)
    conditions_text, interventions_text = topic_texts(study)
    payload = line.decode("utf-8")
    return Parsed(nct_id, {"nct_id": nct_id, "last_update_post_date": last_update_date,
                           "payload": payload, "conditions_text": conditions_text,
                           "interventions_text": interventions_text}, tuple(impossible))


def topic_filter_sql(topic: Topic) -> str:
    """SQL predicate applying the topic in bulk mode (the whole-registry archive).

    It matches the parsed columns ``conditions_text`` and ``interventions_text`` (extracted from
    the record while it is checked), so the filter costs no second JSON parse.
    """

    def any_of(patterns: tuple[str, ...]) -> str:
        escaped = [re.sub(r"([.^$*+?()\[\]{}|\\])", r"\\\1", p) for p in patterns]
        return "'" + "|".join(escaped).replace("'", "''") + "'"

    clauses = []
    if topic.bulk_condition_patterns:
        clauses.append(f"regexp_matches(conditions_text, {any_of(topic.bulk_condition_patterns)})")
    if topic.bulk_intervention_patterns:
        clauses.append(
            f"regexp_matches(interventions_text, {any_of(topic.bulk_intervention_patterns)})"
        )
    return " and ".join(clauses) if clauses else "true"
