"""`betacell docs` (`make docs`): dbt docs generate runs against a copy of the published
warehouse, never touching the published file, and the site is served on 127.0.0.1.

The site is generated once per session (``docs_site``, on a copy of the session warehouse) and
both tests read it: one what dbt generated, one what `betacell docs` promises around it."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from pathlib import Path

import httpx
import pytest
from filelock import FileLock

from flows.docs import docs_dir, docs_server, generate_docs
from tests.conftest import point_at, session_dir

pytestmark = pytest.mark.integration


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def docs_site(built_warehouse, tmp_path_factory) -> dict:
    """`generate_docs` once, on a copy of the session's published data directory (shared by the
    xdist workers under a file lock): the site, and the published file's hash before and after."""
    from flows.settings import get_settings, reset_settings_cache

    root = session_dir(tmp_path_factory, "docs")
    done = root / "docs.json"
    with FileLock(f"{root}.lock"):
        if not done.exists():
            shutil.copytree(built_warehouse.root, root / "published", symlinks=True,
                            ignore=shutil.ignore_patterns("*.lock", "duckdb_tmp", "summary.json"))
            patch = pytest.MonkeyPatch()
            try:
                data = root / "published"
                point_at(patch, data / "data", data / "snapshot", data / "outcomes")
                settings = get_settings()
                before = sha256(settings.warehouse_path)
                site = generate_docs(settings)
                result = {"site": str(site), "before": before,
                          "after": sha256(settings.warehouse_path),
                          "leftovers": [p.name for p in docs_dir(settings).glob("*.duckdb*")]}
            finally:
                patch.undo()
                reset_settings_cache()
            done.write_text(json.dumps(result))
    result = json.loads(done.read_text())
    return {**result, "site": Path(result["site"])}


def test_docs_generate(docs_site):
    site = docs_site["site"]
    assert (site / "catalog.json").exists() and (site / "index.html").exists()
    catalog = (site / "catalog.json").read_text()
    assert "therapy_outcome_comparison" in catalog and "Pooled ESTIMATE" in catalog


def test_betacell_docs_generates_from_the_published_warehouse_and_serves_it(docs_site):
    site = docs_site["site"]
    assert docs_site["after"] == docs_site["before"]  # the published file is untouched
    assert docs_site["leftovers"] == [], "the working copy is removed"
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
