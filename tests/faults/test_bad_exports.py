"""Bad ICTRP exports: each one gets a clear outcome naming the file (and the line), and nothing
is changed silently — not the text (encodings), not a row (extra cells, duplicate ids)."""

from __future__ import annotations

import duckdb
import orjson
import pytest

from flows.errors import SourceError
from flows.landing import LandingRun, utc_now
from flows.sources.ictrp import parse as ictrp
from tests.helpers import load_landed

HEADER = "TrialID,Public title,Source Register,Countries\n"


def test_a_latin1_csv_is_read_as_latin1_not_mangled(tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes((HEADER + "IRCT2099020200002N1,Café à Zürich,IRCT,Iran\n").encode("latin-1"))
    export = ictrp.read_export(path)
    assert export.encoding == "cp1252"
    assert export.records[0]["Public_title"] == "Café à Zürich"
    assert "\ufffd" not in orjson.dumps(export.records).decode()


def test_a_utf8_csv_stays_utf8(tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes((HEADER + "IRCT2099020200002N1,Café,IRCT,Iran\n").encode("utf-8-sig"))
    export = ictrp.read_export(path)
    assert (export.encoding, export.records[0]["Public_title"]) == ("utf-8-sig", "Café")


def test_a_row_with_extra_cells_is_marked_not_truncated():
    content = (HEADER + "IRCT1,ok,IRCT,Iran\nIRCT2,bad,IRCT,Iran,surplus,cells\n").encode()
    good, bad = ictrp.parse_csv_export(content, "x.csv")
    assert "_parse_problem" not in good
    assert bad["_parse_problem"] == ("x.csv line 3: 2 more cell(s) than the header; the row is "
                                     "not trusted")


def test_a_trailing_comma_is_not_an_extra_cell():
    (record,) = ictrp.parse_csv_export((HEADER + "IRCT1,ok,IRCT,Iran,\n").encode(), "t.csv")
    assert "_parse_problem" not in record and record["Countries"] == "Iran"


def test_a_field_over_128_kib_is_read_and_a_monstrous_one_is_refused_by_line():
    long_text = "x" * 200_000
    (record,) = ictrp.parse_csv_export((HEADER + f"IRCT1,{long_text},IRCT,Iran\n").encode(), "a.csv")
    assert len(record["Public_title"]) == 200_000
    huge = (HEADER + "IRCT1,ok,IRCT,Iran\n" + f"IRCT2,{'y' * 2_000_000},IRCT,Iran\n").encode()
    with pytest.raises(SourceError, match=r"b.csv line \d+: unreadable CSV \(field larger"):
        list(ictrp.parse_csv_export(huge, "b.csv"))


def test_an_entity_declaration_after_the_first_64_kib_is_refused():
    padding = b"<!-- " + b"p" * 70_000 + b" -->"
    document = (b'<?xml version="1.0"?>' + padding
                + b'<!DOCTYPE x [<!ENTITY e "boom">]><Trials_downloaded_from_ICTRP/>')
    with pytest.raises(SourceError, match="declares XML entities"):
        list(ictrp.parse_xml_export(document, "late.xml"))


def land(tmp_path, records):
    run = LandingRun(tmp_path / "raw", "ictrp", "20261201T000000Z-aaaa")
    run.start({"run_id": run.run_id, "source": "ictrp"})
    run.land_records([orjson.dumps(r) for r in records], page=1, query={"file": "e.csv"},
                     fetched_at=utc_now())
    run.complete({})
    return run


def test_duplicate_trial_ids_differing_are_rejected_identical_are_kept_once(tmp_path):
    first = {"TrialID": "IRCT1", "Public_title": "first"}
    run = land(tmp_path, [first, {"TrialID": "IRCT1", "Public_title": "second"}, first,
                          {"TrialID": "IRCT2", "_parse_problem": "e.csv line 5: 1 more cell(s)"}])
    con = duckdb.connect()
    counts = load_landed(con, run, mode="files")
    assert (counts.records_loaded, counts.records_rejected) == (1, 2)
    assert con.execute("select payload->>'Public_title' from raw.ictrp_trials").fetchall() == [
        ("first",)]
    reasons = dict(con.execute(
        "select source_line, reason from raw.rejected_records order by source_line").fetchall())
    assert reasons[2].startswith("duplicate TrialID IRCT1 with different content (first at "
                                 "ictrp/20261201T000000Z-aaaa/")
    assert reasons[4] == "e.csv line 5: 1 more cell(s)"


def test_a_cut_off_row_is_marked_not_loaded_short():
    content = (HEADER + "IRCT1,full row,IRCT,Iran\nIRCT2,cut").encode()
    full, cut = ictrp.parse_csv_export(content, "cut.csv")
    assert "_parse_problem" not in full
    assert cut["_parse_problem"] == ("cut.csv line 3: 2 fewer cell(s) than the header (cut "
                                     "off?); the row is not trusted")


def test_a_later_export_updates_a_trial_of_an_earlier_one_in_the_same_run(tmp_path):
    run = LandingRun(tmp_path / "raw", "ictrp", "20261201T000000Z-bbbb")
    run.start({"run_id": run.run_id, "source": "ictrp"})
    for page, status in enumerate(("Recruiting", "Completed"), start=1):
        run.land_records([orjson.dumps({"TrialID": "IRCT1", "Recruitment_Status": status})],
                         page=page, query={"file": f"export-{page}.csv"}, fetched_at=utc_now())
    run.complete({})
    con = duckdb.connect()
    counts = load_landed(con, run, mode="files")
    assert (counts.records_loaded, counts.records_rejected) == (2, 0)
