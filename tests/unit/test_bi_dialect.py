"""The BI dialect (flows/bi_dialect.py) reflects what SQLAlchemy's PostgreSQL-catalog queries
cannot on DuckDB 1.4: columns with their types, primary keys, unique and foreign keys, indexes,
views, and ``Table(autoload_with=...)``, on a read-only connection."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import sqlalchemy
from sqlalchemy import types as sqltypes

from flows.bi_dialect import BetacellDuckDBDialect, duckdb_type_to_sqlalchemy


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create schema marts")
    con.execute("""
        create table marts.trials (
            trial_id varchar primary key,
            title varchar not null,
            enrollment integer,
            participants bigint,
            estimate double,
            is_active boolean,
            start_date date,
            updated_at timestamptz,
            countries varchar[],
            payload json,
            amount decimal(10, 2)
        )""")
    con.execute("comment on table marts.trials is 'one row per trial'")
    con.execute("comment on column marts.trials.enrollment is 'participants enrolled'")
    con.execute("""
        create table marts.sites (
            site_id varchar unique,
            trial_id varchar references marts.trials (trial_id),
            country varchar,
            primary key (trial_id, country)
        )""")
    con.execute("create index sites_country_idx on marts.sites (country)")
    con.execute("create view marts.trial_countries as "
                "select trial_id, unnest(countries) as country from marts.trials")
    con.execute("insert into marts.trials values ('NCT00000001', 'a', 10, 12, 0.5, true, "
                "date '2020-01-01', timestamptz '2020-01-01 00:00:00+00', ['Italy', 'Spain'], "
                "'{\"a\": 1}', 1.25)")
    con.close()
    return path


@pytest.fixture
def engine(database: Path):
    engine = sqlalchemy.create_engine(f"duckdb+betacell:///{database}",
                                      connect_args={"read_only": True})
    yield engine
    engine.dispose()


def test_the_url_scheme_loads_the_dialect(engine):
    assert isinstance(engine.dialect, BetacellDuckDBDialect)


def test_columns_reflect_with_their_types_and_comments(engine):
    columns = {c["name"]: c for c in sqlalchemy.inspect(engine).get_columns("trials", "marts")}
    assert list(columns) == ["trial_id", "title", "enrollment", "participants", "estimate",
                             "is_active", "start_date", "updated_at", "countries", "payload",
                             "amount"]
    expected = {"trial_id": sqltypes.String, "enrollment": sqltypes.Integer,
                "participants": sqltypes.BigInteger, "estimate": sqltypes.Double,
                "is_active": sqltypes.Boolean, "start_date": sqltypes.Date,
                "updated_at": sqltypes.TIMESTAMP, "countries": sqltypes.ARRAY,
                "payload": sqltypes.JSON, "amount": sqltypes.Numeric}
    for name, kind in expected.items():
        assert isinstance(columns[name]["type"], kind), (name, columns[name]["type"])
    assert columns["updated_at"]["type"].timezone
    assert isinstance(columns["countries"]["type"].item_type, sqltypes.String)
    assert (columns["amount"]["type"].precision, columns["amount"]["type"].scale) == (10, 2)
    assert columns["trial_id"]["nullable"] is False and columns["title"]["nullable"] is False
    assert columns["enrollment"]["comment"] == "participants enrolled"


def test_keys_indexes_and_comments_reflect(engine):
    inspector = sqlalchemy.inspect(engine)
    assert inspector.get_pk_constraint("trials", "marts")["constrained_columns"] == ["trial_id"]
    assert inspector.get_pk_constraint("sites", "marts")["constrained_columns"] == \
        ["trial_id", "country"]
    assert [u["column_names"] for u in inspector.get_unique_constraints("sites", "marts")] == \
        [["site_id"]]
    (foreign,) = inspector.get_foreign_keys("sites", "marts")
    assert (foreign["constrained_columns"], foreign["referred_table"],
            foreign["referred_columns"]) == (["trial_id"], "trials", ["trial_id"])
    assert {i["name"]: i["column_names"] for i in inspector.get_indexes("sites", "marts")} == \
        {"sites_country_idx": ["country"]}
    assert inspector.get_table_comment("trials", "marts")["text"] == "one row per trial"
    assert inspector.get_check_constraints("trials", "marts") == []


def superset_keeps(value):
    """What Superset 6.1's ``Database.get_pk_constraint`` keeps of one value of the dialect's
    answer: it converts each value for JSON (numpy values, sets, Decimal, UUID, times, bytes)
    and stores None for any value its converter refuses (a plain list or str among them)."""
    if isinstance(value, set):
        return list(value)
    return None


def test_the_primary_key_survives_supersets_conversion(engine):
    inspector = sqlalchemy.inspect(engine)
    for table, key in (("trials", ["trial_id"]), ("sites", ["trial_id", "country"])):
        columns = inspector.get_pk_constraint(table, "warehouse.marts")["constrained_columns"]
        assert superset_keeps(columns) == key  # in key order, not a set's order
        assert list(columns) == key and columns == key
        assert (columns != key) is False
        assert columns[0] == key[0] and len(columns) == len(key)
    assert superset_keeps(inspector.get_pk_constraint("trial_countries", "marts")
                          ["constrained_columns"]) == []


def test_listing_views_and_the_qualified_schema_spelling(engine):
    inspector = sqlalchemy.inspect(engine)
    schemas = inspector.get_schema_names()
    assert "warehouse.marts" in schemas  # what Superset lists and passes back
    assert sorted(inspector.get_table_names("marts")) == ["sites", "trials"]
    assert inspector.get_view_names("marts") == ["trial_countries"]
    assert [c["name"] for c in inspector.get_columns("trial_countries", "warehouse.marts")] == \
        ["trial_id", "country"]
    assert inspector.get_pk_constraint("trials", "warehouse.marts")["constrained_columns"] == \
        ["trial_id"]
    assert inspector.has_table("trials", "marts") and not inspector.has_table("nope", "marts")
    with pytest.raises(sqlalchemy.exc.NoSuchTableError):
        inspector.get_columns("nope", "marts")


def test_autoloaded_table_selects_values_back(engine):
    metadata = sqlalchemy.MetaData()
    trials = sqlalchemy.Table("trials", metadata, autoload_with=engine, schema="marts")
    assert [c.name for c in trials.primary_key] == ["trial_id"]
    with engine.connect() as connection:
        row = connection.execute(sqlalchemy.select(
            trials.c.trial_id, trials.c.countries, trials.c.payload, trials.c.updated_at)
        ).one()
    assert row.trial_id == "NCT00000001"
    assert row.countries == ["Italy", "Spain"]
    assert row.payload == {"a": 1}
    assert row.updated_at.year == 2020 and row.updated_at.utcoffset() is not None
    everything = sqlalchemy.MetaData()
    everything.reflect(engine, schema="marts", views=True)
    assert sorted(everything.tables) == ["marts.sites", "marts.trial_countries", "marts.trials"]


def test_read_only_engine_cannot_write(engine):
    with engine.connect() as connection, pytest.raises(sqlalchemy.exc.DBAPIError):
        connection.execute(sqlalchemy.text("create table marts.x (a int)"))


def test_register_as_default_takes_over_plain_duckdb_urls(database):
    # in a separate interpreter: the registry is process-wide
    code = ("import sqlalchemy, sys; from flows import bi_dialect; "
            "bi_dialect.register_as_default(); "
            "e = sqlalchemy.create_engine('duckdb:///' + sys.argv[1], "
            "connect_args={'read_only': True}); "
            "print(type(e.dialect).__name__, "
            "sqlalchemy.inspect(e).get_pk_constraint('trials', 'marts')['constrained_columns'])")
    out = subprocess.run([sys.executable, "-c", code, str(database)], capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["BetacellDuckDBDialect", "['trial_id']"]


@pytest.mark.parametrize("spelled, kind", [
    ("VARCHAR", sqltypes.String), ("HUGEINT", sqltypes.Numeric), ("INTEGER[]", sqltypes.ARRAY),
    ("STRUCT(a INTEGER)", sqltypes.NullType), ("ENUM('a', 'b''c')", sqltypes.Enum),
    ("TIMESTAMP WITH TIME ZONE", sqltypes.TIMESTAMP), ("SOMETHING NEW", sqltypes.NullType),
])
def test_type_mapping(spelled, kind):
    assert isinstance(duckdb_type_to_sqlalchemy(spelled), kind)
    if kind is sqltypes.Enum:
        assert duckdb_type_to_sqlalchemy(spelled).enums == ["a", "b'c"]
