"""The Makefile's install heals: it checks the Python version before creating .venv and says
what to do, never reuses a .venv whose Python is broken or unsupported, and reuses a good one;
`make run` records its flow run on the Prefect server this checkout's `make serve` runs, and on
no other."""

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


def make_run(prefect_dir: Path, *args: str, **env: str) -> str:
    """What `make run` would execute (dry run), with this checkout's Prefect state in
    ``prefect_dir`` and no PREFECT_API_URL unless ``env`` gives one."""
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("MAKE", "MFLAGS", "PREFECT_API_URL"))}
    result = subprocess.run(["make", "--no-print-directory", "-C", str(REPO_DIR), "-n", "run",
                             f"PREFECT_DIR={prefect_dir}", *args], capture_output=True, text=True,
                            env={**clean, **env}, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def started_by_make_serve(prefect_dir: Path, url: str, pid: int) -> None:
    """The files `make serve` writes beside its server."""
    prefect_dir.mkdir(parents=True, exist_ok=True)
    (prefect_dir / "server.pid").write_text(f"{pid}\n")
    (prefect_dir / "server.url").write_text(f"{url}\n")


def test_make_run_records_on_the_server_this_checkouts_make_serve_started(httpserver, tmp_path):
    # a stand-in for the server `make serve` starts: it answers the health check, and its
    # process (here this test's own, alive) and URL are in this checkout's files
    httpserver.expect_request("/api/health").respond_with_json(True)
    url = f"http://127.0.0.1:{httpserver.port}/api"
    started_by_make_serve(tmp_path, url, os.getpid())
    command = make_run(tmp_path)
    assert f"PREFECT_HOME={tmp_path} PREFECT_API_URL={url}" in command
    assert "betacell run --source snapshot" in command


def test_a_server_answering_on_the_port_without_this_checkouts_file_is_not_used(httpserver,
                                                                                 tmp_path):
    """Another checkout's `make serve` on port 4200 recorded this checkout's runs."""
    httpserver.expect_request("/api/health").respond_with_json(True)
    command = make_run(tmp_path / "prefect", f"PREFECT_PORT={httpserver.port}")
    assert "PREFECT_API_URL" not in command and "betacell run --source snapshot" in command


def test_a_server_whose_make_serve_is_gone_is_not_used(httpserver, tmp_path):
    httpserver.expect_request("/api/health").respond_with_json(True)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    started_by_make_serve(tmp_path, f"http://127.0.0.1:{httpserver.port}/api", gone.pid)
    assert "PREFECT_API_URL" not in make_run(tmp_path, f"PREFECT_PORT={httpserver.port}")


def test_a_recorded_server_that_does_not_answer_is_not_used(tmp_path):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started_by_make_serve(tmp_path, f"http://127.0.0.1:{port}/api", os.getpid())
    command = make_run(tmp_path, f"PREFECT_PORT={port}")
    assert "PREFECT_API_URL" not in command and "betacell run --source snapshot" in command


def test_an_explicit_prefect_api_url_is_left_to_the_run(httpserver, tmp_path):
    httpserver.expect_request("/api/health").respond_with_json(True)
    started_by_make_serve(tmp_path, f"http://127.0.0.1:{httpserver.port}/api", os.getpid())
    command = make_run(tmp_path, PREFECT_API_URL="http://127.0.0.1:9/api")
    assert "PREFECT_API_URL" not in command  # the environment's own value reaches the run


def test_make_serve_records_its_server_and_refuses_a_port_already_served(httpserver, tmp_path):
    dry = make("-n", "serve", f"PREFECT_DIR={tmp_path}", "PREFECT_PORT=4399").stdout
    assert f"> {tmp_path}/server.pid" in dry and f"> {tmp_path}/server.url" in dry
    assert f"rm -f {tmp_path}/server.pid {tmp_path}/server.url" in dry  # gone when it stops
    httpserver.expect_request("/api/health").respond_with_json(True)
    taken = make("serve", f"PREFECT_DIR={tmp_path}", f"PREFECT_PORT={httpserver.port}")
    assert taken.returncode != 0 and "already answers on port" in taken.stderr
    assert not (tmp_path / "server.pid").exists()


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
