"""Publishing to a DuckLake lakehouse (optional; README "Scaling out").

When ``BETACELL_LAKE_CATALOG`` is set, every successful refresh — after the single-file warehouse
was published — copies its marts (and the schemas named in ``BETACELL_LAKE_INCLUDE``) from the
published ``warehouse.duckdb`` into the lake in ONE transaction. One transaction is one DuckLake
snapshot, so readers on any machine see the previous run or this one, never a mix, and
``AT (VERSION => n)`` returns any earlier run. Tables keep their names (``marts.dim_trials``).

The catalog is PostgreSQL (many machines; concurrent readers and writers) or a local
``*.ducklake`` file (one machine; locked while attached). Data files go to a local directory or to
S3-compatible object storage. Extensions come from the ``duckdb-ext-*`` wheels: DuckDB's
``extension_directory`` points into them and nothing is ever downloaded.

Two writers at once (two deployments): DuckLake rebases physical races itself; a logical conflict
(both replaced the same table) aborts the later COMMIT with nothing written, and the whole
transaction is retried here (``BETACELL_LAKE_PUBLISH_ATTEMPTS``) before the run fails cleanly.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from flows.errors import BetacellError
from flows.redaction import format_exception, mask_exception, redact
from flows.settings import Settings, get_settings

LAKE = "lake"  # the alias the lake is attached under, in the publisher and in readers
ALWAYS = ("marts",)
ALLOWED = ("marts", "raw", "staging", "intermediate", "snapshots", "meta")
AUTHOR = "betacell"
_RETRYABLE = ("conflict", "could not serialize", "could not set lock", "conflicting lock")


class LakeError(BetacellError):
    """The lake could not be reached, or a publish did not commit."""


def extension_directory() -> str:
    """``site-packages/duckdb_ext/extensions``: DuckDB's extension-directory layout
    (``v1.4.4/linux_amd64/ducklake.duckdb_extension``), shipped by the ``duckdb-ext-*`` wheels."""
    try:
        import duckdb_ext
    except ImportError as exc:  # pragma: no cover - a broken install
        raise LakeError("the duckdb-ext-ducklake/-postgres/-httpfs packages are not installed "
                        "(pip install -e .)") from exc
    return str(Path(list(duckdb_ext.__path__)[0]) / "extensions")


def duckdb_config(settings: Settings | None = None) -> dict[str, Any]:
    """Connection config for anything that opens the lake (publisher, readers, BI)."""
    config: dict[str, Any] = {"extension_directory": extension_directory(),
                              "autoinstall_known_extensions": False}
    if settings is not None:
        config |= {"memory_limit": settings.duckdb_memory_limit,
                   "threads": settings.duckdb_threads}
    return config


def lake_schemas(settings: Settings) -> list[str]:
    schemas = list(ALWAYS) + [s for s in settings.lake_include if s not in ALWAYS]
    unknown = [s for s in schemas if s not in ALLOWED]
    if unknown:
        raise LakeError(f"BETACELL_LAKE_INCLUDE: unknown schema(s) {unknown}; "
                        f"choose from {list(ALLOWED[1:])}")
    return schemas


def catalog_uri(settings: Settings) -> str:
    """``ducklake:<catalog>``; a bare file path is made absolute."""
    catalog = (settings.lake_catalog or "").strip()
    if not catalog:
        raise LakeError("BETACELL_LAKE_CATALOG is not set")
    if catalog.startswith("ducklake:"):
        catalog = catalog.removeprefix("ducklake:")
    kind = catalog.split(":", 1)[0]
    if kind not in {"postgres", "sqlite", "duckdb", "mysql"} and not catalog.startswith("md:"):
        catalog = str(Path(catalog).expanduser().resolve())
    return f"ducklake:{catalog}"


def data_path(settings: Settings) -> str | None:
    path = (settings.lake_data_path or "").strip()
    if not path:
        return None
    if "://" in path:
        return path if path.endswith("/") else path + "/"
    return str(Path(path).expanduser().resolve()) + "/"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def attach_sql(settings: Settings, *, read_only: bool = False,
               snapshot_version: int | None = None, alias: str = LAKE) -> str:
    options = []
    if (path := data_path(settings)) is not None:
        options.append(f"DATA_PATH {_quote(path)}")
    if read_only:
        options.append("READ_ONLY")
    if snapshot_version is not None:
        options.append(f"SNAPSHOT_VERSION {int(snapshot_version)}")
    suffix = f" ({', '.join(options)})" if options else ""
    return f"ATTACH {_quote(catalog_uri(settings))} AS {alias}{suffix}"


def s3_secret_sql(settings: Settings) -> str | None:
    """A session secret for S3-compatible storage (None when no S3 setting is given)."""
    if not (settings.s3_endpoint or settings.s3_key_id):
        return None
    parts = ["TYPE s3", f"REGION {_quote(settings.s3_region)}",
             f"URL_STYLE {_quote(settings.s3_url_style)}",
             f"USE_SSL {'true' if settings.s3_use_ssl else 'false'}"]
    if settings.s3_key_id:
        parts.append(f"KEY_ID {_quote(settings.s3_key_id)}")
    if settings.s3_secret is not None:
        parts.append(f"SECRET {_quote(settings.s3_secret.get_secret_value())}")
    if settings.s3_endpoint:
        endpoint = settings.s3_endpoint.split("://", 1)[-1].rstrip("/")
        parts.append(f"ENDPOINT {_quote(endpoint)}")
    return f"CREATE OR REPLACE SECRET betacell_lake_s3 ({', '.join(parts)})"


def prepare(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Per connection: the S3 secret (secrets live in the DuckDB instance, not the catalog)."""
    if sql := s3_secret_sql(settings):
        con.execute(sql)


