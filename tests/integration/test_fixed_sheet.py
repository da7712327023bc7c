"""A fixed sheet is fixed (issue #27, item 3): a curator's main sheet is rejected and a bad
second sheet is added; then the main sheet is restored and the second sheet deleted. The
published marts follow what is in effect and on disk at each step: the problems of versions no
longer on disk go, the warnings of the version in effect stay, a rejected sheet's rows are
rejected records numbered as in the spreadsheet (the header is row 1), and
``source_status.outcomes`` is stale exactly while a rejected sheet sits in the folder. Each step
of the sequence alone is news for the no-op check: tests/unit/test_sheet_set_changes.py."""

from __future__ import annotations

import pytest

from flows.refresh import refresh_warehouse
from tests.helpers import query

pytestmark = pytest.mark.integration

MAIN = "published_outcomes.csv"
SECOND = "second.csv"


def broken(text: str) -> str:
    """The sheet with an outcome misspelt on its first data row (spreadsheet row 2)."""
    lines = text.splitlines()
    lines[1] = lines[1].replace(",insulin_independence,", ",insulin_indepence,")
    return "\n".join(lines) + "\n"


def problems(settings) -> list[tuple]:
    return query(settings.warehouse_path, """
        select sheet_file, sheet_sha256, severity, sheet_row, sheet_column, problem
        from marts.outcome_sheet_problems order by all""")


def outcomes_stale(settings) -> bool:
    ((stale,),) = query(settings.warehouse_path,
                        "select is_stale from marts.source_status where source = 'outcomes'")
    return stale


def statuses(summary) -> dict[str, str]:
    return {d["sheet"]: d["status"] for d in summary["sources"]["outcomes"]["details"]}


def test_a_fixed_sheet_is_fixed(published_copy):
    """(> 30 s: two refreshes that rebuild, 2-3 min each under load, and one that finds
    nothing changed.)"""
    settings = published_copy
    folder = settings.outcomes_path
    original = (folder / MAIN).read_bytes()  # restored byte for byte: the version in effect
    shipped = original.decode("utf-8")
    in_effect = problems(settings)
    assert in_effect and {p[2] for p in in_effect} == {"warning"}
    assert not outcomes_stale(settings)

    (folder / MAIN).write_text(broken(shipped), encoding="utf-8")
    second_sheet = broken("\n".join(shipped.splitlines()[:4]))  # its own three rows
    (folder / SECOND).write_text(second_sheet, encoding="utf-8")
    first = refresh_warehouse(source="snapshot", stages=["outcomes"])
    assert statuses(first) == {MAIN: "rejected", SECOND: "rejected"}
    assert first["published_version"]
    now = problems(settings)
    assert [p for p in now if p[2] == "warning"] == in_effect, "the version in effect warns still"
    errors = {(p[0], p[3], p[4]) for p in now if p[2] == "error"}
    assert errors == {(MAIN, 2, "outcome"), (SECOND, 2, "outcome")}, now
    assert outcomes_stale(settings)
    rejected = query(settings.warehouse_path, """
        select source_file, count(*), count(*) filter (where source_line = 2
                                                        and reason like '%column outcome%')
        from marts.rejected_records where source = 'outcomes' group by all order by all""")
    rows = len(shipped.splitlines()) - 1
    assert rejected == [(MAIN, rows, 1), (SECOND, 3, 1)], "every row of a rejected sheet"

    (folder / MAIN).write_bytes(original)
    (folder / SECOND).unlink()
    second = refresh_warehouse(source="snapshot", stages=["outcomes"])
    assert statuses(second) == {MAIN: "accepted", SECOND: "withdrawn"}
    assert not second["nothing_changed"] and second["published_version"]
    assert problems(settings) == in_effect, "only what is in effect and on disk"
    assert not outcomes_stale(settings)

    third = refresh_warehouse(source="snapshot", stages=["outcomes"])
    assert third["nothing_changed"] and not third["published_version"]
    assert statuses(third) == {MAIN: "unchanged"}
