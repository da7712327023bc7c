"""A user's day two (issue 27): an offline live run says so within two minutes and `status`
shows the failure; a running refresh is refused before a Prefect server starts; a no-op run
prints the live version's real paths and where it looked for outcome sheets; `betacell docs`
on a read-only data directory is one paragraph."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from flows.settings import REPO_DIR, Settings

pytestmark = pytest.mark.integration


def cli(env_overrides: dict[str, str], *args: str, timeout: float = 300,
        wrapper: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """``betacell <args>`` in its own process, with only the settings given (a temporary
    Prefect server of its own, as a user's run has)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "BETACELL_"))}
    env.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", COLUMNS="200",
               PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180", **env_overrides)
    return subprocess.run([*wrapper, sys.executable, "-m", "flows.cli", *args], env=env,
                          cwd=REPO_DIR, capture_output=True, text=True, timeout=timeout)


def closed_port() -> int:
    with socket.socket() as sock:  # bound, never listening: connections are refused
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def paragraphs(text: str) -> list[str]:
    return [" ".join(p.split()) for p in text.split("\n\n") if p.strip()]


def test_an_offline_live_run_says_so_within_two_minutes_and_status_shows_it(published_copy,
                                                                             tmp_path):
    """Before: about 9 minutes of silence, tracebacks, and `status` showing ClinicalTrials.gov
    as fresh.

    Why over 30 s: the 5 + 20 + 30 s of waits are the behaviour under test (~1.5 min wall with
    the run's own temporary Prefect server, as a user's run has)."""
    settings = published_copy
    live = (settings.data_path / "current").readlink().name
    port = closed_port()
    env = {"BETACELL_DATA_DIR": str(settings.data_path),
           "BETACELL_SNAPSHOT_DIR": str(settings.snapshot_path),
           "BETACELL_OUTCOMES_DIR": str(settings.outcomes_path),
           "PREFECT_HOME": str(tmp_path / "prefect"),
           "BETACELL_CTGOV_BASE_URL": "http://clinicaltrials.betacell.invalid/api/v2",
           **{f"BETACELL_{name}_BASE_URL": f"http://127.0.0.1:{port}/{name.lower()}"
              for name in ("PUBMED", "EUROPEPMC", "CTIS")}}
    started = time.monotonic()
    run = cli(env, "run", "--source", "live", timeout=240)
    took = time.monotonic() - started
    output = run.stdout + run.stderr
    assert run.returncode == 1, output[-3000:]
    assert took < 120, f"the offline run took {took:.0f} s"
    assert "Traceback" not in output, output[-3000:]
    progress = " ".join(run.stdout.split())
    for n, wait in ((1, 5), (2, 20), (3, 30)):
        assert f"ClinicalTrials.gov unreachable, retry {n}/3 in {wait} s (the name " \
               "clinicaltrials.betacell.invalid does not resolve" in progress
    [message] = paragraphs(run.stderr)  # one paragraph, nothing else
    assert message.startswith("Error: ClinicalTrials.gov is unreachable: the name "
                              "clinicaltrials.betacell.invalid does not resolve")
    assert "resumes" not in message  # nothing landed
    assert f"Nothing was published: version {live} (published " in message
    assert message.endswith("stays live. To build from the shipped snapshot instead (offline), "
                            "run `betacell run --source snapshot`.")
    assert (settings.data_path / "current").readlink().name == live

    status = cli(env, "status", timeout=120)
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert lines[0].startswith("Last refresh FAILED (") and \
        "ClinicalTrials.gov is unreachable" in lines[0]
    [row] = [line for line in lines if line.startswith("│ ClinicalTrials.gov")]
    assert "│ FAILED (last good:" in row  # beside the last success (its time, its records)
    assert row.count(" UTC ") == 1  # the failed attempt's time, beside the last load's


def test_a_running_refresh_is_refused_before_a_prefect_server_starts(settings, tmp_path):
    from flows.runlock import refresh_lock

    home = tmp_path / "prefect"
    with refresh_lock(settings):
        started = time.monotonic()
        run = cli({"BETACELL_DATA_DIR": str(settings.data_path), "PREFECT_HOME": str(home),
                   "BETACELL_SNAPSHOT_DIR": str(settings.snapshot_path),
                   "BETACELL_OUTCOMES_DIR": str(settings.outcomes_path)},
                  "run", "--source", "snapshot", timeout=180)
        took = time.monotonic() - started
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"another refresh is running on {settings.data_path} (pid {os.getpid()}" in \
        " ".join(run.stderr.split())
    assert not (home / "prefect.db").exists(), "a temporary Prefect server was started"
    assert took < 15, f"refused after {took:.1f} s"


def test_a_no_op_run_prints_the_live_paths_and_where_it_looked_for_sheets(published_copy,
                                                                          monkeypatch, capsys):
    from flows import cli as betacell
    from flows.refresh import refresh_warehouse
    from flows.settings import get_settings, reset_settings_cache

    nowhere = published_copy.data_path / "no-outcomes-here"
    monkeypatch.setenv("BETACELL_OUTCOMES_DIR", str(nowhere))
    reset_settings_cache()
    settings = get_settings()
    live = (settings.data_path / "current").readlink().name
    summary = refresh_warehouse(source="snapshot")
    assert summary["nothing_changed"] and not summary["warehouse"]
    capsys.readouterr()
    betacell._print_summary(summary, settings)
    out = " ".join(capsys.readouterr().out.split())
    warehouse = settings.warehouse_path
    assert "Published: " not in out and "connect('', " not in out
    assert f"Live (unchanged): {warehouse} (version {live}, published " in out
    assert f"duckdb -readonly {warehouse} " in out
    assert f"duckdb.connect('{warehouse}', read_only=True)" in out
    assert f"No outcome sheets found: no outcome sheet in {nowhere} (folder not found" in out
    assert "BETACELL_OUTCOMES_DIR sets the folder" in out


def read_only(path: Path) -> tuple[str, ...]:
    """Make ``path`` read-only for a child process: its mode, and for root (who writes anyway)
    a child without the capabilities that override file modes."""
    path.chmod(0o555)
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot make a directory read-only")
    return (setpriv, "--bounding-set", "-dac_override,-dac_read_search", "--")


def test_docs_on_a_read_only_data_directory_is_one_paragraph(settings: Settings):
    settings.data_path.mkdir(parents=True, exist_ok=True)
    duckdb.connect(str(settings.warehouse_path)).close()  # something published to document
    wrapper = read_only(settings.data_path)
    try:
        run = cli({"BETACELL_DATA_DIR": str(settings.data_path)}, "docs", "--no-serve",
                  timeout=120, wrapper=wrapper)
    finally:
        settings.data_path.chmod(0o755)
    assert run.returncode == 1
    assert "Traceback" not in run.stdout + run.stderr
    [message] = paragraphs(run.stderr)
    assert message.startswith(f"Error: cannot write the dbt docs to {settings.data_path / 'docs'}"
                              ": Permission denied")
    assert f"make {settings.data_path} writable" in message
    assert not (settings.data_path / "docs").exists()
