"""Alerts are never lost, a success clears the failure record, and a full disk gives one clear
paragraph and frees the build copy.

Real HTTP servers on 127.0.0.1 stand in for the alert webhook; the disk-full case replaces the
``dbt`` executable by one that writes to ``/dev/full`` (the kernel's always-full device), as
dbt's logging did when the probe filled the disk."""

from __future__ import annotations

import json
import stat

import pytest

from flows import report
from flows.errors import DiskFull
from flows.refresh import refresh_warehouse
from flows.settings import get_settings, reset_settings_cache

pytestmark = pytest.mark.integration


def webhook_settings(monkeypatch, url):
    monkeypatch.setenv("BETACELL_ALERT_WEBHOOK_URL", url)
    reset_settings_cache()
    return get_settings()


def test_the_alert_is_sent_even_when_the_quality_folder_cannot_be_written(settings, httpserver,
                                                                          monkeypatch):
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    settings = webhook_settings(monkeypatch, httpserver.url_for("/hook"))
    settings.quality_dir.parent.mkdir(parents=True, exist_ok=True)
    settings.quality_dir.write_text("a file where the folder should be")  # cannot be written

    problems = report.alert_failure(settings, "run-1", "Betacell refresh run-1 failed: boom")
    assert [r.get_json()["text"] for r, _ in httpserver.log] == [
        "Betacell refresh run-1 failed: boom"]
    assert len(problems) == 1 and "could not write" in problems[0]


def test_an_alert_lost_to_the_network_is_delivered_by_the_next_good_run(settings, httpserver,
                                                                        monkeypatch):
    down = webhook_settings(monkeypatch, "http://127.0.0.1:9/hook")  # nothing listens there
    assert report.alert_failure(down, "run-1", "Betacell refresh run-1 failed: boom") == [
        "alert webhook failed: ConnectError"]
    record = json.loads(report.failure_path(down).read_text())
    assert record["alert_delivered"] is False

    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    up = webhook_settings(monkeypatch, httpserver.url_for("/hook"))
    assert report.settle_failure_record(up) is None
    (late,) = [r.get_json()["text"] for r, _ in httpserver.log]
    assert late.startswith("(delivered late) Betacell refresh run-1 failed: boom")
    assert not report.failure_path(up).exists()


def test_a_successful_run_clears_a_stale_failure_record(published_copy):
    settings = published_copy
    report.record_failure(settings, "old-run", "Betacell refresh old-run failed", True)
    refresh_warehouse(source="snapshot", stages=["outcomes"])
    assert not report.failure_path(settings).exists()


def test_a_full_disk_stops_with_one_paragraph_and_removes_the_build_copy(published_copy,
                                                                         tmp_path, monkeypatch):
    settings = published_copy
    before = (settings.data_path / "current").readlink()
    fake_dbt = tmp_path / "dbt"
    fake_dbt.write_text("#!/bin/sh\necho 'Running with dbt=1.11'\n"
                        "python3 -c \"f = open('/dev/full', 'w'); f.write('log'); f.flush()\"\n")
    fake_dbt.chmod(fake_dbt.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr("flows.transform.dbt_executable", lambda: str(fake_dbt))
    sheet = settings.outcomes_path / "published_outcomes.csv"  # something to rebuild for
    sheet.write_text(sheet.read_text().replace("adults with T1D", "Adults with T1D", 1))

    with pytest.raises(DiskFull) as caught:
        refresh_warehouse(source="snapshot", stages=["outcomes"])
    message = str(caught.value)
    assert message.startswith(f"The disk holding {settings.data_path} is full")
    assert "nothing was published" in message and "\n" not in message
    assert not settings.build_database.exists()
    assert (settings.data_path / "current").readlink() == before
    failure = json.loads(report.failure_path(settings).read_text())
    assert "is full" in failure["message"]


def test_an_undelivered_alert_survives_a_later_failure(settings, httpserver, monkeypatch):
    down = webhook_settings(monkeypatch, "http://127.0.0.1:9/hook")
    report.alert_failure(down, "run-a", "Betacell refresh run-a failed: first")
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    up = webhook_settings(monkeypatch, httpserver.url_for("/hook"))
    report.alert_failure(up, "run-b", "Betacell refresh run-b failed: second")
    assert report.settle_failure_record(up) is None
    texts = [r.get_json()["text"] for r, _ in httpserver.log]
    assert texts[0] == "Betacell refresh run-b failed: second"
    assert texts[1].startswith("(delivered late) Betacell refresh run-a failed: first")
    assert len(texts) == 2
