"""One refresh at a time per data directory, and no orphans left behind.

The lock is an ``flock`` on ``data/build/.refresh.lock`` (released by the kernel when its
holder dies) whose content names the holder — pid, start time, host — and the child processes
it started (the temporary Prefect server, dbt). dbt is also tied to its parent's life
(``PR_SET_PDEATHSIG``), so it stops when a refresh is killed. Processes that outlive a killed
refresh anyway (a temporary Prefect server) are stopped by the next refresh: it finds the
dead holder's record and ends the recorded children that are still the same processes (pid and
start time both match, so a reused pid is never touched).
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import psutil

from flows.errors import BetacellError
from flows.landing import utc_now
from flows.settings import Settings

PR_SET_PDEATHSIG = 1
_held: dict[str, Any] = {}  # this process's lock: {"fd": int, "path": Path, "record": dict}


def _identity(process: psutil.Process) -> dict[str, Any]:
    with process.oneshot():
        return {"pid": process.pid, "create_time": process.create_time(),
                "cmdline": " ".join(process.cmdline())[:300]}


def _same_process(record: dict[str, Any]) -> psutil.Process | None:
    """The live process a record names, or None if it exited (or its pid was reused)."""
    try:
        process = psutil.Process(int(record["pid"]))
        if abs(process.create_time() - float(record["create_time"])) > 0.05:
            return None
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process
    except (psutil.Error, KeyError, TypeError, ValueError):
        return None


def read_record(path: Path) -> dict[str, Any] | None:
    """The lock record: the first JSON document of the file (a shorter record written over a
    longer one may leave a tail until the file is cut to size)."""
    try:
        text = path.read_text().lstrip()
        return json.JSONDecoder().raw_decode(text)[0] if text else None
    except (OSError, ValueError):
        return None


_read = read_record


def _write(fd: int, record: dict[str, Any]) -> None:
    """Write over the old record, then cut the file to size: at no moment is the file empty
    (truncating first left a window in which a kill lost the record of the children)."""
    data = json.dumps(record, indent=2).encode()
    os.pwrite(fd, data, 0)
    os.ftruncate(fd, len(data))
    os.fsync(fd)


def stop_orphans(record: dict[str, Any] | None) -> list[str]:
    """End the children a dead holder recorded that still run; returns what was stopped."""
    if not record or _same_process(record.get("holder") or {}) is not None:
        return []
    stopped, alive = [], []
    for child in record.get("children", []):
        process = _same_process(child)
        if process is None:
            continue
        with suppress(psutil.Error):
            family = [process, *process.children(recursive=True)]
            for member in family:
                member.terminate()
            alive += family
            stopped.append(f"pid {child['pid']} ({child.get('cmdline', '')[:80]})")
    _, still = psutil.wait_procs(alive, timeout=10)
    for member in still:
        with suppress(psutil.Error):
            member.kill()
    return stopped


@contextmanager
def refresh_lock(settings: Settings) -> Iterator[list[str]]:
    """Hold the data directory's refresh lock; yields the orphans of a dead run it stopped."""
    settings.build_dir.mkdir(parents=True, exist_ok=True)
    path = settings.build_dir / ".refresh.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        previous = _read(path)
        stopped: list[str] = []
        if not _try_lock(fd):
            holder = (previous or {}).get("holder") or {}
            if _same_process(holder) is None:
                stopped = _retry_after_orphans(fd, previous)
            if not stopped:
                raise BetacellError(
                    f"another refresh is running on {settings.data_path} (pid "
                    f"{holder.get('pid', '?')} on {holder.get('host', '?')}, started "
                    f"{holder.get('started_at', '?')}; lock {path}); wait for it to finish")
        stopped += stop_orphans(previous)
        me = psutil.Process()
        record = {"holder": {**_identity(me), "host": socket.gethostname(),
                             "started_at": utc_now().isoformat()},
                  "children": [_identity(c) for c in _descendants(me) if _is_prefect_server(c)]}
        _write(fd, record)
        _held.update(fd=fd, path=path, record=record)
        try:
            yield stopped
        finally:
            _held.clear()
            with suppress(OSError):
                _write(fd, {"holder": None, "children": [], "released_at": utc_now().isoformat()})
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _retry_after_orphans(fd: int, previous: dict[str, Any] | None) -> list[str]:
    """The holder is dead but the lock is held: an orphan inherited it. Stop the orphans and
    take the lock; returns what was stopped ([] when the lock could not be taken)."""
    stopped = stop_orphans(previous)
    deadline = time.monotonic() + 10
    while stopped and time.monotonic() < deadline:
        if _try_lock(fd):
            return stopped
        time.sleep(0.1)
    return []


def _descendants(process: psutil.Process) -> list[psutil.Process]:
    try:
        return process.children(recursive=True)
    except psutil.Error:
        return []


def _is_prefect_server(process: psutil.Process) -> bool:
    """The temporary Prefect server a bare run starts (the only child that exists before the
    flow takes the lock). Anything else running under the same parent is not ours to stop."""
    try:
        command = " ".join(process.cmdline())
    except psutil.Error:
        return False
    return "uvicorn" in command and "prefect.server" in command


def record_child(pid: int) -> None:
    """Add a child process to the lock record (so the next run can stop it if we die)."""
    if not _held:
        return
    with suppress(psutil.Error, OSError):
        _held["record"]["children"].append(_identity(psutil.Process(pid)))
        _write(_held["fd"], _held["record"])


def die_with_parent() -> None:
    """``preexec_fn`` for children: the kernel sends SIGTERM when the parent dies."""
    with suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
