"""`betacell run --source live`, end to end, against a local stand-in for the public APIs
serving a live-like corpus (tests/standin/): our curated trials, several hundred real off-topic
diabetes trials, records without descriptions, a real record with a results section, a real
PubMed record linking to a trial the registry does not know; CTIS answers a shape it does not
expect. The run must publish, classify the off-topic trials as such, fetch the trials the
curated sheet names but the search did not return, list what stays unresolved, and mark CTIS
stale (summary, `betacell status`, alert, dashboard)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from flows.errors import SourceError
from flows.refresh import refresh_warehouse
from flows.settings import REPO_DIR, reset_settings_cache
from tests.helpers import assert_marts_keep_their_contracts, query
from tests.standin.corpus import HIDDEN_FROM_SEARCH, live_corpus
from tests.standin.server import serve
from tools.classification_report import report

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def live_run(tmp_path_factory, dbt_parse_state, prefect_api):
    """One CLI run against the stand-in per test session (shared by the xdist workers under a
    file lock), recorded on the session's Prefect server; the tests below read what it
    published."""
    from filelock import FileLock

    from tests.conftest import session_dir

    root = session_dir(tmp_path_factory, "live")
    done = root / "run.json"
    with FileLock(f"{root}.lock"):
        if not done.exists():
            done.write_text(json.dumps(run_live_cli(root, dbt_parse_state, prefect_api)))
    result = json.loads(done.read_text())
    return {**result, "warehouse": root / "data" / "warehouse.duckdb"}


def run_live_cli(root, dbt_parse_state, prefect_api) -> dict:
    from tests.conftest import cli_env, seed_parse_state

    data = root / "data"
    seed_parse_state(data, dbt_parse_state)
    with serve(live_corpus()) as (standin, urls), serve_hook() as hook:
        standin.faults["ctis"] = "shape"
        env = cli_env(prefect_api)
        env.update(urls, BETACELL_DATA_DIR=str(data),
                   BETACELL_OUTCOMES_DIR=str(REPO_DIR / "data" / "outcomes"),
                   BETACELL_HTTP_MAX_ATTEMPTS="2", BETACELL_HTTP_BACKOFF_INITIAL_SECONDS="0",
                   BETACELL_SOURCE_RETRY_DELAYS_SECONDS="",
                   BETACELL_ALERT_WEBHOOK_URL=hook.url_for("/hook"))
        run = subprocess.run([sys.executable, "-m", "flows.cli", "run", "--source", "live"],
                             env=env, cwd=REPO_DIR, capture_output=True, text=True, timeout=600)
        alerts = [request.get_json()["text"] for request, _ in hook.log]
    status = subprocess.run([sys.executable, "-m", "flows.cli", "status"], env=env, cwd=REPO_DIR,
                            capture_output=True, text=True, timeout=120)
    return {"returncode": run.returncode, "stdout": run.stdout, "stderr": run.stderr[-5000:],
            "status_returncode": status.returncode, "status": status.stdout, "alerts": alerts}


def serve_hook():
    from pytest_httpserver import HTTPServer

    class Hook:
        def __enter__(self):
            self.server = HTTPServer(host="127.0.0.1", port=0)
            self.server.expect_request("/hook", method="POST").respond_with_data("ok")
            self.server.start()
            return self.server

        def __exit__(self, *exc):
            self.server.clear()
            self.server.stop()

    return Hook()


def test_the_live_run_publishes_with_ctis_stale(live_run):
    assert live_run["returncode"] == 0, live_run["stdout"][-2000:] + live_run["stderr"][-2000:]
    assert "ctis failed; its last good data stay (stale)" in " ".join(live_run["stdout"].split())
    assert_marts_keep_their_contracts(live_run["warehouse"])
    failed = query(live_run["warehouse"], "select source, message from raw.ingest_runs "
                                          "where status = 'failed'")
    assert [s for s, _ in failed] == ["ctis"] and "unexpected body" in failed[0][1]
    assert any("ctis" in text and "stale" in text for text in live_run["alerts"])
    status = " ".join(live_run["status"].split())
    assert live_run["status_returncode"] == 0 and "STALE" in status and "EU CTIS" in status


def test_the_trials_the_search_missed_are_fetched_by_id(live_run):
    trials = {t for (t,) in query(live_run["warehouse"], "select trial_id from marts.dim_trials")}
    assert set(HIDDEN_FROM_SEARCH) <= trials
    fetched = {r for (r,) in query(live_run["warehouse"],
                                   "select registry_id from raw.reference_checks "
                                   "where status = 'fetched'")}
    assert fetched == set(HIDDEN_FROM_SEARCH)


def test_what_stays_unresolved_is_listed_with_its_reason(live_run):
    unresolved = {r: (reason, by) for r, reason, by in query(
        live_run["warehouse"],
        "select registry_id, unresolved_reason, referenced_by from marts.unresolved_references")}
    reason, by = unresolved["NCT02149199"]  # named by the real PubMed record's DataBank
    assert "not found" in reason and by == ["pubmed_databank:pmid:29768149"]
    assert "not found" in unresolved["NCT01121029"][0]
    assert "WHO ICTRP exports" in unresolved["ChiCTR2300072200"][0]
    assert set(HIDDEN_FROM_SEARCH).isdisjoint(unresolved)
    assert "referenced trial id(s) could not be resolved" in " ".join(
        live_run["stdout"].split())


def test_off_topic_trials_are_not_put_into_a_therapy_class(live_run, capsys):
    rows = query(live_run["warehouse"], "select trial_id, therapy_class, therapy_class_rule "
                                        "from intermediate.int_trial_classification")
    result = report({t: c for t, c, _ in rows}, {t: r for t, _, r in rows}, None)
    off = result["offtopic_all"]
    with capsys.disabled():
        print(f"\noff-topic: {off['into_a_class']} of {off['n']} in a therapy class "
              f"({off['share']:.1%}), {off['needs_review']} to review")
        for name in ("development", "held_out", "all"):
            part = result[name]
            print(f"curated {name}: {part['agreement']:.1%} of {part['n']}; "
                  f"{part['to_review']} to review; {part['agreement_decided']:.1%} of the rest")
    assert off["n"] > 250 and off["share"] <= 0.01
    assert result["held_out"]["agreement"] >= 0.94
    assert result["held_out"]["agreement_decided"] >= 0.97


def test_a_publication_linked_to_no_classified_trial_is_unclassified(live_run):
    assert query(live_run["warehouse"], "select therapy_class, therapy_class_source "
                                        "from marts.dim_publications "
                                        "where publication_id = 'pmid:29768149'") == [
        ("unclassified", "keywords")]


def test_thin_records_go_to_the_review_queue(live_run):
    queue = dict(query(live_run["warehouse"], "select trial_id, review_reason from "
                                              "marts.classification_review_queue"))
    assert "products named only by codes" in queue["NCT05626712"]  # CELZ-201
    assert "products named only by codes" in queue["NCT06789302"]  # DT2-SCT
    assert any(reason == "no intervention listed in the record" for reason in queue.values())


def test_a_failing_critical_source_publishes_nothing(pipeline_settings, monkeypatch, httpserver):
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    corpus = live_corpus()
    with serve(corpus) as (standin, urls):
        standin.faults["ctgov"] = "500"
        for key, value in {**urls, "BETACELL_ALERT_WEBHOOK_URL": httpserver.url_for("/hook"),
                           "BETACELL_HTTP_MAX_ATTEMPTS": "2"}.items():
            monkeypatch.setenv(key, value)
        reset_settings_cache()
        with pytest.raises(SourceError, match="HTTP 500"):
            refresh_warehouse(source="live")
    assert not pipeline_settings.warehouse_path.exists()
    (request, _), *_ = httpserver.log
    assert "failed" in request.get_json()["text"]


def test_the_quality_page_shows_the_stale_source_and_the_unresolved(live_run, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("BETACELL_DATA_DIR", str(live_run["warehouse"].parent))
    monkeypatch.syspath_prepend(str(REPO_DIR / "dashboards"))
    reset_settings_cache()
    app = AppTest.from_file(str(REPO_DIR / "dashboards" / "pages" / "6_Data_quality.py"),
                            default_timeout=60)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert any("EU CTIS" in e.value and "unexpected body" in e.value for e in app.error)
    (unresolved,) = query(live_run["warehouse"], "select count(*) from marts.unresolved_references")
    assert any(c.value.startswith(f"{unresolved[0]} trial id(s)") for c in app.caption)
    reset_settings_cache()
