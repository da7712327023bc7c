"""No interruption leaves the warehouse stuck: the next plain run recovers with no hand work.

The second probe found three states from which every later run failed until someone deleted
files: a resume token the registry no longer accepts, a page file renamed into place whose
manifest line was never written (a kill in between), and a kill between a finished version
folder and the publish switch (the next publish pruned the live version's predecessor and kept
the orphan). Each is reproduced here against a real HTTP server on 127.0.0.1 or real files,
then the next run must finish by itself.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb
import orjson
import pytest
from werkzeug import Request, Response

from flows.errors import SourceError
from flows.ingest import ingest_ctgov
from flows.landing import LandingRun, find_resumable_run
from flows.load import load_ctgov_run
from flows.publish import publish, published_root, published_version
from flows.settings import get_settings, reset_settings_cache
from tests.fixtures.ctgov_records import study

pytestmark = pytest.mark.integration

VERSION = {"apiVersion": "2.0.5", "dataTimestamp": "2026-10-02T09:00:04"}
STUDIES = [study(f"NCT0999{i:04d}", f"2025-0{i}-01") for i in range(1, 6)]


class Registry:
    """/studies served from pages keyed by token; tokens of an earlier paging can expire
    (HTTP 400 ``Invalid pageToken``, as the registry answers) and a token can fail (HTTP 500)."""

    def __init__(self, pages: dict[str | None, dict]) -> None:
        self.pages = pages
        self.expired: set[str] = set()
        self.failing: set[str] = set()
        self.requests: list[str | None] = []

    def __call__(self, request: Request) -> Response:
        token = request.args.get("pageToken")
        self.requests.append(token)
        if token in self.failing:
            return Response("upstream exploded", status=500)
        if token in self.expired or token not in self.pages:
            return Response(f"Invalid pageToken '{token}'", status=400,
                            content_type="text/plain")
        return Response(orjson.dumps(self.pages[token]), content_type="application/json")


def paging(prefix: str) -> dict[str | None, dict]:
    return {None: {"studies": STUDIES[:2], "nextPageToken": f"{prefix}2", "totalCount": 5},
            f"{prefix}2": {"studies": STUDIES[2:4], "nextPageToken": f"{prefix}3"},
            f"{prefix}3": {"studies": STUDIES[4:]}}


@pytest.fixture
def live(httpserver, data_dir, monkeypatch):
    monkeypatch.setenv("BETACELL_CTGOV_BASE_URL", httpserver.url_for("/api/v2"))
    monkeypatch.setenv("BETACELL_CTGOV_REQUESTS_PER_SECOND", "1000")
    reset_settings_cache()
    httpserver.expect_request("/api/v2/version").respond_with_json(VERSION)
    return get_settings()


def loaded_ids(settings, run: LandingRun) -> list[str]:
    """Load the landed run into a fresh raw schema; the study ids loaded (one row each)."""
    con = duckdb.connect(str(settings.data_path / "check.duckdb"))
    try:
        load_ctgov_run(con, run, mode="api", max_reject_share=0.0)
        return [nct for (nct,) in con.execute(
            "select nct_id from raw.ctgov_studies where run_id = ? order by nct_id",
            [run.run_id]).fetchall()]
    finally:
        con.close()


def test_a_resume_token_the_registry_refuses_restarts_the_search_from_page_one(live, httpserver):
    registry = Registry(paging("T"))
    registry.failing.add("T2")
    httpserver.expect_request("/api/v2/studies").respond_with_handler(registry)
    with pytest.raises(SourceError):  # page 1 landed, then the registry failed
        ingest_ctgov(live, source="live")

    registry.pages, registry.expired = paging("U"), {"T2"}  # the token expired meanwhile
    registry.failing.clear()
    outcome = ingest_ctgov(live, source="live")

    assert outcome.run.is_complete
    assert "T2" in registry.requests and registry.requests[-3:] == [None, "U2", "U3"]
    assert any("restarted from page one" in w for w in outcome.warnings), outcome.warnings
    assert loaded_ids(live, outcome.run) == sorted(s["protocolSection"]["identificationModule"]
                                                   ["nctId"] for s in STUDIES)


def test_pages_of_another_query_are_not_kept_when_the_search_restarts(live, httpserver):
    """The refused run searched another window (an explicit --since): its pages do not answer
    the query a fresh search sends, so the run is abandoned and a new one starts."""
    from datetime import date

    registry = Registry(paging("T"))
    registry.failing.add("T2")
    httpserver.expect_request("/api/v2/studies").respond_with_handler(registry)
    with pytest.raises(SourceError):
        ingest_ctgov(live, source="live", since=date(2025, 1, 1))
    old = find_resumable_run(live.raw_dir, "ctgov", _fingerprint(live))

    registry.pages, registry.expired = paging("U"), {"T2"}
    registry.failing.clear()
    outcome = ingest_ctgov(live, source="live")
    assert outcome.run.run_id != old.run_id and outcome.run.is_complete
    assert old.is_abandoned and not old.is_complete
    assert any("answered another query and are not loaded" in w for w in outcome.warnings)
    assert outcome.records_landed == 5 and outcome.since is None
    assert find_resumable_run(live.raw_dir, "ctgov", _fingerprint(live)) is None


class Killed(BaseException):
    """Stands for SIGKILL: nothing after the failing call runs (no except clause catches it)."""


def test_a_kill_between_a_pages_rename_and_its_manifest_line_is_recovered(live, httpserver,
                                                                         monkeypatch):
    registry = Registry(paging("T"))
    httpserver.expect_request("/api/v2/studies").respond_with_handler(registry)
    real_replace = os.replace

    def replace_then_die_on_page_two(source, target, *args, **kwargs):
        real_replace(source, target, *args, **kwargs)
        if str(target).endswith("page-00002.jsonl.zst"):
            raise Killed

    with monkeypatch.context() as patch:
        patch.setattr("flows.landing.os.replace", replace_then_die_on_page_two)
        with pytest.raises(Killed):
            ingest_ctgov(live, source="live")
    run = find_resumable_run(live.raw_dir, "ctgov", _fingerprint(live))
    assert run is not None and (run.dir / "page-00002.jsonl.zst").exists()

    outcome = ingest_ctgov(live, source="live")  # the next plain run
    assert outcome.run.is_complete
    assert loaded_ids(live, outcome.run) == sorted(s["protocolSection"]["identificationModule"]
                                                   ["nctId"] for s in STUDIES)


def test_a_page_file_without_manifest_line_and_without_its_tokens_is_adopted(live, httpserver):
    """The state today's main left: the page file, no manifest line, nothing else. It is checked
    and adopted; its next-page token is lost, so the search restarts from page one."""
    registry = Registry(paging("T"))
    registry.failing.add("T3")
    httpserver.expect_request("/api/v2/studies").respond_with_handler(registry)
    with pytest.raises(SourceError):
        ingest_ctgov(live, source="live")
    run = find_resumable_run(live.raw_dir, "ctgov", _fingerprint(live))
    manifest = (run.dir / "manifest.jsonl").read_bytes().splitlines()
    assert len(manifest) == 2
    (run.dir / "manifest.jsonl").write_bytes(manifest[0] + b"\n")  # page 2's line never written
    for leftover in run.dir.glob("*.pending"):
        leftover.unlink()

    registry.failing.clear()
    outcome = ingest_ctgov(live, source="live")
    assert outcome.run.is_complete
    assert any("page-00002.jsonl.zst" in w and "adopted" in w for w in outcome.warnings)
    assert loaded_ids(live, outcome.run) == sorted(s["protocolSection"]["identificationModule"]
                                                   ["nctId"] for s in STUDIES)


def test_a_broken_page_file_without_manifest_line_is_moved_aside(live, httpserver):
    registry = Registry(paging("T"))
    registry.failing.add("T2")
    httpserver.expect_request("/api/v2/studies").respond_with_handler(registry)
    with pytest.raises(SourceError):
        ingest_ctgov(live, source="live")
    run = find_resumable_run(live.raw_dir, "ctgov", _fingerprint(live))
    (run.dir / "page-00002.jsonl.zst").write_bytes(b"\x28\xb5\x2f\xfd truncated")

    registry.failing.clear()
    outcome = ingest_ctgov(live, source="live")
    assert outcome.run.is_complete
    aside = list((run.dir / "aside").iterdir())
    assert any(p.name == "page-00002.jsonl.zst" for p in aside)
    assert any("moved aside" in w for w in outcome.warnings)
    assert len(loaded_ids(live, outcome.run)) == 5


def _fingerprint(settings) -> str:
    from flows.ingest import _fingerprint
    from flows.sources.topic import load_topic

    return _fingerprint(load_topic(settings.topic_file), "api")


# -- the publish switch --------------------------------------------------------------------------
def tiny_build(path: Path, rows: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    con.execute("create schema marts")
    con.execute(f"create table marts.dim_trials as select range as trial_id from range({rows})")
    con.close()
    return path


def test_a_version_folder_never_switched_to_is_pruned_and_the_live_ones_kept(data_dir):
    settings = get_settings()
    build = settings.build_database
    first = publish(settings, tiny_build(build, 1)).version
    second = publish(settings, tiny_build(build, 2)).version
    root = published_root(settings)
    # a kill after the new version folder was renamed into place, before the switch:
    orphan = root / "29991231T235959000000Z-0rphan00"
    shutil.copytree(root / second, orphan)
    os.utime(orphan)  # the newest folder on disk
    third = publish(settings, tiny_build(build, 3)).version

    assert published_version(settings) == third
    kept = sorted(p.name for p in root.iterdir() if not p.name.startswith("."))
    assert kept == sorted([second, third]), kept  # live and previously live; orphan and oldest go
    assert first not in kept


def test_publishing_again_and_again_keeps_the_live_version_and_the_one_before(data_dir):
    settings = get_settings()
    versions = [publish(settings, tiny_build(settings.build_database, n)).version
                for n in range(1, 5)]
    assert sorted(p.name for p in published_root(settings).iterdir()
                  if not p.name.startswith(".")) == sorted(versions[-2:])


def test_after_the_interruptions_and_with_odd_records_the_next_plain_refresh_publishes(
        published_copy, monkeypatch):
    """One refresh after all three stuck states at once (> 30 s: a full rebuild, 2-3 min; one
    run serves both this and the odd records of ``test_odd_records.py``): an interrupted search
    whose second page was renamed in without its manifest line and whose resume token the
    registry no longer takes, and a version folder a kill left before its switch; the snapshot
    holds odd records besides. It publishes with no hand work, and says what it recovered."""
    from flows.refresh import refresh_warehouse
    from flows.state import read_previous_state
    from tests.faults.test_odd_records import assert_odd_records_handled, inject_odd_records

    settings = published_copy
    monkeypatch.setenv("BETACELL_CTGOV_PAGE_SIZE", "40")
    reset_settings_cache()
    settings = get_settings()
    inject_odd_records(settings.snapshot_path)
    live_before = published_version(settings)
    real_replace = os.replace

    def replace_then_die_on_page_two(source, target, *args, **kwargs):
        real_replace(source, target, *args, **kwargs)
        if str(target).endswith("page-00002.jsonl.zst"):
            raise Killed

    with monkeypatch.context() as patch:
        patch.setattr("flows.landing.os.replace", replace_then_die_on_page_two)
        with pytest.raises(Killed):
            ingest_ctgov(settings, source="snapshot", full=True,
                         previous=read_previous_state(settings))
    run = max((settings.raw_dir / "ctgov").iterdir())
    assert not (run / "_COMPLETE").exists() and (run / "page-00002.jsonl.zst").exists()
    for pending in run.glob("*.pending"):  # the token it recorded has expired meanwhile
        entry = orjson.loads(pending.read_bytes())
        pending.write_bytes(orjson.dumps({**entry, "next_page_token": "expired-token"}))
    orphan = published_root(settings) / "29991231T235959000000Z-0rphan00"
    shutil.copytree(published_root(settings) / live_before, orphan)

    summary = refresh_warehouse(source="snapshot", full=True)

    assert summary["published_version"] and published_version(settings) == summary[
        "published_version"]
    assert not orphan.exists() and (published_root(settings) / live_before).is_dir()
    assert any("restarted from page one" in w for w in summary["warnings"]), summary["warnings"]
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        assert con.execute("select count(*) = count(distinct nct_id) from raw.ctgov_studies "
                           "where run_id = ?", [run.name]).fetchone() == (True,)
    finally:
        con.close()
    assert summary["run_id"] == run.name
    assert_odd_records_handled(settings, summary)
