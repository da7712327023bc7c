"""A killed refresh leaves no running children and no lock in the way of the next one.

The probe SIGKILLed the refresh process alone (not its process group): dbt and the temporary
Prefect server kept running, and an immediate restart failed on a lock an orphan held. Now dbt
dies with its parent, and the next refresh stops what the dead one left (recorded in the lock
file, matched by pid *and* start time) before it starts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import psutil
import pytest

from flows.errors import BetacellError
from flows.refresh import refresh_warehouse
from flows.runlock import _is_prefect_server, read_record, refresh_lock
from tests.conftest import edit_one_sheet_value
from tests.helpers import start_refresh_until_dbt_builds

pytestmark = pytest.mark.integration


def test_killing_only_the_refresh_process_orphans_nothing_that_blocks(published_copy):
    """A plain `betacell run` (its own temporary Prefect server: the orphan under test), sent to
    dbt at once by one changed sheet value; the next run needs no rebuild (registries only)."""
    settings = published_copy
    edit_one_sheet_value(settings.outcomes_path)
    process, dbt = start_refresh_until_dbt_builds(full=False)
    parent = psutil.Process(process.pid)
    servers = [p for p in parent.children(recursive=True) if _is_prefect_server(p)]
    assert servers, "no temporary Prefect server: the orphan case is not reproduced"
    recorded = read_record(settings.build_dir / ".refresh.lock")
    assert recorded["holder"]["pid"] == process.pid
    assert dbt.pid in {c["pid"] for c in recorded["children"]}

    os.kill(process.pid, signal.SIGKILL)  # the refresh alone, as a supervisor might
    process.wait(timeout=30)
    gone, _ = psutil.wait_procs([dbt], timeout=15)
    assert gone, "dbt outlived the refresh that started it"
    orphans = [p for p in servers if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]

    try:
        summary = refresh_warehouse(source="snapshot", stages=["registries"])  # at once
        assert summary["published_version"] or summary["nothing_changed"]
        _, alive = psutil.wait_procs(orphans, timeout=15)
        assert alive == [], f"still running after the next refresh: {alive}"
    finally:
        for orphan in orphans:
            if orphan.is_running():
                orphan.kill()
        os.killpg(process.pid, signal.SIGKILL) if _group_alive(process.pid) else None


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_second_refresh_is_refused_naming_the_holder(settings):
    expected = rf"another refresh is running .*\(pid {os.getpid()} on "
    with refresh_lock(settings), pytest.raises(BetacellError, match=expected), \
            refresh_lock(settings):
        pass


def test_a_lock_held_by_a_dead_runs_orphan_is_taken_over(settings):
    path = settings.build_dir / ".refresh.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_identity = {"pid": dead.pid, "create_time": psutil.Process(dead.pid).create_time()}
    dead.wait()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, time\n"
        f"fd = os.open({str(path)!r}, os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('locked', flush=True)\ntime.sleep(600)\n")],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    orphan = psutil.Process(holder.pid)
    path.write_text(json.dumps({"holder": dead_identity, "children": [
        {"pid": orphan.pid, "create_time": orphan.create_time(), "cmdline": "orphan"}]}))
    try:
        with refresh_lock(settings) as stopped:
            assert stopped == [f"pid {orphan.pid} (orphan)"]
        assert holder.wait(timeout=15) is not None
    finally:
        if holder.poll() is None:
            holder.kill()
