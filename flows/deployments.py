"""Scheduled deployments of ``refresh-warehouse``, served by ``betacell serve`` / ``make serve``.

Schedules only fire against a real Prefect server (not the temporary one a bare flow run starts):
``make serve`` starts ``prefect server start`` and then serves these. To use an existing server
or work pool instead, see README ("Scheduled runs").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flows.refresh import refresh_warehouse

ENTRYPOINT = "flows/refresh.py:refresh_warehouse"


@dataclass(frozen=True)
class Schedule:
    name: str
    description: str
    parameters: dict[str, Any]
    cron: str | None = None
    interval_seconds: int | None = None


SCHEDULES = (
    Schedule("registries-daily", "ClinicalTrials.gov incremental sync, daily after the registry's "
             "09:00 UTC data refresh", {"source": "live", "stages": ["registries"]},
             cron="30 10 * * *"),
    Schedule("publications-weekly", "PubMed and Europe PMC, weekly (Sunday night)",
             {"source": "live", "stages": ["publications"]}, cron="0 3 * * 0"),
    Schedule("outcome-sheets-on-change", "Curated outcome sheets: checked every 15 minutes; a run "
             "loads a sheet only when its sha256 changed (otherwise it is a no-op rebuild)",
             {"source": "live", "stages": ["outcomes"]}, interval_seconds=900),
    Schedule("full-refresh-weekly", "Everything, with the bulk ClinicalTrials.gov archive "
             "(Saturday night)", {"source": "live", "full": True,
                                  "stages": ["registries", "publications", "outcomes"]},
             cron="0 2 * * 6"),
)


def build_deployments() -> list[Any]:
    """RunnerDeployment objects (no server needed to build them)."""
    deployments = []
    for schedule in SCHEDULES:
        kwargs: dict[str, Any] = {
            "name": schedule.name,
            "description": schedule.description,
            "parameters": schedule.parameters,
            "tags": ["betacell"],
            "concurrency_limit": 1,  # one refresh at a time: DuckDB has one writer
        }
        if schedule.cron:
            kwargs["cron"] = schedule.cron
        else:
            kwargs["interval"] = schedule.interval_seconds
        deployments.append(refresh_warehouse.to_deployment(**kwargs))
    return deployments


def serve_all() -> None:  # pragma: no cover - long-running
    from prefect import serve

    serve(*build_deployments(), pause_on_shutdown=False)
