"""A landed Europe PMC search result -> its raw row: it must carry its Europe PMC ``id``."""

from __future__ import annotations

import orjson

from flows.sources.base import Parsed, RecordProblem


def check_record(line: bytes) -> Parsed:
    record = orjson.loads(line)
    if not isinstance(record, dict):
        raise RecordProblem(f"record is a JSON {type(record).__name__}, expected an object")
    record_id = str(record.get("id") or "").strip()
    if not record_id:
        raise RecordProblem("record has no id")
    return Parsed(f"{record.get('source')}:{record_id}", {"record_id": record_id, "source_db": record.get("source"),
                              "pmid": record.get("pmid"),
                              "doi": (record.get("doi") or "").lower() or None,
                              "payload": line.decode()})
