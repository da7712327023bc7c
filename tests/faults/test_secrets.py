"""The NCBI API key never leaves the process, even when the server echoes it back.

A stand-in for E-utilities answers HTTP 400 with a body that quotes the request, key included
(as NCBI's error replies do). PubMed is made critical, so the run fails and every reporting path
runs: the terminal, ``data/quality/last_failure.json``, the alert webhook, the ledger, and
Prefect's own database (flow and task run states, logs: the session's Prefect server records the
run) and the run's PREFECT_HOME. The key must appear in none of them."""

from __future__ import annotations

import os
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


# -- every secret-bearing setting, in every form -------------------------------------------------
LAKE_PASSWORD = "LakePw-7f3a9c21e5"
LAKE_CATALOGS = {  # the lake's PostgreSQL password in libpq-URI and password= forms
    "uri": f"postgres:postgresql://betacell:{LAKE_PASSWORD}@127.0.0.1:1/lake",
    "conninfo": f"postgres:dbname=lake host=127.0.0.1 port=1 user=betacell "
                f"password={LAKE_PASSWORD}",
}


@pytest.mark.parametrize("form", sorted(LAKE_CATALOGS))
def test_the_lake_password_is_masked_in_the_error_and_its_whole_chain(tmp_path, monkeypatch,
                                                                      form):
    """No PostgreSQL listens on port 1: DuckDB's attach error quotes the connection string."""
    import traceback

    from flows import lake
    from flows.settings import Settings

    settings = Settings(data_dir=tmp_path, lake_catalog=LAKE_CATALOGS[form],
                        lake_data_path=str(tmp_path / "lake"))
    warehouse = tmp_path / "w.duckdb"
    warehouse.touch()
    for attempt in (lambda: lake.snapshots(settings),
                    lambda: lake.publish_to_lake(settings, warehouse, "run-1")):
        with pytest.raises(lake.LakeError) as caught:
            attempt()
        chain = "".join(traceback.format_exception(caught.value))
        assert "Connection refused" in chain or "connect" in chain.lower(), chain[-1500:]
        assert LAKE_PASSWORD not in chain, chain[-1500:]


@pytest.mark.parametrize("form", sorted(LAKE_CATALOGS))
def test_the_lake_command_prints_one_masked_paragraph_not_a_raw_traceback(tmp_path, form):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BETACELL_")}
    env.update(BETACELL_DATA_DIR=str(tmp_path), BETACELL_LAKE_CATALOG=LAKE_CATALOGS[form],
               BETACELL_LAKE_DATA_PATH=str(tmp_path / "lake"))
    for extra in ([], ["--debug"]):
        run = subprocess.run([sys.executable, "-m", "flows.lake", *extra, "snapshots"], env=env,
                             cwd=REPO_DIR, capture_output=True, text=True, timeout=120)
        output = run.stdout + run.stderr
        assert run.returncode == 1, output[-2000:]
        assert LAKE_PASSWORD not in output, output[-2000:]
        assert "could not be attached" in output
        assert ("Traceback" in output) == bool(extra)


def test_a_key_echoed_in_a_successful_reply_is_never_stored_under_raw(data_dir, monkeypatch):
    """E-utilities answering 200 with the key inside the body (the probe's stand-in echoed
    the request): the landed document keeps everything else, the key is ***."""
    from datetime import date

    from flows.settings import get_settings, reset_settings_cache
    from tests.helpers import extract, load_landed

    with serve(live_corpus()) as (standin, urls):
        standin.faults["eutils"] = "echo-ok"
        for name, value in urls.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("BETACELL_NCBI_API_KEY", API_KEY)
        reset_settings_cache()
        settings = get_settings()
        outcome = extract("pubmed", settings, today=date(2026, 6, 1))
    assert outcome.records_landed > 0
    assert files_containing(data_dir, API_KEY.encode()) == []
    landed = b"".join(outcome.run.read_document(e) for e in outcome.run.entries())
    assert b"api_key=***" in landed  # the echo is there, masked
    import duckdb

    con = duckdb.connect(str(data_dir / "check.duckdb"))
    try:
        assert load_landed(con, outcome.run, max_reject_share=0.0).records_loaded > 0
    finally:
        con.close()


