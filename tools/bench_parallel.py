"""Benchmark of the parallel parsing stages (``flows/parallel.py``): the same synthetic inputs
parsed on a local Dask cluster with 1 and N workers; the outputs must be identical.

    python -m tools.bench_parallel --files 4 --records 10000 --workers 1 2

A developer tool: it imports the runtime package (``flows``), never the reverse.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from flows.landing import LandingRun
from flows.parallel import run
from flows.sources.base import SourceRun
from flows.sources.ctgov.resource import land_archive
from tools.bench import write_archive, write_pubmed_baseline


def make_inputs(root: Path, files: int, records: int) -> dict[str, list[Path]]:
    """``files`` PubMed baseline files and ``files`` landed ClinicalTrials.gov archive chunks of
    ``records`` records each."""
    pubmed = []
    for i in range(files):
        path = root / "pubmed" / f"pubmed26n{i + 1:04d}.xml.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_pubmed_baseline(path, records, seed=11 + i)
        pubmed.append(path)
    archive = root / "ctg-studies.json.zip"
    write_archive(archive, files * records)
    landing = LandingRun(root / "raw", "ctgov", "bench")
    landing.start({"fingerprint": "bench", "mode": "bulk"})
    land_archive(landing, archive, SourceRun("ctgov", "bulk", [landing]), chunk_records=records)
    landing.complete({})
    archive.unlink()
    ctgov = [landing.dir / entry.file for entry in landing.entries()]
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
    parser = argparse.ArgumentParser(prog="python -m tools.bench_parallel")
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--workdir", type=Path, default=None)
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
