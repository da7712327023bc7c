"""Helpers shared by the integration tests: read-only queries and the marts' contracts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import yaml

from flows.settings import REPO_DIR

MARTS_YML = sorted((REPO_DIR / "dbt_project" / "models" / "marts").glob("_*.yml"))


def extract(source: str, settings: Any, mode: str = "live", *, since: Any = None,
            full: bool = False, state: Any = None, topic: Any = None, **kwargs: Any) -> Any:
    """A source's extract as a refresh calls it (``kwargs`` are the extract's own, e.g. a
    client); returns its source run."""
    import importlib

    from flows.sources.base import ExtractRequest, SourceState

    module = importlib.import_module(f"flows.sources.{source}.resource")
    request = ExtractRequest(settings, mode, since, full, state or SourceState(), topic)
    return module.extract(request, **kwargs)


def load_landed(con: duckdb.DuckDBPyConnection, *landings: Any, mode: str = "api",
                tmp: Path | None = None, load_filter: str | None = None,
                on_progress: Any = None, **settings: Any) -> Any:
    """The raw loader on landed runs of one source, as a refresh calls it (``settings`` are
    Settings fields, e.g. ``max_reject_share=0.05``); returns the filled-in source run."""
    from flows import raw_loader, sources
    from flows.settings import Settings
    from flows.sources.base import SourceRun

    source = landings[0].source
    resource = next(r for r in sources.resources() if r.name == source)
    run = SourceRun(source, mode, list(landings), load_filter=load_filter)
    config = Settings(data_dir=tmp or landings[0].dir.parents[2] / "data", **settings)
    return raw_loader.load(con, config, resource, run, on_progress=on_progress)


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


def start_refresh_until_dbt_builds(timeout: float = 240, *, full: bool = True,
                                   prefect_api_url: str | None = None,
                                   nodes_started: int = 0):
    """Start `betacell run --source snapshot [--full]` in its own session and return
    ``(process, dbt process)`` once ``dbt build`` runs.

    Without ``prefect_api_url`` the run starts its own temporary Prefect server (what a plain
    `betacell run` does); with it, the run records on that server. ``nodes_started`` waits until
    dbt has started that many nodes of the build (a kill then lands mid-build, in a dbt step)."""
    import os
    import subprocess
    import sys
    import time

    import psutil

    from flows.settings import REPO_DIR, get_settings

    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "180"
    if prefect_api_url:
        env["PREFECT_API_URL"] = prefect_api_url
    log = get_settings().build_dir / "dbt_logs" / "dbt.log"
    seen = log.stat().st_size if log.exists() else 0  # a copied data directory has an old log
    process = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "run", "--source", "snapshot",
         *(["--full"] if full else [])],
        env=env, cwd=REPO_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    parent = psutil.Process(process.pid)
    deadline = time.monotonic() + timeout
    dbt = None
    while time.monotonic() < deadline:
        assert process.poll() is None, "the refresh ended before dbt build started"
        dbt = dbt or _dbt_build_child(parent)
        if dbt and _dbt_nodes_started(log, seen) >= nodes_started:
            return process, dbt
        time.sleep(0.1)
    os.killpg(process.pid, 9)
    raise AssertionError("dbt build never started" if dbt is None else
                         f"dbt build never started {nodes_started} nodes")


def _dbt_build_child(parent):
    import psutil

    for child in parent.children(recursive=True):
        try:
            command = child.cmdline()
        except psutil.Error:
            continue
        if (any(part.endswith("dbt") for part in command[:2]) and "build" in command
                and "+int_trial_references" not in command):  # the full build, not the closure's
            return child
    return None


def _dbt_nodes_started(log: Path, offset: int) -> int:
    """How many nodes this dbt build has started (its lines of the log past ``offset``)."""
    if not log.exists():
        return 0
    with log.open("rb") as handle:
        if log.stat().st_size >= offset:  # else dbt rotated the log: all of it is this build's
            handle.seek(offset)
        return sum(1 for line in handle if b" START " in line and b" of " in line)


ID_LAYERS = ("raw", "seeds", "snapshots", "staging", "intermediate", "marts")


def empty_string_ids(warehouse: Path) -> list[tuple[str, str, str, int]]:
    """Every id column (``*_id``, ``*_ids``, ``id``; text or a list of text) of every layer
    holding '' (or a list with ''): (schema, table, column, rows). One query over all of them."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        columns = con.execute(f"""
            select table_schema, table_name, column_name, data_type
            from information_schema.columns
            where table_schema in {ID_LAYERS}
              and (column_name = 'id' or column_name like '%\\_id' escape '\\'
                   or column_name like '%\\_ids' escape '\\')
              and data_type in ('VARCHAR', 'VARCHAR[]')""").fetchall()
        assert len(columns) > 100, "the id columns were not found"
        counts = " union all ".join(
            f"select '{schema}', '{table}', '{column}', count(*) from \"{schema}\".\"{table}\" "
            f"where " + (f"trim(\"{column}\") = ''" if kind == "VARCHAR"
                         else f"list_contains(list_transform(\"{column}\", x -> trim(x)), '')")
            for schema, table, column, kind in columns)
        return [row for row in con.execute(counts).fetchall() if row[3]]
    finally:
        con.close()
