"""BI access and types fit for every tool.

What Superset (and any SQLAlchemy BI tool) does with the published warehouse: list schemas and
tables, reflect every mart's columns, types, primary key and comment, autoload the tables and run
a query — read-only, through ``duckdb+betacell://`` (flows/bi_dialect.py), also while a refresh
runs and publishes a new version. Every published Parquet file has the types of its mart's
contract (integer counts stay integers), and every mart column is described."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute  # noqa: F401 - pa.compute
import pyarrow.parquet as pq
import pytest
import sqlalchemy
from sqlalchemy import types as sqltypes

from tests.helpers import mart_contracts, query

pytestmark = pytest.mark.integration

# contract data_type -> the SQLAlchemy type a BI tool must see
EXPECTED_TYPES = {
    "VARCHAR": sqltypes.String, "INTEGER": sqltypes.Integer, "BIGINT": sqltypes.BigInteger,
    "HUGEINT": sqltypes.Numeric, "DOUBLE": sqltypes.Double, "BOOLEAN": sqltypes.Boolean,
    "DATE": sqltypes.Date, "TIMESTAMP WITH TIME ZONE": sqltypes.TIMESTAMP,
    "VARCHAR[]": sqltypes.ARRAY, "INTEGER[]": sqltypes.ARRAY, "DOUBLE[]": sqltypes.ARRAY,
}
ITEM_TYPES = {"VARCHAR[]": sqltypes.String, "INTEGER[]": sqltypes.Integer,
              "DOUBLE[]": sqltypes.Double}


def bi_engine(path: Path) -> sqlalchemy.Engine:
    return sqlalchemy.create_engine(f"duckdb+betacell:///{path}",
                                    connect_args={"read_only": True})


def test_superset_reflects_every_mart_as_its_contract_says(built_warehouse):
    contracts = mart_contracts()
    # what DuckDB itself says, read before the engine opens the file (one process cannot open
    # a file with two configurations at once)
    declared_keys = dict(query(built_warehouse.warehouse, """
        select table_name, constraint_column_names from duckdb_constraints()
        where schema_name = 'marts' and constraint_type = 'PRIMARY KEY'"""))
    trial_count = query(built_warehouse.warehouse, "select count(*) from marts.dim_trials")[0][0]
    engine = bi_engine(built_warehouse.warehouse)
    try:
        inspector = sqlalchemy.inspect(engine)
        schemas = inspector.get_schema_names()
        assert {"warehouse.marts", "warehouse.staging", "warehouse.intermediate"} <= set(schemas)
        schema = "warehouse.marts"  # Superset passes back what it listed
        marts = inspector.get_table_names(schema=schema)
        assert len(declared_keys) >= 13 and set(declared_keys) <= set(marts)
        parquet = sorted(p.stem for p in built_warehouse.marts.glob("*.parquet"))
        assert sorted(marts) == parquet
        assert set(contracts) <= set(marts)
        metadata = sqlalchemy.MetaData()
        for mart in marts:
            columns = inspector.get_columns(mart, schema=schema)
            assert columns, mart
            if mart in contracts:
                assert [c["name"] for c in columns] == [name for name, _ in contracts[mart]]
                for column, (_, declared) in zip(columns, contracts[mart], strict=True):
                    assert isinstance(column["type"], EXPECTED_TYPES[declared]), \
                        (mart, column["name"], declared, column["type"])
                    if declared == "TIMESTAMP WITH TIME ZONE":
                        assert column["type"].timezone
                    if declared in ITEM_TYPES:
                        assert isinstance(column["type"].item_type, ITEM_TYPES[declared])
                    assert column["comment"], (mart, column["name"], "no description")
            assert not any(isinstance(c["type"], sqltypes.NullType) for c in columns), mart
            primary_key = inspector.get_pk_constraint(mart, schema=schema)
            assert primary_key["constrained_columns"] == list(declared_keys.get(mart, []))
            assert inspector.get_table_comment(mart, schema=schema)["text"], mart
            inspector.get_foreign_keys(mart, schema=schema)
            inspector.get_indexes(mart, schema=schema)
            table = sqlalchemy.Table(mart, metadata, autoload_with=engine, schema=schema)
            assert [c.name for c in table.primary_key] == primary_key["constrained_columns"]
        trials = metadata.tables[f"{schema}.dim_trials"]
        assert [c.name for c in trials.primary_key] == ["trial_id"]
        with engine.connect() as connection:
            by_class = connection.execute(
                sqlalchemy.select(trials.c.therapy_class, sqlalchemy.func.count())
                .group_by(trials.c.therapy_class)).fetchall()
            first = connection.execute(sqlalchemy.select(trials).limit(5)).fetchall()
        assert sum(n for _, n in by_class) == trial_count
        assert len(first) == 5 and all(isinstance(r.countries, list) for r in first)
    finally:
        engine.dispose()


def test_superset_style_reflection_keeps_working_while_a_refresh_publishes(sheet_edit_rebuild):
    """A BI process reflected the published warehouse while a refresh rebuilt (one added sheet
    row: the whole dbt build, gates and publish; the session's ``sheet_edit_rebuild``) and
    switched versions; from just before the publish it reflected round after round, until it
    had read the new version. No round failed."""
    summary, result = sheet_edit_rebuild.result["summary"], sheet_edit_rebuild.result["bi"]
    before = sheet_edit_rebuild.result["version_before"]
    assert summary["published_version"] and summary["published_version"] != before
    assert result["error_count"] == 0, result["errors"]
    assert result["rounds"] >= 3 and result["rounds_after_go"] >= 2
    assert result["versions"][0] == before and result["versions"][-1] == summary[
        "published_version"]  # it read the old version, then the new one


# contract data_type -> the Parquet (Arrow) type every tool reading data/marts must see
PARQUET_TYPES = {
    "VARCHAR": pa.string(), "INTEGER": pa.int32(), "BIGINT": pa.int64(),
    "DOUBLE": pa.float64(), "BOOLEAN": pa.bool_(), "DATE": pa.date32(),
    "TIMESTAMP WITH TIME ZONE": pa.timestamp("us", tz="UTC"), "VARCHAR[]": pa.list_(pa.string()),
    "INTEGER[]": pa.list_(pa.int32()), "DOUBLE[]": pa.list_(pa.float64()),
}


def test_every_published_parquet_file_matches_its_mart_contract(built_warehouse):
    contracts = mart_contracts()
    files = sorted(built_warehouse.marts.glob("*.parquet"))
    assert sorted(p.stem for p in files) == sorted(contracts), "every mart has a contract"
    for path in files:
        schema = pq.read_schema(path)
        declared = contracts[path.stem]
        assert schema.names == [name for name, _ in declared], path.name
        for field, (_, data_type) in zip(schema, declared, strict=True):
            # HUGEINT (a sum of integers) has no Parquet type: it would arrive as DOUBLE
            assert data_type in PARQUET_TYPES, (path.stem, field.name, data_type)
            assert field.type.equals(PARQUET_TYPES[data_type]), \
                (path.stem, field.name, data_type, field.type)


def test_every_mart_and_column_is_described_and_counts_are_integers(built_warehouse):
    undescribed = query(built_warehouse.warehouse, """
        select table_name, column_name from duckdb_columns()
        where schema_name = 'marts' and coalesce(trim(comment), '') = ''""")
    assert undescribed == []
    assert query(built_warehouse.warehouse, """
        select table_name from duckdb_tables()
        where schema_name = 'marts' and coalesce(trim(comment), '') = ''""") == []
    wide = query(built_warehouse.warehouse, """
        select table_name, column_name, data_type from duckdb_columns()
        where schema_name = 'marts' and (data_type like '%INT128%' or data_type in ('HUGEINT',
              'UHUGEINT') or data_type like 'DECIMAL%')""")
    assert wide == []
    enrollment = pq.read_table(built_warehouse.marts / "trial_landscape.parquet",
                               columns=["enrollment_actual"]).column(0)
    assert pa.types.is_integer(enrollment.type) and pa.compute.sum(enrollment).as_py() > 0


def test_the_duckdb_command_is_installed_at_the_library_version_and_reads_read_only(
        built_warehouse):
    import duckdb

    cli = Path(sys.executable).with_name("duckdb")  # .venv/bin/duckdb (package duckdb-cli)
    assert cli.exists(), "duckdb-cli is a dependency: the README's first query uses it"
    version = subprocess.run([str(cli), "--version"], capture_output=True, text=True,
                             check=True).stdout
    assert version.split()[0] == f"v{duckdb.__version__}"
    out = subprocess.run(
        [str(cli), "-readonly", "-csv", "-noheader", str(built_warehouse.warehouse),
         "select count(*) from marts.dim_trials"], capture_output=True, text=True, check=True)
    assert int(out.stdout) == query(built_warehouse.warehouse,
                                    "select count(*) from marts.dim_trials")[0][0]
    refused = subprocess.run(
        [str(cli), "-readonly", str(built_warehouse.warehouse), "create table marts.x (a int)"],
        capture_output=True, text=True)
    assert refused.returncode != 0 and "read-only" in (refused.stdout + refused.stderr).lower()