def connect(settings: Settings | None = None, *, read_only: bool = True,
            snapshot_version: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the lake attached as ``lake`` (and selected with USE).
    Readers attach read-only; ``snapshot_version`` pins an earlier run."""
    settings = settings or get_settings()
    con = duckdb.connect(":memory:", config=duckdb_config(settings))
    try:
        prepare(con, settings)
        if not read_only and (path := data_path(settings)) and "://" not in path:
            Path(path).mkdir(parents=True, exist_ok=True)
        con.execute(attach_sql(settings, read_only=read_only, snapshot_version=snapshot_version))
        con.execute(f"USE {LAKE}")
    except duckdb.Error as exc:
        con.close()
        raise LakeError(f"the lake {catalog_uri(settings)} could not be attached "
                        f"(BETACELL_LAKE_CATALOG): {type(exc).__name__}: {exc}"
                        ) from mask_exception(exc)
    except BaseException:
        con.close()
        raise
    return con


@dataclass
class LakePublication:
    snapshot_id: int
    tables: dict[str, int] = field(default_factory=dict)  # schema.table -> rows
    attempts: int = 1
    dropped: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"snapshot_id": self.snapshot_id, "tables": len(self.tables),
                "rows": sum(self.tables.values()), "attempts": self.attempts,
                "dropped": self.dropped}


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, LakeError) and exc.__cause__ is not None:  # the attach failed
        exc = exc.__cause__
    return (isinstance(exc, duckdb.TransactionException | duckdb.IOException)
            and any(word in str(exc).lower() for word in _RETRYABLE))


def publish_to_lake(settings: Settings, warehouse: Path, run_id: str, *,
                    message: str | None = None,
                    before_commit: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
                    ) -> LakePublication:
    """Copy the published warehouse's schemas into the lake as ONE snapshot.

    Tables are replaced (``CREATE OR REPLACE``); tables the warehouse no longer has are dropped,
    so the lake mirrors the published file. Views are copied as tables. On a write conflict the
    whole transaction is redone, up to ``lake_publish_attempts`` times; any other failure
    rolls back and raises. ``before_commit`` is a test hook (called inside the transaction).
    """
    schemas = lake_schemas(settings)
    warehouse = Path(warehouse).resolve()
    if not warehouse.exists():
        raise LakeError(f"{warehouse} does not exist; nothing to publish to the lake")
    attempts = settings.lake_publish_attempts
    for attempt in range(1, attempts + 1):
        try:
            result = _publish_once(settings, warehouse, run_id, schemas, message, before_commit)
        except (duckdb.Error, LakeError) as exc:
            if not _retryable(exc) or attempt == attempts:
                raise LakeError(f"lake publish of run {run_id} did not commit (attempt "
                                f"{attempt}/{attempts}); the lake keeps its previous snapshot: "
                                f"{type(exc).__name__}: {exc}") from mask_exception(exc)
            time.sleep(min(0.25 * 2 ** attempt, 5.0) * (0.5 + random.random()))
            continue
        result.attempts = attempt
        return result
    raise AssertionError("unreachable")  # pragma: no cover


def _publish_once(settings: Settings, warehouse: Path, run_id: str, schemas: list[str],
                  message: str | None, before_commit) -> LakePublication:
    con = connect(settings, read_only=False)
    try:
        # The alias is the file's basename: views in the warehouse name their catalog.
        source = warehouse.stem
        con.execute(f"ATTACH {_quote(str(warehouse))} AS {source} (READ_ONLY)")
        wanted = con.execute(
            "select schema_name, table_name from duckdb_tables() where database_name = ? "
            "and list_contains(?, schema_name) union all "
            "select schema_name, view_name from duckdb_views() where database_name = ? "
            "and list_contains(?, schema_name) and not internal order by 1, 2",
            [source, schemas, source, schemas]).fetchall()
        if not any(schema == "marts" for schema, _ in wanted):
            raise LakeError(f"{warehouse} has no marts; not publishing to the lake")
        con.execute("BEGIN")
        for schema in schemas:
            con.execute(f'CREATE SCHEMA IF NOT EXISTS {LAKE}."{schema}"')
        present = con.execute(
            "select schema_name, table_name from duckdb_tables() where database_name = ? "
            "and list_contains(?, schema_name)", [LAKE, schemas]).fetchall()
        dropped = sorted(f"{s}.{t}" for s, t in set(present) - set(wanted))
        for name in dropped:
            schema, table = name.split(".", 1)
            con.execute(f'DROP TABLE {LAKE}."{schema}"."{table}"')
        tables: dict[str, int] = {}
        for schema, table in wanted:
            con.execute(f'CREATE OR REPLACE TABLE {LAKE}."{schema}"."{table}" AS '
                        f'SELECT * FROM {source}."{schema}"."{table}"')
            tables[f"{schema}.{table}"] = con.execute(
                f'SELECT count(*) FROM {LAKE}."{schema}"."{table}"').fetchone()[0]
        extra = json.dumps({"run_id": run_id, "tables": tables}, sort_keys=True)
        con.execute(f"CALL {LAKE}.set_commit_message(?, ?, extra_info => ?)",
                    [AUTHOR, message or f"betacell refresh {run_id}", extra])
        if before_commit is not None:
            before_commit(con)
        con.execute("COMMIT")
        snapshot_id = con.execute(
            f"SELECT max(snapshot_id) FROM {LAKE}.snapshots() WHERE commit_extra_info = ?",
            [extra]).fetchone()[0]
        return LakePublication(snapshot_id, tables, dropped=dropped)
    finally:
        con.close()


def snapshots(settings: Settings | None = None) -> list[dict[str, Any]]:
    """The lake's snapshots, oldest first (run id and row counts from the commit info)."""
    con = connect(settings)
    try:
        rows = con.execute(
            f"SELECT snapshot_id, snapshot_time, author, commit_message, commit_extra_info "
            f"FROM {LAKE}.snapshots() ORDER BY snapshot_id").fetchall()
    finally:
        con.close()
    out = []
    for snapshot_id, at, author, message, extra in rows:
        info = json.loads(extra) if extra else {}
        out.append({"snapshot_id": snapshot_id, "at": str(at), "author": author,
                    "message": message, "run_id": info.get("run_id"),
                    "tables": info.get("tables", {})})
    return out


def maintain(settings: Settings, older_than: str = "7 days") -> None:
    """Expire snapshots older than ``older_than`` and delete their files, and orphaned files
    (e.g. of a killed writer) older than one hour. Time travel ends at the expiry horizon."""
    con = connect(settings, read_only=False)
    try:
        con.execute(f"CALL ducklake_expire_snapshots('{LAKE}', "
                    f"older_than => now() - INTERVAL {_quote(older_than)})")
        con.execute(f"CALL ducklake_cleanup_old_files('{LAKE}', cleanup_all => true)")
        con.execute(f"CALL ducklake_delete_orphaned_files('{LAKE}', "
                    "older_than => now() - INTERVAL '1 hour')")
    finally:
        con.close()


# --- In the refresh flow -------------------------------------------------------------------

def check(settings: Settings) -> None:
    """Configuration checked first (before a run does any work): schemas, extensions, storage."""
    lake_schemas(settings)
    catalog_uri(settings)
    if not Path(extension_directory()).is_dir():
        raise LakeError(f"{extension_directory()} is missing: reinstall duckdb-ext-ducklake")
    path = data_path(settings) or ""
    if path.startswith("s3://") and not (settings.s3_key_id or settings.s3_endpoint):
        raise LakeError("BETACELL_LAKE_DATA_PATH is on S3 but no BETACELL_S3_* setting is given")


def publish_run(settings: Settings, run_id: str, run_name: str | None = None) -> LakePublication:
    """The refresh flow's lake step: the published warehouse file -> one lake snapshot."""
    return publish_to_lake(settings, settings.warehouse_path, run_id,
                           message=f"betacell refresh {run_name or run_id} ({run_id})")


# --- BI ------------------------------------------------------------------------------------

def _stub_pg_collation() -> None:
    """SQLAlchemy's PostgreSQL column reflection joins ``pg_catalog.pg_collation``, which DuckDB
    1.4.x lacks (fixed in 1.5). Point SQLAlchemy at an empty stand-in view instead."""
    import sqlalchemy.dialects.postgresql.pg_catalog as pg_catalog
    from sqlalchemy import Column, Integer, MetaData, String, Table

    if getattr(pg_catalog.pg_collation, "name", "") != "betacell_pg_collation":
        pg_catalog.pg_collation = Table("betacell_pg_collation", MetaData(),
                                        Column("oid", Integer), Column("collname", String),
                                        schema="memory.main")


def bi_engine(settings: Settings | None = None, snapshot_version: int | None = None):
    """A SQLAlchemy engine (duckdb-engine) on the lake, read-only: an in-memory DuckDB per pooled
    connection, with the lake attached and selected, so ``marts.dim_trials`` resolves.
    Superset and other SQLAlchemy clients can use the same listener (README)."""
    from sqlalchemy import create_engine, event

    settings = settings or get_settings()
    _stub_pg_collation()
    engine = create_engine("duckdb:///:memory:", connect_args={"config": duckdb_config(settings)})
    statements = [s for s in (s3_secret_sql(settings),) if s]
    statements.append(attach_sql(settings, read_only=True, snapshot_version=snapshot_version))

    @event.listens_for(engine, "connect")
    def _attach(dbapi_connection, _record) -> None:
        dbapi_connection.execute("CREATE OR REPLACE VIEW memory.main.betacell_pg_collation AS "
                                 "SELECT NULL::INTEGER AS oid, NULL::VARCHAR AS collname "
                                 "WHERE false")
        for sql in statements:
            dbapi_connection.execute(sql)
        dbapi_connection.execute(f"USE {LAKE}")

    return engine


# --- Command line: python -m flows.lake ... -------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.lake",
                                     description="Read or maintain the lake named by the "
                                                 "BETACELL_LAKE_* and BETACELL_S3_* settings")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("snapshots", help="list snapshots (one per published run) as JSON lines")
    sql = sub.add_parser("sql", help="run one read-only query; rows as JSON lines")
    sql.add_argument("query")
    sql.add_argument("--version", type=int, default=None, help="read this snapshot")
    keep = sub.add_parser("maintain", help="expire old snapshots and delete unused files")
    keep.add_argument("--older-than", default="7 days")
    parser.add_argument("--debug", action="store_true", help="print the traceback (masked)")
    args = parser.parse_args(argv)
    try:
        _run_command(args)
    except Exception as exc:  # noqa: BLE001 - one masked paragraph, never a raw traceback
        mask_exception(exc)
        print(format_exception(exc) if args.debug else
              f"Error: {redact(exc)}" + ("" if isinstance(exc, BetacellError) else
                                         f" ({type(exc).__name__}; --debug for the traceback)"),
              file=sys.stderr)
        return 1
    return 0


def _run_command(args: argparse.Namespace) -> None:
    settings = get_settings()
    if args.command == "snapshots":
        for row in snapshots(settings):
            print(json.dumps(row, default=str))
    elif args.command == "sql":
        con = connect(settings, snapshot_version=args.version)
        try:
            for row in con.execute(args.query).fetchall():
                print(json.dumps(list(row), default=str))
        finally:
            con.close()
    else:
        maintain(settings, args.older_than)


if __name__ == "__main__":
    sys.exit(main())
