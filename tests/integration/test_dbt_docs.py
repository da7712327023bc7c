"""dbt docs generate works against a copy of the published warehouse; `betacell docs` (`make
docs`) generates the site without touching the published file and serves it on 127.0.0.1."""

from __future__ import annotations

import hashlib
import shutil
import threading

import httpx
import pytest

from flows.docs import docs_dir, docs_server, generate_docs
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


def test_betacell_docs_generates_from_the_published_warehouse_and_serves_it(published_copy):
    settings = published_copy
    before = hashlib.sha256(settings.warehouse_path.read_bytes()).hexdigest()
    site = generate_docs(settings)
    assert hashlib.sha256(settings.warehouse_path.read_bytes()).hexdigest() == before
    assert not list(docs_dir(settings).glob("*.duckdb*")), "the working copy is removed"
    assert (site / "static_index.html").stat().st_size > 100_000  # opens from disk too
    server = docs_server(site, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address
        assert host == "127.0.0.1"
        base = f"http://127.0.0.1:{port}"
        assert "dbt" in httpx.get(f"{base}/index.html").text
        catalog = httpx.get(f"{base}/catalog.json").json()
        merges = catalog["nodes"]["model.betacell.trial_id_merges"]
        assert merges["metadata"]["schema"] == "marts"
        assert "score" in merges["columns"]
        manifest = httpx.get(f"{base}/manifest.json").json()
        described = manifest["nodes"]["model.betacell.trial_id_merges"]["columns"]
        assert all(column["description"] for column in described.values())
    finally:
        server.shutdown()
        server.server_close()
