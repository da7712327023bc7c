"""Every deployment loads, with its schedule and entrypoint."""

from __future__ import annotations

from flows.deployments import SCHEDULES, build_deployments


def test_every_deployment_has_a_schedule_and_the_refresh_entrypoint():
    deployments = {d.name: d for d in build_deployments()}
    assert set(deployments) == {s.name for s in SCHEDULES} == {
        "registries-daily", "publications-weekly", "outcome-sheets-on-change",
        "full-refresh-weekly"}
    for schedule in SCHEDULES:
        deployment = deployments[schedule.name]
        assert deployment.entrypoint.endswith("flows/pipeline.py:refresh_warehouse")
        assert deployment.flow_name == "refresh-warehouse"
        assert len(deployment.schedules) == 1
        configured = deployment.schedules[0].schedule
        if schedule.cron:
            assert configured.cron == schedule.cron
        else:
            assert configured.interval.total_seconds() == schedule.interval_seconds
        assert deployment.parameters == schedule.parameters
    assert deployments["registries-daily"].parameters["stages"] == ["registries"]
    assert deployments["full-refresh-weekly"].parameters["full"] is True
