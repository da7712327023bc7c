from __future__ import annotations

from datetime import UTC, datetime

import pytest

from flows.landing import LandingRun, find_resumable_run, sha256_file


def test_land_records_writes_file_and_manifest(tmp_path):
    run = LandingRun(tmp_path, "ctgov", "run-1")
    run.start({"fingerprint": "f"})
    entry = run.land_records(
        [b'{"a":1}', b'{"b":2}\n'],
        page=1,
        query={"q": "x"},
        fetched_at=datetime(2026, 1, 1, tzinfo=UTC),
        next_page_token="t2",
    )
    assert entry.record_count == 2
    assert entry.sha256 == sha256_file(run.dir / entry.file)
    assert list(run.iter_lines(entry)) == [b'{"a":1}', b'{"b":2}']
    assert run.entries() == [entry]
    assert not run.is_complete


def test_raw_files_are_never_rewritten(tmp_path):
    run = LandingRun(tmp_path, "ctgov", "run-1")
    run.start({})
    run.land_records([b"{}"], page=1, query={}, fetched_at=datetime.now(UTC))
    with pytest.raises(FileExistsError):
        run.land_records([b"{}"], page=1, query={}, fetched_at=datetime.now(UTC))


def test_long_lines_survive_chunking(tmp_path):
    run = LandingRun(tmp_path, "ctgov", "run-1")
    run.start({})
    big = b'{"x":"' + b"a" * 3_000_000 + b'"}'
    entry = run.land_records([big, b"{}"], page=1, query={}, fetched_at=datetime.now(UTC))
    assert list(run.iter_lines(entry)) == [big, b"{}"]


def test_find_resumable_run_only_after_last_complete(tmp_path):
    old = LandingRun(tmp_path, "ctgov", "20260101T000000Z-aaaaaa")
    old.start({"fingerprint": "f"})
    old.complete({})
    assert find_resumable_run(tmp_path, "ctgov", "f") is None
    new = LandingRun(tmp_path, "ctgov", "20260102T000000Z-bbbbbb")
    new.start({"fingerprint": "f"})
    assert find_resumable_run(tmp_path, "ctgov", "f").run_id == new.run_id
    assert find_resumable_run(tmp_path, "ctgov", "other") is None
