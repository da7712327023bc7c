"""dbt docs generate works against a copy of the published warehouse."""

from __future__ import annotations

import shutil

import pytest

from flows.settings import Settings
from flows.transform import run_dbt

pytestmark = pytest.mark.integration


def test_docs_generate(snapshot_warehouse, tmp_path):
    copy = tmp_path / "data" / "build" / "warehouse.duckdb"
    copy.parent.mkdir(parents=True)
    shutil.copyfile(snapshot_warehouse, copy)
    settings = Settings(data_dir=tmp_path / "data")
    run_dbt(settings, ["docs", "generate"], copy)
    target = settings.build_dir / "dbt_target"
    assert (target / "catalog.json").exists() and (target / "index.html").exists()
    assert "therapy_outcome_comparison" in (target / "catalog.json").read_text()
