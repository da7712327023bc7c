"""Helpers shared by the integration tests: read-only queries and the marts' contracts."""

from __future__ import annotations

from pathlib import Path

import duckdb
import yaml

from flows.settings import REPO_DIR

MARTS_YML = sorted((REPO_DIR / "dbt_project" / "models" / "marts").glob("_*.yml"))


def query(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def mart_contracts() -> dict[str, list[tuple[str, str]]]:
    """Contracted marts -> [(column, data type)] as declared in the marts' yml."""
    contracts = {}
    for path in MARTS_YML:
        for model in yaml.safe_load(path.read_text()).get("models", []):
            if (model.get("config") or {}).get("contract", {}).get("enforced"):
                contracts[model["name"]] = [(c["name"], c["data_type"].upper())
                                            for c in model["columns"]]
    return contracts


def published_mart_types(path: Path) -> dict[str, list[tuple[str, str]]]:
    rows = query(path, "select table_name, column_name, data_type from information_schema.columns "
                       "where table_schema = 'marts' order by table_name, ordinal_position")
    out: dict[str, list[tuple[str, str]]] = {}
    for table, column, kind in rows:
        out.setdefault(table, []).append((column, kind.upper()))
    return out


def assert_marts_keep_their_contracts(path: Path) -> None:
    published = published_mart_types(path)
    for mart, columns in mart_contracts().items():
        assert published.get(mart) == columns, f"marts.{mart} does not match its contract"
