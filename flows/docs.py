"""dbt docs for the published warehouse: generated on a copy, served on 127.0.0.1.

The published file is never opened for writing (dbt-duckdb opens its database read-write), so
``dbt docs generate`` runs against a copy under ``data/docs/`` with the same basename (views
remember their catalog name). The site is written to ``data/docs/site/``: ``index.html`` with
``manifest.json`` and ``catalog.json`` (needs HTTP: browsers block ``fetch`` from ``file://``)
and ``static_index.html`` (everything inlined; opens from disk too).
"""

from __future__ import annotations

import functools
import os
import shutil
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from flows.errors import BetacellError
from flows.settings import Settings
from flows.transform import run_dbt


def docs_dir(settings: Settings) -> Path:
    return settings.data_path / "docs"


def generate_docs(settings: Settings) -> Path:
    """Generate the dbt docs site for the published warehouse; returns the site directory."""
    if not settings.warehouse_path.exists():
        raise BetacellError(f"nothing published yet at {settings.warehouse_path}; "
                            "run `betacell run` (or `make run`) first")
    work = docs_dir(settings)
    site = work / "site"
    database = work / settings.warehouse_path.name
    try:
        _copy_published(settings, work, site, database)
    except OSError as exc:
        raise BetacellError(
            f"cannot write the dbt docs to {work}: {exc.strerror or exc} ({exc.filename or work}). "
            "The docs are generated from a copy of the published warehouse in that folder, so "
            f"it must be writable: make {settings.data_path} writable (or free space on its "
            "disk), or point BETACELL_DATA_DIR at a writable copy of it; the published "
            "warehouse itself is only read.") from exc
    try:
        run_dbt(settings, ["docs", "generate", "--static"], database, target=site,
                logs=work / "logs")
    finally:
        for leftover in (database, database.with_name(database.name + ".wal")):
            leftover.unlink(missing_ok=True)
    return site


def _copy_published(settings: Settings, work: Path, site: Path, database: Path) -> None:
    """The published file copied beside the site (dbt opens its database read-write)."""
    site.mkdir(parents=True, exist_ok=True)
    (work / "logs").mkdir(exist_ok=True)
    partial = work / (database.name + ".part")
    shutil.copyfile(settings.warehouse_path, partial)
    os.replace(partial, database)
    state = settings.build_dir / "dbt_target" / "partial_parse.msgpack"
    if state.exists() and not (site / state.name).exists():  # skip a full parse when possible
        shutil.copyfile(state, site / state.name)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the stdlib's name
        pass


def docs_server(site: Path, port: int = 8080, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """An HTTP server for the site on host:port (port 0 picks a free one); call serve_forever."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    return ThreadingHTTPServer((host, port), handler)
