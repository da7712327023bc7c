"""The Makefile's install heals: it checks the Python version before creating .venv and says
what to do, never reuses a .venv whose Python is broken or unsupported, and reuses a good one;
`make run` records its flow run on the local Prefect server when `make serve` runs one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows.settings import REPO_DIR


def make(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "MFLAGS"))}
    return subprocess.run(["make", "--no-print-directory", "-C", str(REPO_DIR), *args],
                          capture_output=True, text=True, env=env, timeout=120)


def fake_python(tmp_path: Path, version: str) -> Path:
    """An interpreter that reports `version` and can do nothing else."""
    path = tmp_path / f"python{version}"
    path.write_text(f"#!/bin/sh\necho {version}\n")
    path.chmod(0o755)
    return path


@pytest.mark.parametrize("version", ["3.13", "3.10"])
def test_an_unsupported_python_is_refused_with_what_to_do(tmp_path, version):
    result = make("check-python", f"PYTHON={fake_python(tmp_path, version)}")
    assert result.returncode != 0
    assert f"is Python {version}; Betacell supports Python 3.11 3.12" in result.stderr
    assert "make PYTHON=python3.12" in result.stderr


def test_a_missing_python_is_refused_with_what_to_do(tmp_path):
    result = make("check-python", f"PYTHON={tmp_path / 'nonesuch'}")
    assert result.returncode != 0 and "make PYTHON=python3.12" in result.stderr


def test_the_running_python_is_supported():
    assert make("check-python", f"PYTHON={sys.executable}").returncode == 0


def test_a_broken_venv_loses_its_stamp_and_is_recreated(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(tmp_path / "gone" / "python3.13")  # dangling
    (venv / ".installed-stamp").touch()
    # with an unsupported PYTHON the rebuild stops at the version check, before any install
    result = make("lint", f"VENV={venv}", f"PYTHON={fake_python(tmp_path, '3.13')}")
    assert result.returncode != 0
    assert "is broken or uses Python" in result.stdout and "recreating it" in result.stdout
    assert not venv.exists()
    assert "make PYTHON=python3.12" in result.stderr
    assert "pip install" not in result.stdout


def test_a_venv_with_an_unsupported_python_is_not_reused(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(fake_python(tmp_path, "3.13"))
    (venv / ".installed-stamp").touch()
    result = make("-n", "lint", f"VENV={venv}")
    assert not (venv / ".installed-stamp").exists()
    assert "pip install" in result.stdout  # it would install again instead of running ruff


def test_a_good_venv_with_a_fresh_stamp_is_reused(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    stamp = venv / ".installed-stamp"
    stamp.touch()
    later = time.time() + 60
    os.utime(stamp, (later, later))  # newer than pyproject.toml
    result = make("-n", "lint", f"VENV={venv}")
    assert result.returncode == 0
    assert "pip install" not in result.stdout and "ruff check" in result.stdout
    assert stamp.exists()


def test_make_run_records_on_the_local_prefect_server_when_one_answers(httpserver):
    # a stand-in for the server `make serve` starts: it answers the health check
    httpserver.expect_request("/api/health").respond_with_json(True)
    port = httpserver.port
    command = make("-n", "run", f"PREFECT_PORT={port}").stdout
    assert f"PREFECT_API_URL=http://127.0.0.1:{port}/api" in command
    assert "betacell run --source snapshot" in command


def test_make_run_uses_a_temporary_server_when_none_answers():
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = make("-n", "run", f"PREFECT_PORT={port}").stdout
    assert "PREFECT_API_URL" not in command and "betacell run --source snapshot" in command


def test_make_test_shows_the_slowest_tests(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    stamp = venv / ".installed-stamp"
    stamp.touch()
    later = time.time() + 60
    os.utime(stamp, (later, later))  # newer than pyproject.toml: nothing to install
    command = make("-n", "test", f"VENV={venv}").stdout
    assert "pytest -n auto --durations=15" in command


def test_what_pip_install_leaves_behind_is_ignored():
    """`pip install .` builds in build/ (setuptools) and writes *.egg-info: neither shows as an
    untracked file."""
    for path in ("build/lib/flows/cli.py", "build/bdist.linux-x86_64/wheel/x",
                 "betacell.egg-info/PKG-INFO"):
        result = subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO_DIR)
        assert result.returncode == 0, f"{path} is not ignored"
    tracked = subprocess.run(["git", "check-ignore", "-q", "dashboards/build.py"], cwd=REPO_DIR)
    assert tracked.returncode == 1, "only the top-level build/ folder is ignored"
