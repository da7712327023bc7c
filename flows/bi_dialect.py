"""A SQLAlchemy dialect for BI tools (Superset, Metabase through SQLAlchemy, pandas) that reflects
tables from DuckDB's own catalog.

Why it exists: with DuckDB 1.4.x (pinned, the lake extensions need it) and duckdb-engine 0.17,
SQLAlchemy's reflection goes through DuckDB's emulation of PostgreSQL's ``pg_catalog`` and fails:

- ``get_columns`` (SQLAlchemy >= 2.0.45) selects from ``pg_catalog.pg_collation``, which DuckDB
  1.4 does not have ("pg_collation does not exist"); Superset's "add dataset" calls it;
- primary key, foreign key, unique and check reflection (SQLAlchemy >= 2.0.55) cast to
  ``REGCLASS``, a type DuckDB does not know;
- on any SQLAlchemy version the primary key reflects with no columns, because DuckDB's emulated
  ``pg_constraint.conkey`` is 0-based while ``pg_attribute.attnum`` is 1-based.

This dialect keeps everything of duckdb-engine (connecting, ``read_only`` and ``config`` connect
arguments, SQL compilation, schema listing, view definitions) and answers the reflection calls
(tables, views, columns, keys, indexes, comments) from DuckDB's catalog functions
(``duckdb_tables()``, ``duckdb_views()``, ``duckdb_columns()``, ``duckdb_constraints()``,
``duckdb_indexes()``) instead. It works with SQLAlchemy 1.4 (what Superset 6 installs) and 2.0.

Use it with the URL ``duckdb+betacell:////abs/path/data/warehouse.duckdb`` (entry point declared
in pyproject.toml), or call :func:`register_as_default` before creating engines (for example at
the top of ``superset_config.py``) so that plain ``duckdb:///`` URLs use it.
"""

from __future__ import annotations

import re
from typing import Any

from duckdb_engine import Dialect as DuckDBEngineDialect
from sqlalchemy import exc, text
from sqlalchemy import types as sqltypes
from sqlalchemy.engine import default

__all__ = ["BetacellDuckDBDialect", "duckdb_type_to_sqlalchemy", "register_as_default"]

_DOUBLE = getattr(sqltypes, "Double", sqltypes.Float)  # SQLAlchemy 1.4 has no Double
_UUID = getattr(sqltypes, "Uuid", sqltypes.String)

_SCALAR_TYPES: dict[str, type[sqltypes.TypeEngine]] = {
    "VARCHAR": sqltypes.String, "TEXT": sqltypes.String, "CHAR": sqltypes.String,
    "BOOLEAN": sqltypes.Boolean,
    "TINYINT": sqltypes.SmallInteger, "SMALLINT": sqltypes.SmallInteger,
    "UTINYINT": sqltypes.SmallInteger, "USMALLINT": sqltypes.Integer,
    "INTEGER": sqltypes.Integer, "UINTEGER": sqltypes.BigInteger, "BIGINT": sqltypes.BigInteger,
    "UBIGINT": sqltypes.Numeric, "HUGEINT": sqltypes.Numeric, "UHUGEINT": sqltypes.Numeric,
    "FLOAT": sqltypes.REAL, "REAL": sqltypes.REAL, "DOUBLE": _DOUBLE,
    "DATE": sqltypes.Date, "TIME": sqltypes.Time, "INTERVAL": sqltypes.Interval,
    "TIMESTAMP": sqltypes.TIMESTAMP, "TIMESTAMP_S": sqltypes.TIMESTAMP,
    "TIMESTAMP_MS": sqltypes.TIMESTAMP, "TIMESTAMP_NS": sqltypes.TIMESTAMP,
    "BLOB": sqltypes.LargeBinary, "UUID": _UUID, "JSON": sqltypes.JSON,
}


def duckdb_type_to_sqlalchemy(data_type: str) -> sqltypes.TypeEngine:
    """The SQLAlchemy type for a ``duckdb_columns().data_type`` string (NullType when there is
    no portable equivalent, as for STRUCT, MAP and UNION)."""
    spelled = data_type.strip()
    array = re.fullmatch(r"(.+)\[(\d*)\]", spelled)  # VARCHAR[] and INTEGER[3]
    if array:
        inner = duckdb_type_to_sqlalchemy(array.group(1))
        return sqltypes.NullType() if isinstance(inner, sqltypes.NullType) \
            else sqltypes.ARRAY(inner)
    upper = spelled.upper()
    if upper == "TIMESTAMP WITH TIME ZONE":
        return sqltypes.TIMESTAMP(timezone=True)
    if upper == "TIME WITH TIME ZONE":
        return sqltypes.Time(timezone=True)
    decimal = re.fullmatch(r"(?:DECIMAL|NUMERIC)\((\d+),\s*(\d+)\)", upper)
    if decimal:
        return sqltypes.Numeric(int(decimal.group(1)), int(decimal.group(2)))
    if upper.startswith("ENUM("):
        labels = [v.replace("''", "'") for v in re.findall(r"'((?:[^']|'')*)'", spelled)]
        return sqltypes.Enum(*labels, native_enum=False)
    scalar = _SCALAR_TYPES.get(upper)
    return scalar() if scalar is not None else sqltypes.NullType()


