"""The README's analyst questions run against the snapshot warehouse and answer sensibly."""

from __future__ import annotations

import re

import duckdb
import pytest

from flows.settings import REPO_DIR

pytestmark = pytest.mark.integration


def readme_queries() -> list[str]:
    text = (REPO_DIR / "README.md").read_text()
    section = text.split("## Analyst questions", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sql\n(.*?)```", section, flags=re.S)


def test_there_are_six_to_eight_questions():
    assert 6 <= len(readme_queries()) <= 8


@pytest.mark.parametrize("number", range(7))
def test_readme_question_runs(snapshot_warehouse, number):
    queries = readme_queries()
    if number >= len(queries):
        pytest.skip("fewer questions")
    con = duckdb.connect(str(snapshot_warehouse), read_only=True)
    try:
        rows = con.sql(queries[number]).fetchall()
    finally:
        con.close()
    assert rows, f"question {number + 1} returned nothing on the snapshot"
    if number == 0:  # estimates lie inside their intervals, k and N are positive
        for _, _, _, k, n, estimate, low, high, single in rows:
            assert k >= 1 and n >= 1 and low <= estimate <= high
            assert single == (k == 1)
    if number == 4:  # every traced row has a source link and a count
        assert all(r[6] and r[4] for r in rows)
