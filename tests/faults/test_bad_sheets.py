"""Outcome sheets as curators really change them, with three real refreshes on a private copy.

1. A new version beside files that are broken in every way the probe found (a corrupt
   workbook, a row with extra cells, an ``inf`` value) and a Windows-1252 sheet: each broken
   sheet is rejected alone, naming the file and the row; the good ones load; the run publishes.
2. The main sheet reverted to its first version and a sheet deleted: the reverted content is in
   effect again and the deleted sheet's rows leave the warehouse, recorded as a change.
3. The main sheet cut to four rows: the run still publishes, with those rows.
"""

from __future__ import annotations

import csv
import io

import pytest

from flows.refresh import refresh_warehouse
from tests.helpers import query

pytestmark = pytest.mark.integration

MAIN = "published_outcomes.csv"
NOTE_V2 = "v2 probe: population note edited"
HOSTILE = "x'); drop table marts.dim_trials; -- {{ run_query('drop schema marts') }} {% if 1 %}"


def write_sheet(path, header, rows, encoding="utf-8", extra=""):
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    text = out.getvalue()
    if extra:  # append surplus cells to the first data row
        lines = text.split("\n")
        lines[1] += extra
        text = "\n".join(lines)
    path.write_bytes(text.encode(encoding))


def staged(settings, where="true"):
    return query(settings.warehouse_path,
                 "select sheet_file, count(*) from staging.stg_outcomes__published_outcomes "
                 f"where {where} group by sheet_file order by sheet_file")


def details(summary):
    return {d["sheet"]: d for d in summary["sources"]["outcomes"]["details"]}


def test_sheets_rejected_alone_reverted_withdrawn_and_cut(published_copy):
    """Why over 30 s: three refreshes, each a whole dbt build, one per curator change."""
    settings = published_copy
    folder = settings.outcomes_path
    original = (folder / MAIN).read_bytes()
    with (folder / MAIN).open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header, rows = reader.fieldnames, list(reader)
    assert len(rows) > 20

    # -- 1: a new version, a Windows-1252 sheet, and three broken ones -------------------------
    head, tail = [dict(r) for r in rows[:-10]], [dict(r) for r in rows[-10:]]
    head[0]["population_note"] = NOTE_V2
    tail[0]["population_note"] = "Café probe (Windows-1252)"
    tail[1]["population_note"] = HOSTILE
    write_sheet(folder / MAIN, header, head)
    write_sheet(folder / "tail.csv", header, tail, encoding="cp1252")
    write_sheet(folder / "extra_cells.csv", header, rows[:3], extra=",surplus,cells")
    write_sheet(folder / "inf.csv", header, [{**rows[0], "value": "inf"}])
    (folder / "corrupt.xlsx").write_bytes(b"PK\x03\x04 this is not a workbook")

    first = refresh_warehouse(source="snapshot", stages=["outcomes"])
    sheets = details(first)
    assert sheets[MAIN]["status"] == sheets["tail.csv"]["status"] == "accepted"
    assert "read as cp1252" in str(query(
        settings.warehouse_path, "select problems from raw.outcome_sheet_versions "
        "where sheet_file = 'tail.csv'"))
    assert {name: sheets[name]["status"] for name in ("extra_cells.csv", "inf.csv",
                                                       "corrupt.xlsx")} == dict.fromkeys(
        ("extra_cells.csv", "inf.csv", "corrupt.xlsx"), "rejected")
    assert "extra_cells.csv row 2 column (row): 2 more cell(s) than the header" in \
        sheets["extra_cells.csv"]["message"]
    assert "inf.csv row 2 column value: Value error, must be a finite number" in \
        sheets["inf.csv"]["message"]
    assert "corrupt.xlsx row 0 column (file): cannot be read as a sheet (BadZipFile" in \
        sheets["corrupt.xlsx"]["message"]
    assert "outcomes" in first["stale_sources"]  # rejected sheets are reported, not hidden
    assert staged(settings) == [(MAIN, len(rows) - 10), ("tail.csv", 10)]
    assert staged(settings, f"population_note = '{NOTE_V2}'") == [(MAIN, 1)]
    assert staged(settings, "population_note = 'Café probe (Windows-1252)'") == [("tail.csv", 1)]
    assert query(settings.warehouse_path,  # data never reaches SQL or Jinja: kept verbatim
                 "select count(*) from staging.stg_outcomes__published_outcomes "
                 "where population_note = ?", [HOSTILE]) == [(1,)]

    # -- 2: revert the main sheet, delete one ---------------------------------------------------
    (folder / MAIN).write_bytes(original)
    for name in ("tail.csv", "extra_cells.csv", "inf.csv", "corrupt.xlsx"):
        (folder / name).unlink()
    second = refresh_warehouse(source="snapshot", stages=["outcomes"])
    sheets = details(second)
    assert sheets[MAIN]["status"] == "accepted" and "reverted" in sheets[MAIN]["message"]
    assert sheets["tail.csv"]["status"] == "withdrawn"
    assert "outcomes" not in second["stale_sources"]
    assert staged(settings) == [(MAIN, len(rows))]
    assert staged(settings, f"population_note = '{NOTE_V2}'") == []
    assert query(settings.warehouse_path,
                 "select change_type, entity_id from marts.changes_since_last_run "
                 "where entity_type = 'outcome_sheet'") == [("withdrawn_outcome_sheet",
                                                              "tail.csv")]

    # -- 3: the main sheet cut to four rows ---------------------------------------------------
    write_sheet(folder / MAIN, header, rows[:4])
    third = refresh_warehouse(source="snapshot", stages=["outcomes"])
    assert details(third)[MAIN]["status"] == "accepted"
    assert staged(settings) == [(MAIN, 4)]
    assert query(settings.warehouse_path, "select count(*) from marts.fct_outcomes "
                 "where source = 'publication'") == [(4,)]


