"""One scheduled run of refresh-warehouse, taken by a Prefect process worker.

On the Prefect server at ``api_url``: create a process work pool, deploy refresh-warehouse to it
(``flows.pool.deploy``) with the given ``BETACELL_*`` settings as the flow run's environment,
schedule one run, and let ``prefect worker start --run-once`` (its own process, whose own
environment has no ``BETACELL_*``) take it and run the flow in a process of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

DEPLOY = """
import json, sys
from prefect.deployments import run_deployment
from flows.pool import deploy
pool, env = sys.argv[1], json.loads(sys.argv[2])
deploy(pool, env=env, schedules=False, names=["registries-daily"],
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


def prefect_env(api_url: str, home: Path) -> dict[str, str]:
    """A process on that server: its own PREFECT_HOME, no BETACELL_* settings."""
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "BETACELL_"))}
    return env | {"PREFECT_HOME": str(home), "PREFECT_API_URL": api_url,
                  "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING"}


def run_by_worker(api_url: str, settings: dict[str, str], workdir: Path, pool: str) -> dict:
    """Returns the flow run's id, final state type and message, and the worker's seconds."""
    env = prefect_env(api_url, workdir / "prefect_home")

    def run(args: list[str], timeout: int = 120) -> str:
        done = subprocess.run(args, cwd=workdir, env=env, capture_output=True, text=True,
                              timeout=timeout)
        assert done.returncode == 0, (args, done.stdout[-3000:], done.stderr[-3000:])
        return done.stdout

    prefect = str(Path(sys.executable).with_name("prefect"))
    run([prefect, "work-pool", "create", pool, "--type", "process"])
    out = run([sys.executable, "-c", DEPLOY, pool, json.dumps(settings)])
    flow_run_id = json.loads(out.strip().splitlines()[-1])["flow_run_id"]
    started = time.monotonic()
    run([prefect, "worker", "start", "--pool", pool, "--run-once"], timeout=600)
    seconds = time.monotonic() - started
    state = json.loads(run([sys.executable, "-c", STATE, flow_run_id]).strip().splitlines()[-1])
    return {"flow_run_id": flow_run_id, **state, "worker_seconds": round(seconds, 1)}
