"""A process worker, started as its own process, picks up a scheduled run of refresh-warehouse
from the session's Prefect server (a real API on a local port, shared by the session's CLI
runs) and the result lands in a lake of its own (embedded PostgreSQL catalog + moto S3)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows import lake
from flows.settings import get_settings

pytestmark = pytest.mark.integration  # on the lake tests' xdist worker (tests/conftest.py)


@pytest.fixture
def prefect_server(prefect_api, tmp_path):
    """The environment of a process on the session's Prefect server (a real API; its own
    PREFECT_HOME, no BETACELL_* settings)."""
    home = tmp_path / "prefect_home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "BETACELL_"))}
    return env | {"PREFECT_HOME": str(home), "PREFECT_API_URL": prefect_api.url,
                  "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING"}


DEPLOY = """
import json, sys
from prefect.deployments import run_deployment
from flows.pool import deploy
env = json.loads(sys.argv[1])
deploy("betacell-test", env=env, schedules=False, names=["registries-daily"],
       parameters={"source": "snapshot"})
run = run_deployment("refresh-warehouse/registries-daily", timeout=0)
print(json.dumps({"flow_run_id": str(run.id), "state": run.state.type.value}))
"""

STATE = """
import asyncio, json, sys
from prefect.client.orchestration import get_client
async def main():
    async with get_client() as client:
        run = await client.read_flow_run(sys.argv[1])
        print(json.dumps({"state": run.state.type.value, "message": run.state.message}))
asyncio.run(main())
"""


def test_a_process_worker_runs_a_scheduled_refresh_into_the_lake(published_copy, lake_env,
                                                                    prefect_server, tmp_path):
    """Why over 30 s: a worker process starts a flow-run process that rebuilds (a run with a
    lake always rebuilds) and publishes into the lake."""
    def run(args: list[str], env: dict, timeout: int = 120) -> str:
        done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=timeout)
        assert done.returncode == 0, (args, done.stdout[-3000:], done.stderr[-3000:])
        return done.stdout

    prefect = str(Path(sys.executable).with_name("prefect"))
    run([prefect, "work-pool", "create", "betacell-test", "--type", "process"], prefect_server)
    # the deployment carries the settings; the worker's own environment has no BETACELL_*
    betacell_env = {k: v for k, v in os.environ.items() if k.startswith("BETACELL_")}
    out = run([sys.executable, "-c", DEPLOY, json.dumps(betacell_env)], prefect_server)
    flow_run_id = json.loads(out.strip().splitlines()[-1])["flow_run_id"]

    worker_env = prefect_server  # the worker's own environment has no BETACELL_*
    started = time.monotonic()
    run([prefect, "worker", "start", "--pool", "betacell-test", "--run-once"], worker_env,
        timeout=600)
    print(f"worker --run-once took {time.monotonic() - started:.1f} s")

    state = json.loads(run([sys.executable, "-c", STATE, flow_run_id], prefect_server)
                       .strip().splitlines()[-1])
    assert state["state"] == "COMPLETED", state
    snaps = lake.snapshots(get_settings())
    assert snaps[-1]["run_id"] == flow_run_id
    assert snaps[-1]["tables"]["marts.dim_trials"] > 0
