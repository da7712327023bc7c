"""Compare two built warehouses table by table, row for row (a developer check for refactors).

    python -m tools.compare_warehouses BEFORE.duckdb AFTER.duckdb [--schemas staging marts ...]

Every table of the given schemas is compared as a multiset of rows over the columns both sides
have. What differs by construction between two builds of the same input is left out: columns
of a timestamp type (retrieval, load and check times), refresh ids (Prefect's run names) and, inside text, run ids
(``20260101T120000Z-abc123``), refresh and version ids and ISO timestamps. Exits 1 when any
table differs or exists on one side only.
"""

from __future__ import annotations

import argparse
import sys

import duckdb

DEFAULT_SCHEMAS = ("staging", "intermediate", "marts")
# run ids, version ids (20260101T120000123456Z-1a2b3c4d), refresh ids and ISO timestamps
VOLATILE_TEXT = (r"\d{8}T\d{6}\d*Z(-[0-9a-f]{6,8})?|\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}"
                 r"(\.\d+)?([+-]\d{2}(:?\d{2})?|Z)?|closure-\S+|failed-\S+|sheets-\S+")
TIME_TYPES = ("TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIME")
VOLATILE_COLUMNS = {"refresh_id"}  # the Prefect flow run's name (random words)


def tables(con: duckdb.DuckDBPyConnection, db: str, schemas: tuple[str, ...]) -> set[str]:
    return {f"{schema}.{name}" for schema, name in con.execute(
        "select table_schema, table_name from information_schema.tables "
        "where table_catalog = ? and list_contains(?, table_schema)",
        [db, list(schemas)]).fetchall()}


def columns(con: duckdb.DuckDBPyConnection, db: str, table: str) -> dict[str, str]:
    schema, name = table.split(".")
    return dict(con.execute(
        "select column_name, data_type from information_schema.columns where table_catalog = ? "
        "and table_schema = ? and table_name = ? order by ordinal_position",
        [db, schema, name]).fetchall())


def normalised_select(db: str, table: str, kept: list[str]) -> str:
    pattern = VOLATILE_TEXT.replace("'", "''")
    exprs = [f"regexp_replace(cast(\"{c}\" as varchar), '{pattern}', '<volatile>', 'g') "
             f"as \"{c}\"" for c in kept]
    schema, name = table.split(".")
    return f'select {", ".join(exprs) or "1"} from {db}."{schema}"."{name}"'


def compare(before: str, after: str, schemas: tuple[str, ...]) -> list[str]:
    con = duckdb.connect()
    con.execute(f"attach '{before}' as before (read_only)")
    con.execute(f"attach '{after}' as after (read_only)")
    old, new = tables(con, "before", schemas), tables(con, "after", schemas)
    problems = [f"{t}: only in the before warehouse" for t in sorted(old - new)]
    problems += [f"{t}: only in the after warehouse" for t in sorted(new - old)]
    for table in sorted(old & new):
        old_columns, new_columns = columns(con, "before", table), columns(con, "after", table)
        if list(old_columns) != list(new_columns):
            problems.append(f"{table}: columns differ ({list(old_columns)} vs {list(new_columns)})")
        kept = [c for c, kind in old_columns.items()
                if c in new_columns and not kind.startswith(TIME_TYPES)
                and c not in VOLATILE_COLUMNS]
        a, b = normalised_select("before", table, kept), normalised_select("after", table, kept)
        (only_before,) = con.execute(f"select count(*) from ({a} except all {b})").fetchone()
        (only_after,) = con.execute(f"select count(*) from ({b} except all {a})").fetchone()
        (rows,) = con.execute(f"select count(*) from ({a})").fetchone()
        status = "identical" if not only_before and not only_after else "DIFFERENT"
        print(f"{status:9} {table}: {rows} rows; {only_before} only before, {only_after} only "
              f"after ({len(kept)} of {len(old_columns)} columns compared)")
        if status != "identical":
            problems.append(f"{table}: {only_before} row(s) only before, {only_after} only after")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.compare_warehouses")
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--schemas", nargs="+", default=list(DEFAULT_SCHEMAS))
    args = parser.parse_args(argv)
    problems = compare(args.before, args.after, tuple(args.schemas))
    for problem in problems:
        print("DIFFERENT:", problem)
    print("every compared table is identical" if not problems else
          f"{len(problems)} difference(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
