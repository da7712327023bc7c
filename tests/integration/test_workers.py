"""A process worker, started as its own process, picks up a scheduled run of refresh-warehouse
from the session's Prefect server (a real API on a local port, shared by the session's CLI
runs) and the result lands in the lake (embedded PostgreSQL catalog + moto S3).

That run is the session lake's one refresh (``published_lake`` in ``conftest.py``, made by
``worker_run.run_by_worker``); the lake's read-side tests read what it published."""

from __future__ import annotations

import pytest

from flows import lake
from flows.settings import get_settings

pytestmark = pytest.mark.integration  # on the lake tests' xdist worker (tests/conftest.py)


def test_a_process_worker_runs_a_scheduled_refresh_into_the_lake(published_lake):
    run = published_lake.flow_run
    print(f"worker --run-once took {run['worker_seconds']} s")
    assert run["state"] == "COMPLETED", run
    snaps = lake.snapshots(get_settings())
    assert snaps[-1]["run_id"] == run["flow_run_id"]
    assert snaps[-1]["tables"]["marts.dim_trials"] > 0
