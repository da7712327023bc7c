"""Every bad-record rule of the ClinicalTrials.gov record check, one case each."""

from __future__ import annotations

from datetime import date

import orjson
import pytest

from flows.sources.base import RecordProblem
from flows.sources.ctgov.parse import check_study_line
from tests.fixtures.ctgov_records import REGISTERED_ONLY, study


def line(record) -> bytes:
    return orjson.dumps(record)


def test_valid_record_passes_and_keeps_payload_verbatim():
    checked = check_study_line(line(REGISTERED_ONLY))
    assert checked.key == checked.row["nct_id"] == "NCT09999901"
    assert checked.row["last_update_post_date"] == date(2025, 3, 14)
    assert orjson.loads(checked.row["payload"]) == REGISTERED_ONLY


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"protocolSection": {', "malformed JSON"),
        (b"[1, 2]", "JSON list, expected an object"),
        (line({"protocolSection": {"identificationModule": {}}}), "has no protocolSection"),
        (line(study("NCT123")), "does not match"),
        (line(study("nct09999901")), "does not match"),
        (
            line(study("NCT09999911", designModule={"enrollmentInfo": {"count": "twenty"}})),
            "enrollmentInfo.count is str",
        ),
        (
            line(study("NCT09999912", designModule={"enrollmentInfo": {"count": True}})),
            "enrollmentInfo.count is bool",
        ),
        (line(study("NCT09999913", designModule={"phases": "PHASE1"})), "phases is str"),
        (line(study("NCT09999914", last_update="14/03/2025")), "expected yyyy"),
    ],
)
def test_bad_records_are_named_precisely(raw: bytes, message: str):
    with pytest.raises(RecordProblem, match=message):
        check_study_line(raw)


def test_unknown_keys_are_tolerated():
    record = study("NCT09999915")
    record["someNewModule"] = {"x": 1}
    assert check_study_line(line(record)).key == "NCT09999915"