def test_a_rejected_sheet_left_in_the_folder_is_not_news_every_run(published_copy, monkeypatch):
    """Three refreshes (> 30 s: the first rebuilds, 2-3 min; the others find nothing new): a
    rejected sheet left as it is is not read again, forces no rebuild and no new version, and
    its alert is repeated at most once a day (the record of the last alert is moved back 25
    hours to stand for the next day)."""
    import json
    from datetime import timedelta

    from flows.report import alerts_sent_path, utc_now
    from flows.settings import get_settings, reset_settings_cache
    from tests.integration.test_live_corpus import serve_hook

    settings = published_copy
    with (settings.outcomes_path / MAIN).open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header, rows = reader.fieldnames, list(reader)
    write_sheet(settings.outcomes_path / "broken.csv", header,
                [{**rows[0], "value": "inf", "study_id": "probe-stale"}])
    with serve_hook() as hook:
        monkeypatch.setenv("BETACELL_ALERT_WEBHOOK_URL", hook.url_for("/hook"))
        reset_settings_cache()
        settings = get_settings()
        first = refresh_warehouse(source="snapshot", stages=["outcomes"])
        assert details(first)["broken.csv"]["status"] == "rejected"
        assert first["published_version"] and "outcomes" in first["stale_sources"]
        assert len(hook.log) == 1 and "broken.csv" in hook.log[0][0].get_data(as_text=True)

        def never(*args, **kwargs):
            raise AssertionError("a sheet rejected before was read again")

        with monkeypatch.context() as patch:
            patch.setattr("flows.sources.outcomes.client.read_sheet", never)
            second = refresh_warehouse(source="snapshot", stages=["outcomes"])
        assert details(second)["broken.csv"]["status"] == "still_rejected"
        assert second["nothing_changed"] and not second["published_version"]
        assert "outcomes" in second["stale_sources"]
        assert len(hook.log) == 1, "the same rejected sheet was alerted twice in one day"

        path = alerts_sent_path(settings)
        sent = json.loads(path.read_text())
        day_before = (utc_now() - timedelta(hours=25)).isoformat()
        path.write_text(json.dumps({key: day_before for key in sent}))
        third = refresh_warehouse(source="snapshot", stages=["outcomes"])
        assert third["nothing_changed"]
        assert len(hook.log) == 2 and "broken.csv" in hook.log[1][0].get_data(as_text=True)
