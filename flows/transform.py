"""Run dbt (build, docs) against the build database, in a subprocess.

A subprocess keeps dbt's DuckDB connection out of the pipeline process: when it exits, the file
lock is gone, so the publish step can checkpoint and move the database safely.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from flows import progress
from flows.errors import BuildFailed, DiskFull, is_disk_full
from flows.runlock import die_with_parent, record_child
from flows.settings import Settings


@dataclass
class DbtResult:
    command: list[str]
    status_counts: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    elapsed_seconds: float | None = None


def dbt_executable() -> str:
    local = Path(sys.executable).with_name("dbt")
    if local.exists():
        return str(local)
    found = shutil.which("dbt")
    if not found:
        raise BuildFailed("dbt is not installed in this environment (pip install -e '.[dev]')")
    return found


def dbt_env(settings: Settings, database: Path) -> dict[str, str]:
    env = dict(os.environ)
    # Relative to the subprocess's working directory (the database's folder): the profile, and
    # so dbt's partial-parse state, stays the same wherever the data directory is.
    env["BETACELL_DUCKDB_PATH"] = database.name
    env["BETACELL_DATA_DIR"] = str(settings.data_path)
    env["BETACELL_DUCKDB_MEMORY_LIMIT"] = settings.duckdb_memory_limit
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    env["DBT_USE_COLORS"] = "false"
    # dbt re-parses only what changed (it checks every file's hash and the profile).
    env.setdefault("DBT_PARTIAL_PARSE", "true")
    return env


def build(settings: Settings, database: Path) -> DbtResult:
    """``dbt build`` of the whole project on the build database (with a progress line)."""
    progress.reporter().start("dbt build")
    result = run_dbt(settings, ["build"], database)
    progress.reporter().finish("dbt build")
    return result


def run_dbt(settings: Settings, args: list[str], database: Path, *,
            target: Path | None = None, logs: Path | None = None) -> DbtResult:
    project = settings.dbt_project_dir
    target = target or settings.build_dir / "dbt_target"
    logs = logs or settings.build_dir / "dbt_logs"
    command = [
        dbt_executable(),
        *args,
        "--project-dir",
        str(project),
        "--profiles-dir",
        str(project),
        "--target-path",
        str(target),
        "--log-path",
        str(logs),
    ]
    (target / "run_results.json").unlink(missing_ok=True)
    completed = _run_child(command, dbt_env(settings, database), database.parent)
    result = _read_run_results(target / "run_results.json", command)
    if completed.returncode != 0 and is_disk_full(completed.stdout + completed.stderr):
        raise DiskFull(f"dbt {' '.join(args)} ran out of disk space")
    if (completed.returncode == 0 and args[0] == "build"
            and not (target / "run_results.json").exists()):
        raise BuildFailed(f"dbt {' '.join(args)} exited 0 but wrote no run_results.json; "
                          f"nothing was published. {_tail(completed.stdout + completed.stderr)}")
    if completed.returncode != 0:
        detail = "; ".join(result.failures[:8]) or _tail(completed.stdout + completed.stderr)
        raise BuildFailed(
            f"dbt {' '.join(args)} failed (exit {completed.returncode}); nothing was published. "
            f"{detail}. Full log: {logs / 'dbt.log'}"
        )
    return result


def _run_child(command: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """Run dbt in the refresh's process group, tied to its life, and recorded in the run lock
    so that nothing outlives a killed refresh."""
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, preexec_fn=die_with_parent)
    record_child(process.pid)
    try:
        stdout, stderr = process.communicate()
    except BaseException:
        process.kill()
        process.wait()
        raise
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _read_run_results(path: Path, command: list[str]) -> DbtResult:
    result = DbtResult(command=command)
    if not path.exists():
        return result
    doc = json.loads(path.read_text())
    result.elapsed_seconds = doc.get("elapsed_time")
    for node in doc.get("results", []):
        status = str(node.get("status"))
        result.status_counts[status] = result.status_counts.get(status, 0) + 1
        if status in {"error", "fail"}:
            message = " ".join(str(node.get("message") or "").split())[:300]
            result.failures.append(f"{node.get('unique_id')}: {status} ({message})")
    return result


def _tail(text: str, lines: int = 15) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()]
    return " | ".join(kept[-lines:])
