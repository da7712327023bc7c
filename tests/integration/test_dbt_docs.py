"""dbt docs generate works against a copy of the published warehouse."""

from __future__ import annotations

import shutil

import pytest

from flows.settings import Settings
from flows.transform import run_dbt
from tests.conftest import seed_parse_state

pytestmark = pytest.mark.integration


def test_docs_generate(built_warehouse, dbt_parse_state, tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    copy = settings.build_database
    copy.parent.mkdir(parents=True)
    shutil.copyfile(built_warehouse.warehouse, copy)
    seed_parse_state(settings.data_path, dbt_parse_state)
    run_dbt(settings, ["docs", "generate"], copy)
    target = settings.build_dir / "dbt_target"
    assert (target / "catalog.json").exists() and (target / "index.html").exists()
    catalog = (target / "catalog.json").read_text()
    assert "therapy_outcome_comparison" in catalog and "Pooled ESTIMATE" in catalog
