"""The dashboard's dbt exposure lists exactly the marts its pages read: every ``mart("...")``
call under dashboards/ (pages, the overview and the helpers they share), read from the source."""

from __future__ import annotations

import re

import yaml

from flows.settings import REPO_DIR

EXPOSURES = REPO_DIR / "dbt_project" / "models" / "marts" / "_exposures.yml"
MART_CALL = re.compile(r"""\bmart\(\s*["']([a-z_0-9]+)["']\s*\)""")
REF = re.compile(r"""ref\(\s*['"]([a-z_0-9]+)['"]\s*\)""")


def marts_the_pages_read() -> set[str]:
    return {name for path in (REPO_DIR / "dashboards").rglob("*.py")
            for name in MART_CALL.findall(path.read_text(encoding="utf-8"))}


def dashboard_exposure_refs() -> set[str]:
    exposures = yaml.safe_load(EXPOSURES.read_text(encoding="utf-8"))["exposures"]
    dashboard = next(e for e in exposures if e["type"] == "dashboard")
    return {REF.fullmatch(ref.strip()).group(1) for ref in dashboard["depends_on"]}


def test_the_dashboard_exposure_lists_the_marts_the_pages_read():
    read = marts_the_pages_read()
    assert len(read) > 10, "no mart() calls found under dashboards/"
    listed = dashboard_exposure_refs()
    assert listed == read, (
        f"_exposures.yml lists marts no page reads: {sorted(listed - read)}; "
        f"pages read marts it does not list: {sorted(read - listed)}")