def test_every_secret_setting_is_masked_in_both_forms_wherever_it_is_quoted():
    from flows.redaction import redact
    from flows.settings import Settings

    Settings(lake_catalog=LAKE_CATALOGS["conninfo"].replace(LAKE_PASSWORD, "pw with 'quote"),
             s3_secret="S3SECRETVALUE", alert_webhook_url="https://hooks.example/T0/B0/XYZ",
             ncbi_api_key="NCBIKEYVALUE")
    Settings(lake_catalog="postgres:postgresql://u:p%40ss%2Fword@db/lake")
    for text, secret in [(f"attach failed: {LAKE_CATALOGS['uri']}", LAKE_PASSWORD),
                         ("host=db password='pw with \\'quote' user=x", "pw with"),
                         ("uri postgresql://u:p%40ss%2Fword@db/lake failed", "p%40ss"),
                         ("decoded p@ss/word in a message", "p@ss/word"),
                         ("s3 said S3SECRETVALUE", "S3SECRETVALUE"),
                         ("POST https://hooks.example/T0/B0/XYZ failed", "XYZ"),
                         ("echo NCBIKEYVALUE", "NCBIKEYVALUE"),
                         ("any://someone:hunter22@host/x", "hunter22")]:
        assert secret not in redact(text), text


def test_the_lake_password_reaches_no_file_alert_terminal_or_prefect_state(tmp_path,
                                                                          dbt_parse_state,
                                                                          prefect_api):
    """A whole snapshot refresh from the command line, recorded on the session's Prefect server,
    with the lake catalog in libpq-URI form, at a port where no PostgreSQL listens. The run
    fails at the lake; the password is in no terminal line, alert, file under the data
    directory, nor Prefect's database.
    Why over 30 s: the lake step comes after a whole build and the single-file publish."""
    from tests.conftest import seed_parse_state

    data, prefect_home = tmp_path / "data", tmp_path / "prefect"
    seed_parse_state(data, dbt_parse_state)
    failed_before = failed_flow_runs(prefect_api)
    with serve_hook() as hook:
        env = {k: v for k, v in cli_env(prefect_api).items() if not k.startswith("BETACELL_")}
        env.update(BETACELL_DATA_DIR=str(data), PREFECT_HOME=str(prefect_home),
                   BETACELL_SNAPSHOT_DIR=str(REPO_DIR / "data" / "snapshot"),
                   BETACELL_OUTCOMES_DIR=str(REPO_DIR / "data" / "outcomes"),
                   BETACELL_LAKE_CATALOG=LAKE_CATALOGS["uri"],
                   BETACELL_LAKE_DATA_PATH=str(tmp_path / "lake"),
                   BETACELL_LAKE_PUBLISH_ATTEMPTS="1",
                   BETACELL_ALERT_WEBHOOK_URL=hook.url_for("/hook"),
                   PREFECT_SERVER_ANALYTICS_ENABLED="false",
                   PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180")
        run = subprocess.run([sys.executable, "-m", "flows.cli", "run", "--source", "snapshot"],
                             env=env, cwd=REPO_DIR, capture_output=True, text=True, timeout=1200)
        alerts = [request.get_data(as_text=True) for request, _ in hook.log]
    output = run.stdout + run.stderr
    assert run.returncode != 0, output[-2000:]
    assert "could not be attached" in " ".join(output.split()), output[-2000:]
    assert LAKE_PASSWORD not in output
    assert alerts and all(LAKE_PASSWORD not in body for body in alerts)
    # The single-file publish went through, so its digest may come first; the failure follows.
    assert any("could not be attached" in body for body in alerts), alerts
    assert files_containing(data, LAKE_PASSWORD.encode()) == []
    recorded = {run_id: message for run_id, message in failed_flow_runs(prefect_api).items()
                if run_id not in failed_before}
    assert any("could not be attached" in message for message in recorded.values()), \
        "the failed run is not in the session server's database: the test looked elsewhere"
    assert files_containing(prefect_api.database_dir, LAKE_PASSWORD.encode()) == []
    assert files_containing(prefect_home, LAKE_PASSWORD.encode()) == []


def test_a_short_secret_never_changes_landed_records():
    """A session's S3 secret 'test' turned 'Gastrointestinal disorders' into 'Gastroin***inal
    disorders' in a landed study, so a rerun of the same inputs loaded it as a new version. Keys
    a server may echo are long; a short secret is masked in messages, never in data."""
    from flows.redaction import mask_secrets, redact, register_secret

    register_secret("test")
    register_secret(API_KEY)
    body = b'{"organSystem":"Gastrointestinal disorders","echo":"api_key=' + API_KEY.encode() + b'"}'
    assert mask_secrets(body) == b'{"organSystem":"Gastrointestinal disorders","echo":"api_key=***"}'
    assert "test" not in redact("the S3 secret is test")
