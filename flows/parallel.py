"""Parallel parsing as mapped Prefect tasks on a Dask cluster (README "Scaling out").

Two embarrassingly parallel stages, each one task per input file, mapped over the inputs:

- ``parse_ctgov_chunk``: a landed ClinicalTrials.gov archive chunk (zstd JSON lines, one study
  per line, as :func:`flows.sources.ctgov.resource.land_archive` writes them) -> one Parquet
  file;
- ``parse_pubmed_file``: a PubMed baseline file (``*.xml.gz``) -> one Parquet file.

The task runner is ``prefect_dask.DaskTaskRunner``: a local cluster of ``--workers N`` processes
(``BETACELL_DASK_WORKERS``) or, with ``BETACELL_DASK_ADDRESS=tcp://host:8786``, an existing
cluster whose workers may run on other machines (they need this package installed and the input
and output paths reachable). Dask workers report task runs to the Prefect API named by
``PREFECT_API_URL``, which must therefore be in the environment before the cluster starts
(otherwise every worker starts its own temporary Prefect server).

Output is deterministic: the same input gives byte-identical Parquet whatever the worker count.
The benchmark (1 vs N workers) is a developer tool: ``python -m tools.bench_parallel``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import zstandard
from prefect import flow, task, unmapped
from prefect.cache_policies import NO_CACHE

from flows.settings import Settings, get_settings
from flows.sources.ctgov.parse import as_object
from flows.sources.pubmed.parse import iter_articles

PUBMED_JSON_FIELDS = ("publication_types", "languages", "authors", "mesh_headings", "keywords",
                      "databank_accessions")


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _write(frame: pl.DataFrame, out: Path) -> dict[str, Any]:
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".part")
    frame.write_parquet(partial, compression="zstd", statistics=False)
    os.replace(partial, out)
    return {"output": str(out), "records": frame.height,
            "sha256": hashlib.sha256(out.read_bytes()).hexdigest(), "pid": os.getpid()}


def parse_ctgov_chunk_file(chunk: Path, out_dir: Path) -> dict[str, Any]:
    """One landed archive chunk -> Parquet: id, dates, status, title, and the study itself."""
    rows = []
    with chunk.open("rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as reader:
        pending = b""
        line_no = 0
        while True:
            block = reader.read(1 << 20)
            lines = (pending + block).split(b"\n")
            pending = lines.pop() if block else b""
            for line in lines:
                line_no += 1
                if not line.strip():
                    continue
                study = as_object(orjson.loads(line))
                protocol = as_object(study.get("protocolSection"))
                ident = as_object(protocol.get("identificationModule"))
                status = as_object(protocol.get("statusModule"))
                rows.append({
                    "nct_id": ident.get("nctId"),
                    "brief_title": ident.get("briefTitle"),
                    "overall_status": status.get("overallStatus"),
                    "last_update_post_date": as_object(status.get("lastUpdatePostDateStruct"))
                    .get("date"),
                    "phases": _json(as_object(protocol.get("designModule")).get("phases")),
                    "source_file": chunk.name,
                    "source_line": line_no,
                    "payload": line.decode(),
                })
            if not block:
                break
    frame = pl.DataFrame(rows, schema={"nct_id": pl.String, "brief_title": pl.String,
                                       "overall_status": pl.String,
                                       "last_update_post_date": pl.String, "phases": pl.String,
                                       "source_file": pl.String, "source_line": pl.Int64,
                                       "payload": pl.String})
    name = chunk.name.split(".")[0]
    return {"input": chunk.name, **_write(frame, out_dir / f"ctgov-{name}.parquet")}


def parse_pubmed_baseline_file(path: Path, out_dir: Path) -> dict[str, Any]:
    """One PubMed baseline file -> Parquet (nested fields as JSON text, as in raw.pubmed_articles)."""
    rows = []
    for article in iter_articles(path, path.name):
        row = {k: (_json(v) if k in PUBMED_JSON_FIELDS or isinstance(v, dict | list) else v)
               for k, v in article.items()}
        rows.append(row)
    frame = pl.DataFrame(rows, infer_schema_length=None)
    return {"input": path.name, **_write(frame, out_dir / f"{path.name.split('.')[0]}.parquet")}


@task(name="parse-ctgov-chunk", cache_policy=NO_CACHE)
def parse_ctgov_chunk(chunk: str, out_dir: str) -> dict[str, Any]:
    return parse_ctgov_chunk_file(Path(chunk), Path(out_dir))


@task(name="parse-pubmed-file", cache_policy=NO_CACHE)
def parse_pubmed_file(path: str, out_dir: str) -> dict[str, Any]:
    return parse_pubmed_baseline_file(Path(path), Path(out_dir))


PARSERS = {"ctgov": parse_ctgov_chunk, "pubmed": parse_pubmed_file}


@flow(name="parse-in-parallel")
def parse_in_parallel(kind: str, inputs: list[str], out_dir: str) -> dict[str, Any]:
    """One mapped task per input file, on the flow's task runner (Dask, see ``run``).
    ``seconds`` is the mapped work alone (the cluster is up before the flow body runs)."""
    started = time.perf_counter()
    futures = PARSERS[kind].map(inputs, unmapped(out_dir))
    results = [future.result() for future in futures]
    return {"seconds": time.perf_counter() - started, "results": results}


def dask_task_runner(settings: Settings, workers: int | None = None):
    """A local cluster of ``workers`` processes, or the cluster at ``BETACELL_DASK_ADDRESS``."""
    from prefect_dask import DaskTaskRunner

    if settings.dask_address:
        return DaskTaskRunner(address=settings.dask_address)
    scratch = Path(tempfile.gettempdir()) / "betacell-dask"
    return DaskTaskRunner(cluster_kwargs={
        "n_workers": workers or settings.dask_workers, "threads_per_worker": 1,
        "processes": True, "dashboard_address": None, "local_directory": str(scratch)})


def export_api_url() -> None:
    """Dask worker processes read the Prefect API from the environment, not from our settings."""
    from prefect.settings import PREFECT_API_URL

    if not os.environ.get("PREFECT_API_URL") and (url := PREFECT_API_URL.value()):
        os.environ["PREFECT_API_URL"] = url


def run(kind: str, inputs: list[Path], out_dir: Path, workers: int | None = None,
        settings: Settings | None = None) -> dict[str, Any]:
    settings = settings or get_settings()
    export_api_url()
    runner = dask_task_runner(settings, workers)
    return parse_in_parallel.with_options(task_runner=runner)(
        kind, [str(p) for p in inputs], str(out_dir))
