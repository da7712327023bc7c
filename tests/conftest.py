"""Shared fixtures: an isolated data dir per test, and one Prefect test server per session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from flows.settings import REPO_DIR, Settings, reset_settings_cache

SNAPSHOT_DIR = REPO_DIR / "data" / "snapshot"

# The first temporary Prefect server on a fresh machine migrates its database; allow for it.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


@pytest.fixture(scope="session")
def prefect_harness():
    """One Prefect API (temporary SQLite) for the whole session: flows run for real."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh BETACELL_DATA_DIR for one test, using the shipped snapshot."""
    target = tmp_path / "data"
    target.mkdir()
    monkeypatch.setenv("BETACELL_DATA_DIR", str(target))
    monkeypatch.setenv("BETACELL_SNAPSHOT_DIR", str(SNAPSHOT_DIR))
    monkeypatch.setenv("BETACELL_OUTCOMES_DIR", str(REPO_DIR / "data" / "outcomes"))
    monkeypatch.setenv("BETACELL_HTTP_BACKOFF_INITIAL_SECONDS", "0")
    monkeypatch.setenv("BETACELL_HTTP_MAX_ATTEMPTS", "3")
    reset_settings_cache()
    yield target
    reset_settings_cache()


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    from flows.settings import get_settings

    return get_settings()


@pytest.fixture
def snapshot_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A writable copy of the snapshot (for tests that inject bad records)."""
    target = tmp_path / "snapshot"
    shutil.copytree(SNAPSHOT_DIR, target)
    monkeypatch.setenv("BETACELL_SNAPSHOT_DIR", str(target))
    reset_settings_cache()
    return target


@pytest.fixture(scope="session")
def snapshot_warehouse(prefect_harness, tmp_path_factory):
    """The pipeline run once on the shipped snapshot; tests only read the published file."""
    from flows.pipeline import refresh_warehouse
    from flows.settings import get_settings

    target = tmp_path_factory.mktemp("published") / "data"
    target.mkdir()
    patch = pytest.MonkeyPatch()
    patch.setenv("BETACELL_DATA_DIR", str(target))
    patch.setenv("BETACELL_SNAPSHOT_DIR", str(SNAPSHOT_DIR))
    patch.setenv("BETACELL_OUTCOMES_DIR", str(REPO_DIR / "data" / "outcomes"))
    reset_settings_cache()
    try:
        refresh_warehouse(source="snapshot")
        yield get_settings().warehouse_path
    finally:
        patch.undo()
        reset_settings_cache()
