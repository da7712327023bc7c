"""Parallel parsing as mapped Prefect tasks on a local Dask cluster: 1 and 2 workers give the
same, byte-identical Parquet as parsing in this process."""

from __future__ import annotations

import os
import sys
import types

import polars as pl
import pytest

from flows import parallel
from flows.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def api_in_env(prefect_harness, monkeypatch):
    """Dask worker processes find the session's Prefect API through the environment.

    They are spawned, and spawn re-runs the parent's ``__main__`` file in each child; in a test
    process that may be whatever script an earlier test ran as ``__main__`` (the Streamlit page
    tests leave a dashboard page there), so give the children a clean ``__main__``."""
    from prefect.settings import PREFECT_API_URL

    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))


def test_one_and_two_dask_workers_give_identical_parquet(api_in_env, tmp_path):
    """Why over 30 s: four local Dask clusters (1 and 2 worker processes, for each of the two
    input kinds) start, import the flow code and stop."""
    from tools.bench_parallel import make_inputs

    inputs = make_inputs(tmp_path / "in", files=3, records=300)
    settings = Settings(data_dir=tmp_path / "data")
    for kind, paths in inputs.items():
        assert len(paths) == 3
        expected = {}
        for path in paths:  # the same functions, in this process
            done = parallel.PARSERS[kind].fn(str(path), str(tmp_path / "local" / kind))
            expected[os.path.basename(done["output"])] = done["sha256"]
        for workers in (1, 2):
            done = parallel.run(kind, paths, tmp_path / f"dask-{workers}" / kind, workers,
                                settings)
            got = {os.path.basename(r["output"]): r["sha256"] for r in done["results"]}
            assert got == expected, (kind, workers)
            assert all(r["pid"] != os.getpid() for r in done["results"])  # ran on Dask workers
        frame = pl.read_parquet(next(iter((tmp_path / "local" / kind).glob("*.parquet"))))
        assert frame.height == 300
        key = "nct_id" if kind == "ctgov" else "pmid"
        assert frame[key].null_count() == 0 and frame[key].n_unique() == 300
