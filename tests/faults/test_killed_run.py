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
import time

import psutil
import pytest

from flows.errors import BetacellError
from flows.refresh import refresh_warehouse
from flows.runlock import refresh_lock
from flows.settings import REPO_DIR
from tests.conftest import set_data_timestamp

pytestmark = pytest.mark.integration


def _dbt(parent: psutil.Process) -> psutil.Process | None:
    for child in parent.children(recursive=True):
        try:
            if any(part.endswith("dbt") for part in child.cmdline()[:2]):
                return child
        except psutil.Error:
            continue
    return None


def test_killing_only_the_refresh_process_orphans_nothing_that_blocks(published_copy):
    settings = published_copy
    set_data_timestamp(settings.snapshot_path, "2026-06-01T09:00:00")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "180"
    process = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "run", "--source", "snapshot", "--full"],
        env=env, cwd=REPO_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    parent = psutil.Process(process.pid)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and (dbt := _dbt(parent)) is None:
        assert process.poll() is None, "the refresh ended before dbt started"
        time.sleep(0.2)
    assert dbt is not None, "dbt never started"
    others = [p for p in parent.children(recursive=True) if p.pid != dbt.pid]
    recorded = json.loads((settings.build_dir / ".refresh.lock").read_text())
    assert recorded["holder"]["pid"] == process.pid
    assert dbt.pid in {c["pid"] for c in recorded["children"]}

    os.kill(process.pid, signal.SIGKILL)  # the refresh alone, as a supervisor might
    process.wait(timeout=30)
    gone, _ = psutil.wait_procs([dbt], timeout=15)
    assert gone, "dbt outlived the refresh that started it"
    orphans = [p for p in others if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]

    try:
        summary = refresh_warehouse(source="snapshot", stages=["outcomes"])  # at once
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
