"""Deployments of ``refresh-warehouse`` to a Prefect work pool, run by process workers that may
live on other machines (README "Scaling out").

    PREFECT_API_URL=http://prefect:4200/api python -m flows.pool deploy --pool betacell \\
        [--directory /srv/betacell] [--env BETACELL_LAKE_CATALOG=...] [--no-schedules]
    # on every machine that should run refreshes (same checkout at --directory, same venv):
    PREFECT_API_URL=http://prefect:4200/api prefect worker start --pool betacell

The deployments are the four of :mod:`flows.deployments` (same names, schedules, parameters and
concurrency limit of one each). The code is not shipped: a process worker runs the flow in a
subprocess whose working directory is ``--directory`` (default: this checkout), so every worker
machine needs the project installed at that path. ``--env`` values become the flow run's
environment (``job_variables.env``), e.g. the lake settings shared by all workers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from flows.deployments import ENTRYPOINT, SCHEDULES
from flows.settings import REPO_DIR


def deploy(pool: str, *, directory: Path = REPO_DIR, env: dict[str, str] | None = None,
           schedules: bool = True, names: list[str] | None = None,
           parameters: dict[str, Any] | None = None) -> list[str]:
    """Register the deployments on the Prefect API; returns their ids."""
    from prefect import flow

    source = flow.from_source(source=str(Path(directory).resolve()), entrypoint=ENTRYPOINT)
    ids = []
    for schedule in SCHEDULES:
        if names and schedule.name not in names:
            continue
        kwargs: dict[str, Any] = {
            "name": schedule.name, "description": schedule.description,
            "parameters": parameters if parameters is not None else schedule.parameters,
            "tags": ["betacell"], "concurrency_limit": 1, "work_pool_name": pool,
            "job_variables": {"env": dict(env or {})}, "print_next_steps": False,
        }
        if schedules and schedule.cron:
            kwargs["cron"] = schedule.cron
        elif schedules:
            kwargs["interval"] = schedule.interval_seconds
        ids.append(str(source.deploy(**kwargs)))
    return ids


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.pool")
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("deploy", help="register the deployments on a process work pool")
    d.add_argument("--pool", required=True)
    d.add_argument("--directory", type=Path, default=REPO_DIR,
                   help="the project checkout on the worker machines")
    d.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    d.add_argument("--no-schedules", action="store_true")
    args = parser.parse_args(argv)
    env = dict(item.split("=", 1) for item in args.env)
    for deployment_id in deploy(args.pool, directory=args.directory, env=env,
                                schedules=not args.no_schedules):
        print(deployment_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
