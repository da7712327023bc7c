"""The real staging / intermediate / mart SQL of the results chain, run on generated records.

One ``dbt build`` per session builds every model the results marts need (on an empty raw
schema) and writes the manifest with each model's compiled SQL. A run then loads records into
``raw.ctgov_studies`` and re-creates, in dependency order, every model between that source and
the results marts from its compiled SQL (a Python model, such as ``int_harm_rates``, by running
its compiled code - the model and dbt's own ``dbtObj`` - on the same connection), inside a transaction that is
rolled back afterwards. That takes about a second per example, so hypothesis can try many.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson

from flows.db import ensure_raw_schema
from flows.settings import Settings

TARGETS = ("fct_adverse_events", "fct_adverse_event_terms", "quarantined_records", "fct_outcomes",
           "safety_signals")
SOURCE = "source.betacell.raw.ctgov_studies"


@dataclass
class Node:
    name: str
    relation: str
    language: str
    code: str
    depends_on: list[str]


def build(settings: Settings) -> Path:
    """The session's dbt build: seeds and the models the results marts need (no tests)."""
    from flows.transform import run_dbt

    database = settings.build_database
    database.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(database))
    try:
        ensure_raw_schema(con)
    finally:
        con.close()
    present = [t for t in TARGETS if (settings.dbt_project_dir / "models" / "marts"
                                      / f"{t}.sql").exists()]
    run_dbt(settings, ["build", "--select", *(f"+{t}" for t in present),
                       "--exclude-resource-type", "test", "unit_test"], database)
    return database


class ResultsSql:
    """Re-runs the chain from raw.ctgov_studies to the results marts on given records."""

    def __init__(self, database: Path, manifest: Path) -> None:
        self.database = database
        nodes = orjson.loads(manifest.read_bytes())["nodes"]
        models = {uid: n for uid, n in nodes.items() if n["resource_type"] == "model"}
        wanted = self._ancestors(models, [f"model.betacell.{t}" for t in TARGETS
                                          if f"model.betacell.{t}" in models])
        fed = self._fed_by_source(models, wanted)
        self.chain = [Node(models[uid]["name"], models[uid]["relation_name"],
                           models[uid]["language"], models[uid].get("compiled_code") or "",
                           models[uid]["depends_on"]["nodes"])
                      for uid in self._in_order(models, fed)]
        missing = [n.name for n in self.chain if not n.code]
        assert not missing, f"no compiled code for {missing}"
        self._con: duckdb.DuckDBPyConnection | None = None

    @staticmethod
    def _ancestors(models: dict, roots: list[str]) -> set[str]:
        seen, stack = set(), list(roots)
        while stack:
            uid = stack.pop()
            if uid in seen or uid not in models:
                continue
            seen.add(uid)
            stack += models[uid]["depends_on"]["nodes"]
        return seen

    @staticmethod
    def _fed_by_source(models: dict, wanted: set[str]) -> set[str]:
        fed: set[str] = set()
        changed = True
        while changed:
            changed = False
            for uid in wanted - fed:
                deps = models[uid]["depends_on"]["nodes"]
                if SOURCE in deps or fed.intersection(deps):
                    fed.add(uid)
                    changed = True
        return fed

    @staticmethod
    def _in_order(models: dict, subset: set[str]) -> list[str]:
        order: list[str] = []
        done: set[str] = set()

        def visit(uid: str) -> None:
            if uid in done or uid not in subset:
                return
            done.add(uid)
            for dep in models[uid]["depends_on"]["nodes"]:
                visit(dep)
            order.append(uid)

        for uid in sorted(subset):
            visit(uid)
        return order

    @contextmanager
    def run(self, records: list[dict[str, Any]]) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection on which the chain was rebuilt from ``records`` (rolled back after)."""
        if self._con is None:  # one connection for the session's examples
            self._con = duckdb.connect(str(self.database))
        con = self._con
        try:
            con.execute("begin transaction")
            con.execute("delete from raw.ctgov_studies")
            fetched = datetime(2026, 12, 1, tzinfo=UTC)
            for line, record in enumerate(records, start=1):
                payload = json.dumps(record)
                con.execute("insert into raw.ctgov_studies values (?, ?, ?, ?, ?, ?, ?, ?)",
                            [record["protocolSection"]["identificationModule"]["nctId"],
                             None, payload, "property-run", fetched, "generated.jsonl", line,
                             hashlib.md5(payload.encode()).hexdigest()])
            for node in self.chain:
                self._rebuild(con, node)
            yield con
        finally:
            con.execute("rollback")

    @staticmethod
    def _rebuild(con: duckdb.DuckDBPyConnection, node: Node) -> None:
        if node.language == "python":
            namespace: dict[str, Any] = {}
            exec(compile(node.code, node.name, "exec"), namespace)  # model + dbt's dbtObj
            dbt = namespace["dbtObj"](lambda relation: con.sql(f"select * from {relation}"))
            result = namespace["model"](dbt, con)
            if not isinstance(result, duckdb.DuckDBPyRelation):
                result = con.from_df(result)
            result.create_view("property_python_model", replace=True)
            con.execute(f"create or replace table {node.relation} as "
                        "select * from property_python_model")
            return
        con.execute(f"create or replace table {node.relation} as {node.code}")

