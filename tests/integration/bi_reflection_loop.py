"""A separate BI process doing what Superset does through SQLAlchemy, in a loop, until a stop file
exists: list schemas and tables of the published warehouse, reflect every mart (columns, types,
primary key, foreign keys, indexes, comment, ``Table(autoload_with=...)``) and run a query,
always read-only, reconnecting every round. Writes a JSON
summary: rounds done, errors, and the published version ids seen.

With a go file, it reflects once (the version before the refresh) and then waits for that file
(the refresh is still building: the published file does not change), then reflects round after
round (the publish is coming): the rounds the switch can break are back to back, and the build
before it is not slowed by a reader spinning all along. The summary is rewritten after every
round, so the test can wait for rounds rather than for seconds (a loaded machine reflects
slowly)."""

from __future__ import annotations

import json
import os
import sys
import time

import sqlalchemy


def one_round(url: str) -> str:
    engine = sqlalchemy.create_engine(url, connect_args={"read_only": True})
    try:
        with engine.connect() as connection:
            inspector = sqlalchemy.inspect(connection)
            schema = next(s for s in inspector.get_schema_names() if s.endswith(".marts"))
            marts = inspector.get_table_names(schema=schema)
            if len(marts) < 10:
                raise AssertionError(f"only {marts} in {schema}")
            metadata = sqlalchemy.MetaData()
            for mart in marts:
                columns = inspector.get_columns(mart, schema=schema)
                if not columns or any(isinstance(c["type"], sqlalchemy.types.NullType)
                                      for c in columns):
                    raise AssertionError(f"{mart}: {[(c['name'], c['type']) for c in columns]}")
                inspector.get_pk_constraint(mart, schema=schema)
                inspector.get_foreign_keys(mart, schema=schema)
                inspector.get_indexes(mart, schema=schema)
                inspector.get_table_comment(mart, schema=schema)
                sqlalchemy.Table(mart, metadata, autoload_with=connection, schema=schema)
            version, counts = connection.execute(sqlalchemy.text(
                "select version_id, mart_row_counts from meta.published_version")).one()
            trials = metadata.tables[f"{schema}.dim_trials"]
            n = connection.execute(sqlalchemy.select(sqlalchemy.func.count())
                                   .select_from(trials)).scalar_one()
        expected = (counts if isinstance(counts, dict) else json.loads(counts))["dim_trials"]
        if n != expected:
            raise AssertionError(f"{version}: dim_trials has {n}, the stamp says {expected}")
        return version
    finally:
        engine.dispose()  # a BI tool reconnecting: the next round opens the file anew


def main(url: str, out: str, stop_file: str, go_file: str | None = None,
         max_seconds: float = 900) -> None:
    deadline = time.monotonic() + max_seconds
    rounds, errors, versions, rounds_after_go = 0, [], [], 0
    while time.monotonic() < deadline and not os.path.exists(stop_file):
        going = go_file is None or os.path.exists(go_file)
        if rounds and not going:
            time.sleep(0.1)
            continue
        try:
            version = one_round(url)
            rounds += 1
            rounds_after_go += going
            if not versions or versions[-1] != version:
                versions.append(version)
        except Exception as exc:  # noqa: BLE001 - every failure is the test's business
            errors.append(f"{type(exc).__name__}: {str(exc)[:300]}")
        write_summary(out, rounds, rounds_after_go, errors, versions)  # progress, round by round
        time.sleep(0.05)
    write_summary(out, rounds, rounds_after_go, errors, versions)


def write_summary(out: str, rounds: int, rounds_after_go: int, errors: list[str],
                  versions: list[str]) -> None:
    with open(f"{out}.part", "w") as handle:
        json.dump({"rounds": rounds, "rounds_after_go": rounds_after_go, "errors": errors[:20],
                   "error_count": len(errors), "versions": versions}, handle)
    os.replace(f"{out}.part", out)


if __name__ == "__main__":
    main(*sys.argv[1:5])
