"""Parallel parsing as mapped Prefect tasks on a Dask cluster (README "Scaling out").

Two embarrassingly parallel stages, each one task per input file, mapped over the inputs:

- ``parse_ctgov_chunk``: a landed ClinicalTrials.gov archive chunk (zstd JSON lines, one study
  per line, as :func:`flows.ingest.land_archive` writes them) -> one Parquet file;
- ``parse_pubmed_file``: a PubMed baseline file (``*.xml.gz``) -> one Parquet file.

The task runner is ``prefect_dask.DaskTaskRunner``: a local cluster of ``--workers N`` processes
(``BETACELL_DASK_WORKERS``) or, with ``BETACELL_DASK_ADDRESS=tcp://host:8786``, an existing
cluster whose workers may run on other machines (they need this package installed and the input
and output paths reachable). Dask workers report task runs to the Prefect API named by
``PREFECT_API_URL``, which must therefore be in the environment before the cluster starts
(otherwise every worker starts its own temporary Prefect server).

Output is deterministic: the same input gives byte-identical Parquet whatever the worker count.

    python -m flows.parallel bench --files 4 --records 10000 --workers 1 2
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import zstandard
from prefect import flow, task, unmapped
from prefect.cache_policies import NO_CACHE

from flows.load import as_object
from flows.settings import Settings, get_settings

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
    from flows.sources.pubmed_xml import iter_articles

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


# --- Benchmark: 1 vs N workers on the same input ----------------------------------------------

def make_inputs(root: Path, files: int, records: int) -> dict[str, list[Path]]:
    from flows.settings import REPO_DIR

    if str(REPO_DIR) not in sys.path:  # the synthetic generators are a developer tool (tools/)
        sys.path.insert(0, str(REPO_DIR))
    from flows.ingest import IngestOutcome, land_archive
    from flows.landing import LandingRun
    from tools.bench import write_archive, write_pubmed_baseline

    pubmed = []
    for i in range(files):
        path = root / "pubmed" / f"pubmed26n{i + 1:04d}.xml.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_pubmed_baseline(path, records, seed=11 + i)
        pubmed.append(path)
    archive = root / "ctg-studies.json.zip"
    write_archive(archive, files * records)
    run_ = LandingRun(root / "raw", "ctgov", "bench")
    run_.start({"fingerprint": "bench", "mode": "bulk"})
    land_archive(run_, archive, IngestOutcome(mode="bulk", run=run_), chunk_records=records)
    run_.complete({})
    archive.unlink()
    ctgov = [run_.dir / entry.file for entry in run_.entries()]
    return {"ctgov": ctgov, "pubmed": pubmed}


def bench(files: int, records: int, worker_counts: list[int], workdir: Path | None) -> int:
    root = workdir or Path(tempfile.mkdtemp(prefix="betacell-parallel-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"inputs: {files} PubMed baseline files x {records:,} records and "
          f"{files} ClinicalTrials.gov chunks x {records:,} studies, in {root}", flush=True)
    inputs = make_inputs(root, files, records)
    digests: dict[int, dict[str, str]] = {}
    for workers in worker_counts:
        started = time.perf_counter()
        outputs = {}
        for kind, paths in inputs.items():
            t0 = time.perf_counter()
            done = run(kind, paths, root / f"out-{workers}" / kind, workers)
            results = done["results"]
            outputs.update({f"{kind}/{Path(r['output']).name}": r["sha256"] for r in results})
            print(f"  {workers} worker(s) {kind}: {done['seconds']:.1f} s of mapped tasks, "
                  f"{time.perf_counter() - t0:.1f} s with cluster start/stop "
                  f"({sum(r['records'] for r in results):,} records, "
                  f"{len({r['pid'] for r in results})} worker process(es) used)", flush=True)
        digests[workers] = outputs
        print(f"{workers} worker(s): {time.perf_counter() - started:.1f} s in total", flush=True)
    first = digests[worker_counts[0]]
    same = all(d == first for d in digests.values())
    print("outputs identical across worker counts:", same, flush=True)
    return 0 if same else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.parallel")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("bench", help="parse the same synthetic inputs with 1 and N workers")
    b.add_argument("--files", type=int, default=4)
    b.add_argument("--records", type=int, default=10_000)
    b.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    b.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    if os.environ.get("PREFECT_API_URL"):
        return bench(args.files, args.records, args.workers, args.workdir)
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):  # one temporary API for all workers
        return bench(args.files, args.records, args.workers, args.workdir)


if __name__ == "__main__":
    sys.exit(main())
