"""Invariants that hold for every published mart, found by column name (so a new mart or column
is covered without touching this test):

- every ``*affected*`` count has its ``*at_risk*`` count in the same mart (``x_affected[_low|
  _high|_count]`` -> ``x_at_risk[_count]``), and 0 <= affected <= at risk where both are given;
- every ``*_low`` / ``*_high`` pair of counts or bounds (affected, ci, pi) has low <= high;
- every proportion, and every confidence / prediction bound of a proportion, is within [0, 1],
  with low <= estimate <= high (in a mart with a ``measure`` column: the rows whose measure is a
  proportion; a mean and its interval can be anything).

The session warehouse is checked here; the live run's warehouse (every real results record) in
test_live_corpus.py, with the same function.
"""

from __future__ import annotations

import re

import duckdb
import pytest

pytestmark = pytest.mark.integration

PROPORTION = re.compile(r"^(proportion|raw_proportion|estimate(_dl)?|value)$")
BOUND = re.compile(r"^(ci|pi)_(low|high)(_dl)?$")


def marts(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    return dict(con.execute(
        "select table_name, list(column_name order by ordinal_position) "
        "from information_schema.columns where table_schema = 'marts' group by 1").fetchall())


def at_risk_partner(column: str, columns: list[str]) -> str | None:
    prefix = column[:column.index("affected")]
    for candidate in (f"{prefix}at_risk", f"{prefix}at_risk_count"):
        if candidate in columns:
            return candidate
    return None


def checks_of(columns: list[str], found: list[str], table: str) -> list[tuple[str, str, bool]]:
    """(condition a broken row meets, the rule, whether only proportion rows are held to it)."""
    checks: list[tuple[str, str, bool]] = []
    for column in (c for c in columns if "affected" in c):
        partner = at_risk_partner(column, columns)
        if partner is None:
            found.append(f"{table}.{column} has no at-risk column beside it")
            continue
        checks.append((f"{column} < 0 or {column} > {partner}", f"{column} within 0..{partner}",
                       False))
    for column in (c for c in columns if re.search(r"_low(_dl)?$", c)):
        high = column.replace("_low", "_high")
        if high in columns and (column.startswith(("ci", "pi")) or "affected" in column):
            checks.append((f"{column} > {high}", f"{column} <= {high}", False))
    estimates = [c for c in columns if PROPORTION.match(c)
                 and (c != "value" or "measure" in columns)]
    bounds = [c for c in columns if BOUND.match(c)]
    for column in estimates + bounds:
        checks.append((f"{column} < 0 or {column} > 1", f"{column} within [0, 1]", True))
    for bound in bounds:
        _, side, dl = BOUND.match(bound).groups()
        estimate = next((e for e in (f"estimate{dl or ''}", "proportion", "value")
                         if e in estimates), None)
        if estimate:
            op = "<=" if side == "low" else ">="
            checks.append((f"not ({bound} {op} {estimate})", f"{bound} {op} {estimate}", True))
    return checks


def violations(path) -> list[str]:
    """Every broken invariant of every mart of the warehouse at ``path``, as text."""
    found: list[str] = []
    con = duckdb.connect(str(path), read_only=True)
    try:
        for table, columns in sorted(marts(con).items()):
            for condition, rule, proportion_rows in checks_of(columns, found, table):
                where = f"where ({condition})"
                if proportion_rows and "measure" in columns:
                    where += " and measure = 'proportion'"
                (n,) = con.execute(f"select count(*) from marts.{table} {where}").fetchone()
                if n:
                    found.append(f"{table}: {n} row(s) break {rule}")
    finally:
        con.close()
    return found


def test_every_published_row_keeps_the_invariants(built_warehouse):
    assert violations(built_warehouse.warehouse) == []


def test_the_invariants_are_checked_where_they_apply(built_warehouse):
    """The name rules find the columns they are meant for (a renamed column fails here)."""
    con = duckdb.connect(str(built_warehouse.warehouse), read_only=True)
    try:
        tables = marts(con)
    finally:
        con.close()
    affected = {(t, c) for t, cols in tables.items() for c in cols if "affected" in c}
    assert {("safety_signals", "participants_affected"), ("fct_adverse_events", "affected_low"),
            ("fct_adverse_event_terms", "affected_count")} <= affected
    assert all(at_risk_partner(c, tables[t]) for t, c in affected)
    assert {"ci_low", "pi_high", "estimate"} <= set(tables["therapy_outcome_comparison"])


def test_broken_rows_are_found(tmp_path):
    """The checker itself: each kind of broken row is reported, a good row is not."""
    path = tmp_path / "w.duckdb"
    con = duckdb.connect(str(path))
    con.execute("""
        create schema marts;
        create table marts.harms as select * from (values
            (3, 2, 3, 5), (9, 2, 12, 10), (-1, null, 1, 4)) t(affected_low, affected_high,
                                                             affected_count, at_risk_count);
        create table marts.rates as select * from (values
            (0.5, 0.4, 0.6, 1, 2), (1.2, 0.9, 1.3, 3, 2)) t(proportion, ci_low, ci_high,
                                                          participants_affected, participants_at_risk);
        create table marts.effects as select * from (values
            ('mean', 7.5, 7.1, 7.9), ('proportion', 0.3, 0.35, 0.5)) t(measure, estimate, ci_low,
                                                                        ci_high);
        create table marts.orphan as select 1 as other_affected;
    """)
    con.close()
    found = violations(path)
    assert "marts.orphan" not in " ".join(found) and "orphan.other_affected has no at-risk " \
        "column beside it" in found
    assert "harms: 2 row(s) break affected_low <= affected_high" in found
    assert "harms: 1 row(s) break affected_count within 0..at_risk_count" in found
    assert "harms: 1 row(s) break affected_low within 0..at_risk_count" in found
    assert "rates: 1 row(s) break proportion within [0, 1]" in found
    assert "rates: 1 row(s) break participants_affected within 0..participants_at_risk" in found
    assert "effects: 1 row(s) break ci_low <= estimate" in found  # the proportion row only
    assert not any("effects" in f and "[0, 1]" in f for f in found)  # a mean is not held to it
