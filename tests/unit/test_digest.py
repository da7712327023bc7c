"""The living-evidence digest on small hand-made warehouses: the previous version copied into raw
before a build, and after a publish the digest, the accumulating Atom feed, the PRISMA diagram
and the `digest` webhook event (a real HTTP server), or nothing when nothing moved."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import duckdb
import pytest

from flows import digest
from flows.db import ensure_raw_schema

ATOM = "{http://www.w3.org/2005/Atom}"
ROW = "all_sources:no_overlaps:any_design:msc:-:T1D:insulin_independence:ii_at_timepoint:m6_18"


def make_version(data: Path, version: str, previous: str | None, changes: list[tuple]) -> Path:
    """data/published/<version>/warehouse.duckdb with the tables the digest reads."""
    folder = data / "published" / version
    folder.mkdir(parents=True)
    con = duckdb.connect(str(folder / "warehouse.duckdb"))
    ensure_raw_schema(con)
    if previous:
        con.execute("insert into raw.previous_version values (?, now(), now())", [previous])
    con.execute("create schema meta; create schema marts")
    con.execute("create table meta.published_version as select ? as version_id, "
                "timestamptz '2026-12-05 10:00:00+00' as published_at", [version])
    con.execute("create table marts.therapy_outcome_comparison as "
                "select * from (values (true), (false), (false)) t(is_headline)")
    con.execute("create table marts.dim_trials as select 'NCT00000001' as trial_id")
    con.execute("""create table marts.prisma_flow as select * from (values
        (3, 'screened', 'registers and databases', 'registers', 'trial', 1, 'unique trials'))
        t(stage_order, stage, path, source, record_type, "count", reason)""")
    con.execute("""create table marts.evidence_changes (change_type varchar, entity_type varchar,
        entity_id varchar, label varchar, is_headline boolean, before varchar, after varchar,
        fact_ids_added varchar[], fact_ids_removed varchar[])""")
    for change in changes:
        con.execute("insert into marts.evidence_changes values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    list(change))
    con.close()
    return folder


MOVED = ("comparison_moved", "comparison", ROW, "MSC · insulin_independence", True,
         "0.400 (95 % CI 0.100-0.800), k = 2, certainty very low",
         "0.450 (95 % CI 0.200-0.700), k = 3, certainty very low",
         ["publication:sheet.csv:7"], [])
STATUS = ("trial_status_changed", "trial", "NCT00000001", "A trial", None, "RECRUITING",
          "COMPLETED", [], [])


@pytest.fixture
def hook(httpserver, settings, monkeypatch):
    from flows.settings import get_settings, reset_settings_cache

    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    monkeypatch.setenv("BETACELL_ALERT_WEBHOOK_URL", httpserver.url_for("/hook"))
    reset_settings_cache()
    return get_settings()


def test_nothing_moved_writes_the_diagram_only_and_posts_nothing(hook, httpserver):
    folder = make_version(hook.data_path, "v2", "v1", [])
    assert digest.publish_digest(hook, "v2") == []
    assert sorted(p.name for p in folder.iterdir()) == ["prisma_flow.svg", "warehouse.duckdb"]
    assert "trials (n = 1)" in (folder / "prisma_flow.svg").read_text()
    assert httpserver.log == []


def test_what_moved_becomes_a_digest_a_feed_entry_and_a_digest_event(hook, httpserver):
    make_version(hook.data_path, "v1", None, [])
    assert digest.publish_digest(hook, "v1") == []  # the baseline
    folder = make_version(hook.data_path, "v2", "v1", [MOVED, STATUS])
    assert digest.publish_digest(hook, "v2") == []

    text = (folder / "digest.md").read_text()
    assert text.startswith("# Betacell v2: 1 comparison row(s) and 1 trial(s) changed since v1")
    assert (f"- **MSC · insulin_independence** (headline) — `{ROW}`: {MOVED[5]} → {MOVED[6]}; "
            "facts added: `publication:sheet.csv:7`") in text
    assert "## Trials whose status changed (1)" in text and "RECRUITING → COMPLETED" in text

    feed = ET.parse(folder / "feed.atom").getroot()
    assert feed.tag == f"{ATOM}feed" and feed.findtext(f"{ATOM}id") == digest.FEED_ID
    entries = feed.findall(f"{ATOM}entry")
    assert [e.findtext(f"{ATOM}id") for e in entries] == ["urn:betacell:version:v2",
                                                          "urn:betacell:version:v1"]
    assert entries[0].findtext(f"{ATOM}content") == text
    assert "baseline" in entries[1].findtext(f"{ATOM}title")
    assert all(e.findtext(f"{ATOM}updated") for e in entries)

    events = [request.get_json() for request, _ in httpserver.log]
    assert [(e["event"], e["version"]) for e in events] == [("digest", "v1"), ("digest", "v2")]
    assert events[1]["changes"] == 2 and events[1]["text"] == text


def test_a_webhook_that_is_down_is_a_warning_and_the_files_are_written(settings, monkeypatch):
    from flows.settings import get_settings, reset_settings_cache

    monkeypatch.setenv("BETACELL_ALERT_WEBHOOK_URL", "http://127.0.0.1:9/hook")
    reset_settings_cache()
    settings = get_settings()
    folder = make_version(settings.data_path, "v2", "v1", [MOVED])
    assert digest.publish_digest(settings, "v2") == ["digest webhook failed: ConnectError"]
    assert (folder / "digest.md").exists() and (folder / "feed.atom").exists()


def test_a_broken_version_folder_is_a_warning_never_an_exception(settings):
    (settings.data_path / "published" / "v9").mkdir(parents=True)  # no warehouse in it
    warnings = digest.publish_digest(settings, "v9")
    assert len(warnings) == 2
    assert "PRISMA diagram could not be drawn" in warnings[0]
    assert "digest could not be written" in warnings[1]


def test_the_feed_keeps_the_newest_entries(settings, monkeypatch):
    monkeypatch.setattr(digest, "FEED_ENTRIES_KEPT", 3)
    previous = None
    for n in range(1, 6):
        make_version(settings.data_path, f"v{n}", previous, [MOVED])
        assert digest.publish_digest(settings, f"v{n}") == []
        previous = f"v{n}"
    feed = ET.parse(settings.data_path / "published" / "v5" / "feed.atom").getroot()
    assert [e.findtext(f"{ATOM}id")[-2:] for e in feed.findall(f"{ATOM}entry")] == [
        "v5", "v4", "v3"]


def test_the_previous_version_is_copied_into_raw_with_columns_it_lacked_as_null():
    con = duckdb.connect()
    assert digest.snapshot_previous_version(con) is None  # before the first publish
    assert con.execute("select count(*) from raw.previous_version").fetchone() == (0,)

    con.execute("create schema marts; create schema meta")
    con.execute("create table meta.published_version as select 'v7' as version_id, "
                "timestamptz '2026-01-02 03:04:05+00' as published_at")
    # a version published before certainty and results_reporting existed
    con.execute(f"""create table marts.therapy_outcome_comparison as select '{ROW}' as
        comparison_id, 'MSC' as therapy_label, 'insulin_independence' as outcome,
        true as is_headline, 2 as k_cohorts, 0.4 as estimate, 0.1 as ci_low, 0.8 as ci_high,
        ['publication:sheet.csv:1'] as outcome_fact_ids""")
    con.execute("create table marts.dim_trials as select 'NCT00000001' as trial_id, 'A' as "
                "brief_title, 'msc' as therapy_class, 'COMPLETED' as overall_status, "
                "false as has_results")
    assert digest.snapshot_previous_version(con) == "v7"
    assert con.execute("select comparison_id, k_cohorts, estimate, certainty, outcome_fact_ids "
                       "from raw.previous_version_comparisons").fetchall() == [
        (ROW, 2, 0.4, None, ["publication:sheet.csv:1"])]
    assert con.execute("select trial_id, overall_status, is_overdue_12_months "
                       "from raw.previous_version_trials").fetchall() == [
        ("NCT00000001", "COMPLETED", None)]
    assert digest.snapshot_previous_version(con) == "v7"  # replaced, not appended
    assert con.execute("select count(*) from raw.previous_version_comparisons").fetchone() == (1,)


def test_a_change_of_the_certainty_rules_means_a_rebuild(settings, monkeypatch, tmp_path):
    """The dbt models import flows/evidence: its code is part of the build's fingerprint, so a
    run with nothing new still rebuilds when the rules changed."""
    import shutil

    from flows import publish
    from flows.settings import REPO_DIR

    copy = tmp_path / "repo"
    for name in {*publish.BUILD_INPUTS, "flows/evidence"}:
        source = REPO_DIR / name
        if source.is_dir():
            shutil.copytree(source, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    monkeypatch.setattr("flows.settings.REPO_DIR", copy)
    before = publish.code_fingerprint(settings)
    rules = copy / "flows" / "evidence" / "certainty.py"
    rules.write_text(rules.read_text().replace("CI_WIDTH_SERIOUS = 0.20", "CI_WIDTH_SERIOUS = 0.25"))
    assert publish.code_fingerprint(settings) != before