class KeyColumns(set):
    """A primary key's columns, in key order: a sequence to SQLAlchemy and to any caller (it
    iterates, indexes and compares equal to a list in that order), and a set to Superset.

    Superset (checked with 6.1) passes every value of ``get_pk_constraint`` through its JSON
    converter and keeps None for what it cannot convert: a plain list of column names is
    dropped there, a set is kept as a list (built by iterating, so in key order)."""

    def __init__(self, columns: Any) -> None:
        self._order = list(dict.fromkeys(columns))
        super().__init__(self._order)

    def __iter__(self):
        return iter(self._order)

    def __getitem__(self, index: int) -> str:
        return self._order[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, list | tuple):
            return self._order == list(other)
        return super().__eq__(other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]  # mutable, like set

    def __repr__(self) -> str:  # prints as the list of columns it stands for
        return repr(self._order)


class BetacellDuckDBDialect(DuckDBEngineDialect):
    """duckdb-engine with reflection read from DuckDB's catalog functions."""

    driver = "betacell"
    supports_statement_cache = False

    def _scope(self, connection, schema: str | None) -> tuple[str, str]:
        """(database, schema) for a schema argument: ``marts`` or ``warehouse.marts`` (Superset
        passes back what ``get_schema_names`` listed, which includes the database name)."""
        database, schema_name = self.identifier_preparer._separate(schema)
        if schema_name is None:
            schema_name = connection.execute(text("select current_schema()")).scalar()
        if database is None:
            # like DuckDB's binder: the current database's schema first
            database = connection.execute(text(
                "select database_name from duckdb_schemas() where schema_name = :s "
                "order by database_name = current_database() desc, database_name limit 1"),
                {"s": schema_name}).scalar()
            if database is None:
                database = connection.execute(text("select current_database()")).scalar()
        return database, schema_name

    def _exists(self, connection, database: str, schema: str, name: str) -> bool:
        found = connection.execute(text(
            "select 1 from duckdb_tables() where database_name = :d and schema_name = :s "
            "and table_name = :t union all "
            "select 1 from duckdb_views() where database_name = :d and schema_name = :s "
            "and view_name = :t"), {"d": database, "s": schema, "t": name}).first()
        return found is not None

    def _constraints(self, connection, table_name: str, schema: str | None, kind: str) -> list:
        database, schema_name = self._scope(connection, schema)
        if not self._exists(connection, database, schema_name, table_name):
            raise exc.NoSuchTableError(table_name)
        return connection.execute(text(
            "select constraint_name, constraint_column_names, referenced_table, "
            "referenced_column_names, expression from duckdb_constraints() "
            "where database_name = :d and schema_name = :s and table_name = :t "
            "and constraint_type = :k order by constraint_index"),
            {"d": database, "s": schema_name, "t": table_name, "k": kind}).fetchall()

    # listings: duckdb-engine answers these through information_schema and pg_catalog views,
    # which cost about a second per call on a warehouse of a few hundred tables
    def get_table_names(self, connection, schema=None, **kw) -> list[str]:
        database, schema_name = self._scope(connection, schema)
        return [name for (name,) in connection.execute(text(
            "select table_name from duckdb_tables() where database_name = :d "
            "and schema_name = :s and not temporary order by table_name"),
            {"d": database, "s": schema_name})]

    def get_view_names(self, connection, schema=None, **kw) -> list[str]:
        database, schema_name = self._scope(connection, schema)
        return [name for (name,) in connection.execute(text(
            "select view_name from duckdb_views() where database_name = :d "
            "and schema_name = :s and not internal and not temporary order by view_name"),
            {"d": database, "s": schema_name})]

    def has_table(self, connection, table_name, schema=None, **kw) -> bool:
        database, schema_name = self._scope(connection, schema)
        return self._exists(connection, database, schema_name, table_name)

    def get_table_comment(self, connection, table_name, schema=None, **kw) -> dict[str, Any]:
        database, schema_name = self._scope(connection, schema)
        row = connection.execute(text(
            "select comment from duckdb_tables() where database_name = :d and schema_name = :s "
            "and table_name = :t union all "
            "select comment from duckdb_views() where database_name = :d and schema_name = :s "
            "and view_name = :t"), {"d": database, "s": schema_name, "t": table_name}).first()
        if row is None:
            raise exc.NoSuchTableError(table_name)
        return {"text": row[0] or None}

    # single-table reflection (SQLAlchemy 1.4 and 2.0)
    def get_columns(self, connection, table_name, schema=None, **kw) -> list[dict[str, Any]]:
        database, schema_name = self._scope(connection, schema)
        rows = connection.execute(text(
            "select column_name, data_type, is_nullable, column_default, comment "
            "from duckdb_columns() where database_name = :d and schema_name = :s "
            "and table_name = :t order by column_index"),
            {"d": database, "s": schema_name, "t": table_name}).fetchall()
        if not rows:
            raise exc.NoSuchTableError(table_name)
        return [{"name": name, "type": duckdb_type_to_sqlalchemy(data_type),
                 "nullable": bool(nullable), "default": column_default,
                 "autoincrement": False, "comment": comment}
                for name, data_type, nullable, column_default, comment in rows]

    def get_pk_constraint(self, connection, table_name, schema=None, **kw) -> dict[str, Any]:
        rows = self._constraints(connection, table_name, schema, "PRIMARY KEY")
        if not rows:
            return {"constrained_columns": KeyColumns([]), "name": None}
        name, columns, *_ = rows[0]
        return {"constrained_columns": KeyColumns(columns), "name": name}

    def get_unique_constraints(self, connection, table_name, schema=None, **kw) -> list[dict]:
        rows = self._constraints(connection, table_name, schema, "UNIQUE")
        return [{"name": name, "column_names": list(columns)} for name, columns, *_ in rows]

    def get_foreign_keys(self, connection, table_name, schema=None, **kw) -> list[dict]:
        rows = self._constraints(connection, table_name, schema, "FOREIGN KEY")
        # the caller's schema spelling, so reflected keys resolve within the same MetaData
        return [{"name": name, "constrained_columns": list(columns), "referred_schema": schema,
                 "referred_table": referred, "referred_columns": list(referred_columns),
                 "options": {}}
                for name, columns, referred, referred_columns, _ in rows]

    def get_check_constraints(self, connection, table_name, schema=None, **kw) -> list[dict]:
        rows = self._constraints(connection, table_name, schema, "CHECK")
        return [{"name": name, "sqltext": expression}
                for name, _columns, _referred, _referred_columns, expression in rows]

    def get_indexes(self, connection, table_name, schema=None, **kw) -> list[dict]:
        database, schema_name = self._scope(connection, schema)
        indexes = []
        for name, is_unique, expressions in connection.execute(text(
                "select index_name, is_unique, expressions from duckdb_indexes() "
                "where database_name = :d and schema_name = :s and table_name = :t"),
                {"d": database, "s": schema_name, "t": table_name}):
            if isinstance(expressions, list):
                columns = [e.strip('"') for e in expressions]
            else:  # older DuckDB releases return the list as text: "[a, b]"
                columns = [c.strip().strip('"') for c in str(expressions or "").strip("[]")
                           .split(",") if c.strip()]
            indexes.append({"name": name, "column_names": columns, "unique": bool(is_unique)})
        return indexes

    def get_materialized_view_names(self, connection, schema=None, **kw) -> list[str]:
        return []  # DuckDB has none

    def get_temp_table_names(self, connection, schema=None, **kw) -> list[str]:
        return [name for (name,) in connection.execute(text(
            "select table_name from duckdb_tables() where temporary"))]

    def get_temp_view_names(self, connection, schema=None, **kw) -> list[str]:
        return [name for (name,) in connection.execute(text(
            "select view_name from duckdb_views() where temporary and not internal"))]

    # SQLAlchemy 2.0 reflects through bulk get_multi_* methods, which duckdb-engine inherits
    # from the PostgreSQL dialect (the pg_catalog queries above). The default implementations
    # call the single-table methods of this class instead. SQLAlchemy 1.4 has no such methods.
    if hasattr(default.DefaultDialect, "get_multi_columns"):
        get_multi_columns = default.DefaultDialect.get_multi_columns
        get_multi_pk_constraint = default.DefaultDialect.get_multi_pk_constraint
        get_multi_foreign_keys = default.DefaultDialect.get_multi_foreign_keys
        get_multi_indexes = default.DefaultDialect.get_multi_indexes
        get_multi_unique_constraints = default.DefaultDialect.get_multi_unique_constraints
        get_multi_check_constraints = default.DefaultDialect.get_multi_check_constraints


def register_as_default() -> None:
    """Make plain ``duckdb://`` URLs use this dialect (call it before creating engines, e.g. at
    the top of ``superset_config.py``). ``duckdb+betacell://`` works without it."""
    from sqlalchemy.dialects import registry

    registry.register("duckdb", __name__, "BetacellDuckDBDialect")
    registry.register("duckdb.betacell", __name__, "BetacellDuckDBDialect")
