"""Every failure is alerted, and the terminal gets one paragraph, not Prefect's tracebacks.

The probe: a configuration error found by the command line (a data directory that cannot be
written) sent no alert, because the check runs before the flow and its failure hook; a failed
run printed about 80 traceback lines from Prefect's own logger; and a failed ``/version``
request said "the next run resumes from the last landed page" though no page was fetched."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from flows.settings import REPO_DIR
from tests.integration.test_live_corpus import serve_hook
from tests.standin.corpus import live_corpus
from tests.standin.server import serve

pytestmark = pytest.mark.integration


def cli(env_overrides: dict[str, str], *args: str, timeout: float = 600):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PREFECT_", "BETACELL_"))}
    env.update(PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180", **env_overrides)
    return subprocess.run([sys.executable, "-m", "flows.cli", "run", *args], env=env,
                          cwd=REPO_DIR, capture_output=True, text=True, timeout=timeout)


def test_a_data_directory_that_cannot_be_written_is_alerted_from_the_command_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with serve_hook() as hook:
        run = cli({"BETACELL_DATA_DIR": str(blocker / "data"),
                   "BETACELL_ALERT_WEBHOOK_URL": hook.url_for("/hook")}, timeout=120)
        alerts = [request.get_data(as_text=True) for request, _ in hook.log]
    output = " ".join((run.stdout + run.stderr).split())
    assert run.returncode == 1, output
    assert "is not writable (BETACELL_DATA_DIR)" in output and "Traceback" not in output
    assert len(alerts) == 1 and "did not start" in alerts[0] and "not writable" in alerts[0]


def test_invalid_settings_are_alerted_to_the_webhook_the_environment_names(tmp_path):
    with serve_hook() as hook:
        run = cli({"BETACELL_DATA_DIR": str(tmp_path / "data"),
                   "BETACELL_CTGOV_PAGE_SIZE": "0",
                   "BETACELL_ALERT_WEBHOOK_URL": hook.url_for("/hook")}, timeout=120)
        alerts = [request.get_data(as_text=True) for request, _ in hook.log]
    assert run.returncode == 1
    assert alerts and "BETACELL_CTGOV_PAGE_SIZE" in alerts[0]


def test_a_failed_run_prints_one_paragraph_and_keeps_the_traceback_in_the_log_file(tmp_path,
                                                                                  prefect_api):
    """Two real runs, recorded on the session's Prefect server: ClinicalTrials.gov's /version
    fails, so the run fails before any page; without --debug the terminal has the paragraph,
    the log file the traceback; with --debug the terminal has the traceback too."""
    data = tmp_path / "data"
    with serve(live_corpus()) as (standin, urls):
        standin.faults["ctgov"] = "500"
        settings = {**urls, "BETACELL_DATA_DIR": str(data), "PREFECT_HOME": str(tmp_path / "p"),
                    "BETACELL_OUTCOMES_DIR": str(REPO_DIR / "data" / "outcomes"),
                    "BETACELL_HTTP_MAX_ATTEMPTS": "1", "BETACELL_SOURCE_RETRY_DELAYS_SECONDS": "",
                    "PREFECT_API_URL": prefect_api.url}
        quiet = cli(settings, "--source", "live")
        loud = cli(settings, "--source", "live", "--debug")
    output = quiet.stdout + quiet.stderr
    assert quiet.returncode == 1, output[-3000:]
    assert "/version still failing after 1 attempts" in " ".join(output.split())
    assert "Traceback" not in output, output[-3000:]
    assert "resumes" not in output  # nothing was paged, so nothing resumes
    log = (data / "logs" / "refresh.log").read_text()
    assert "Traceback (most recent call last)" in log and "/version" in log
    assert loud.returncode == 1 and "Traceback" in loud.stdout + loud.stderr
