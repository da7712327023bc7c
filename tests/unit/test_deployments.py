"""The deployments a user reads about in the README are the ones `betacell serve` serves."""

from __future__ import annotations

import json
import re

from flows.deployments import build_deployments
from flows.settings import REPO_DIR

ROW = re.compile(r"^\| `(?P<name>[a-z-]+)` \| (?P<schedule>[^|]+) \| `(?P<parameters>\{.*\})` \|")


def readme_schedules() -> dict[str, tuple[str, dict]]:
    section = (REPO_DIR / "README.md").read_text().split("## Scheduled runs", 1)[1]
    section = section.split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        if match := ROW.match(line):
            rows[match["name"]] = (match["schedule"].strip(), json.loads(match["parameters"]))
    return rows


def test_every_deployment_is_the_one_the_readme_documents():
    documented = readme_schedules()
    deployments = {d.name: d for d in build_deployments()}
    assert set(deployments) == set(documented) and len(documented) == 4
    for name, (schedule, parameters) in documented.items():
        deployment = deployments[name]
        assert deployment.entrypoint.endswith("flows/refresh.py:refresh_warehouse")
        assert deployment.flow_name == "refresh-warehouse"
        assert deployment.concurrency_limit == 1
        (configured,) = [s.schedule for s in deployment.schedules]
        if schedule.startswith("cron"):
            assert configured.cron == schedule.removeprefix("cron").strip(" `")
        else:
            seconds = int(re.search(r"`(\d+)`", schedule).group(1))
            assert configured.interval.total_seconds() == seconds
        assert deployment.parameters == parameters
