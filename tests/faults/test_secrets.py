"""The NCBI API key never leaves the process, even when the server echoes it back.

A stand-in for E-utilities answers HTTP 400 with a body that quotes the request, key included
(as NCBI's error replies do). PubMed is made critical, so the run fails and every reporting path
runs: the terminal, ``data/quality/last_failure.json``, the alert webhook, the ledger, and
Prefect's own database (flow and task run states, logs: the session's Prefect server records the
run) and the run's PREFECT_HOME. The key must appear in none of them."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from flows.settings import REPO_DIR
from tests.conftest import cli_env
from tests.integration.test_live_corpus import serve_hook
from tests.standin.corpus import live_corpus
from tests.standin.server import serve

pytestmark = pytest.mark.integration

API_KEY = "NCBIKEY0123456789abcdef0123456789ab"


def files_containing(root: Path, needle: bytes) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and needle in path.read_bytes():
            found.append(str(path.relative_to(root)))
    return found


def failed_flow_runs(prefect_api) -> dict[str, str]:
    """The failed flow runs in the session server's database, with their state messages."""
    (database,) = prefect_api.database_dir.glob("*.db")
    con = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        return dict(con.execute("select r.id, coalesce(s.message, '') from flow_run r "
                                "join flow_run_state s on s.id = r.state_id "
                                "where r.state_type = 'FAILED'").fetchall())
    finally:
        con.close()


def test_an_echoed_api_key_reaches_no_file_alert_terminal_or_prefect_state(tmp_path,
                                                                             prefect_api):
    data, prefect_home = tmp_path / "data", tmp_path / "prefect"
    failed_before = failed_flow_runs(prefect_api)
    with serve(live_corpus()) as (standin, urls), serve_hook() as hook:
        standin.faults["eutils"] = "echo"
        env = cli_env(prefect_api)
        env.update(urls, BETACELL_DATA_DIR=str(data), PREFECT_HOME=str(prefect_home),
                   BETACELL_NCBI_API_KEY=API_KEY, BETACELL_CRITICAL_SOURCES="ctgov,pubmed",
                   BETACELL_OUTCOMES_DIR=str(REPO_DIR / "data" / "outcomes"),
                   BETACELL_HTTP_MAX_ATTEMPTS="1", BETACELL_SOURCE_RETRY_DELAYS_SECONDS="",
                   BETACELL_ALERT_WEBHOOK_URL=hook.url_for("/hook"),
                   PREFECT_SERVER_ANALYTICS_ENABLED="false")
        run = subprocess.run([sys.executable, "-m", "flows.cli", "run", "--source", "live"],
                             env=env, cwd=REPO_DIR, capture_output=True, text=True, timeout=600)
        alerts = [request.get_data(as_text=True) for request, _ in hook.log]
        echoed = [(service, path) for service, path in standin.requests if service == "eutils"]

    assert run.returncode != 0, run.stdout[-2000:]
    assert echoed, "the stand-in was never asked, so nothing was tested"
    assert "HTTP 400" in run.stdout + run.stderr and "api_key=***" in run.stdout + run.stderr
    assert API_KEY not in run.stdout + run.stderr
    assert alerts and all(API_KEY not in body for body in alerts)
    assert "HTTP 400" in alerts[0]
    failure = (data / "quality" / "last_failure.json").read_text()
    assert "HTTP 400" in failure and API_KEY not in failure
    assert files_containing(data, API_KEY.encode()) == []
    recorded = {run_id: message for run_id, message in failed_flow_runs(prefect_api).items()
                if run_id not in failed_before}
    assert any("HTTP 400" in message for message in recorded.values()), \
        "the failed run is not in the session server's database: the test looked elsewhere"
    prefect_files = list(prefect_api.database_dir.rglob("*.db*"))
    assert prefect_files, "Prefect's database was not where the test looked"
    # where the key would be, the server's database has it masked (the logs and states arrived)
    assert files_containing(prefect_api.database_dir, b"api_key=***")
    assert files_containing(prefect_api.database_dir, API_KEY.encode()) == []
    assert files_containing(prefect_home, API_KEY.encode()) == []
