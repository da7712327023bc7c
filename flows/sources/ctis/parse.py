"""A landed EU CTIS trial (a search row with its retrieve detail) -> its raw row: it must carry
its EU CT number (``ctNumber``)."""

from __future__ import annotations

import orjson

from flows.sources.base import Parsed, RecordProblem


def check_record(line: bytes) -> Parsed:
    record = orjson.loads(line)
    value = record.get("ctNumber")
    record_id = value.strip() if isinstance(value, str) else None
    if problem := record.get("_parse_problem"):
        raise RecordProblem(str(problem), record_id)
    if not record_id:
        raise RecordProblem("record has no ctNumber")
    return Parsed(record_id, {"record_id": record_id, "source_register": None,
                              "payload": line.decode()})
