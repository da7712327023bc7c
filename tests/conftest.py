"""Shared fixtures.

- ``data_dir`` / ``settings``: an isolated data directory per test (fast tests use these).
- ``pipeline_settings``: the same, ready for a real pipeline run (Prefect test server, dbt's
  partial-parse state seeded so the run does not parse the project from scratch).
- ``prefect_api``: the session's Prefect server (the test harness's, a real API on a local port,
  one per test process): CLI subprocesses, workers and the README's ``make run`` record there
  (``cli_env``) instead of starting a temporary server of their own (~9 s each).
- ``built_warehouse``: the real pipeline run ONCE per session on the snapshot plus the injected
  fixtures (a registry record with a results section, ICTRP quirk exports); tests that only read
  the warehouse read this one.
- ``published_copy``: a private copy of that published data directory (warehouse, Parquet, raw
  landing, snapshot and sheets) for tests that mutate inputs, rerun or republish.

Tests using the pipeline fixtures are marked ``pipeline`` automatically; ``make test-fast``
deselects them.

The test budget: a test whose own work (its call, not the shared fixtures it sets up) takes more
than 30 s says why in its docstring: a line starting ``Why over 30 s: <reason>``, or
``(> 30 s: <reason>)`` inside a sentence. The check counts
CPU seconds of the test process and of the processes it started and waited for (dbt, CLI runs,
workers), which a loaded machine does not inflate the way it inflates wall time; a test over the
budget without that line fails, naming the seconds.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path

import orjson
import pytest
from filelock import FileLock

from flows.settings import REPO_DIR, Settings, reset_settings_cache

SNAPSHOT_DIR = REPO_DIR / "data" / "snapshot"
OUTCOMES_DIR = REPO_DIR / "data" / "outcomes"
REFERENCE_DIR = REPO_DIR.parent / "shared" / "reference"
FIXTURES = Path(__file__).parent / "fixtures"
PIPELINE_FIXTURES = {"prefect_harness", "prefect_api", "dbt_parse_state", "pipeline_settings",
                     "built_warehouse", "published_copy"}

# The first temporary Prefect server on a fresh machine migrates its database; allow for it.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if PIPELINE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.pipeline)
    # pytest-xdist hands the first tests out round robin: alternate tests that need the session
    # warehouse with tests that do not, so one worker builds it while the other keeps busy.
    needs = [i for i in items if "built_warehouse" in getattr(i, "fixturenames", ())]
    others = [i for i in items if "built_warehouse" not in getattr(i, "fixturenames", ())]
    others.sort(key=lambda i: "pipeline" not in i.keywords)  # slow independent runs first
    items[:] = [i for pair in zip_longest(needs, others) for i in pair if i is not None]


# Test modules whose tests share a session fixture that is costly to make run on one xdist
# worker, so it is made once and no worker waits on another's file lock: the lake (PostgreSQL,
# moto and one refresh), the live CLI run, the evidence traps build, the README's blocks, the
# dbt docs site, the rebuild after a sheet edit, R's batch fit. (pytest-xdist's own
# xdist_group mark does not group with pytest 9.2: pytest-xdist issue #1386.)
SAME_WORKER = {
    "lake": ("tests/integration/test_lake.py", "tests/integration/test_workers.py"),
    "live": ("tests/integration/test_live_corpus.py",),
    "traps": ("tests/integration/test_evidence_traps.py",),
    "readme": ("tests/integration/test_readme.py",),
    "docs": ("tests/integration/test_dbt_docs.py",),
    "metafor": ("tests/unit/test_pooling_metafor.py",),  # its module's one batch fit in R
    "sheet_edit": (  # the tests of the session's rebuild after a sheet edit (one test each)
        "tests/integration/test_bi_access.py::"
        "test_superset_style_reflection_keeps_working_while_a_refresh_publishes",
        "tests/integration/test_living_evidence.py::"
        "test_a_sheet_edit_that_adds_a_cohort_makes_a_digest_and_a_no_op_run_makes_none",
        "tests/integration/test_pipeline.py::"
        "test_a_rerun_with_nothing_new_neither_rebuilds_nor_republishes",
    ),
}


def worker_group(nodeid: str) -> str:
    """The unit pytest-xdist hands to one worker: the test's group, or the test alone. A group
    names test files, or single tests (``path::name``, every parameter of it)."""
    path, test = nodeid.split("::", 1)[0], nodeid.split("[", 1)[0]
    return next((group for group, members in SAME_WORKER.items()
                 if path in members or test in members), nodeid)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`-n`'s default distribution (load), with the SAME_WORKER groups kept together."""
    if config.getvalue("dist") != "load":
        return None  # an explicit --dist keeps its own scheduler
    from xdist.scheduler import LoadScopeScheduling

    class GroupedLoadScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return worker_group(nodeid)

    return GroupedLoadScheduling(config, log)


SLOW_TEST_CPU_SECONDS = 30.0
WHY_SLOW = re.compile(r"^\s*Why over 30 s: \S|> 30 s: \S", re.MULTILINE)


def cpu_seconds() -> float:
    """CPU seconds of this process and of its children that ended and were waited for."""
    own, children = (resource.getrusage(who) for who in (resource.RUSAGE_SELF,
                                                          resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def over_budget(docstring: str | None, seconds: float,
                limit: float = SLOW_TEST_CPU_SECONDS) -> str | None:
    """Why a test that took ``seconds`` breaks the budget (None: it does not)."""
    if seconds <= limit or WHY_SLOW.search(docstring or ""):
        return None
    return (f"the test took {seconds:.0f} CPU seconds (budget {limit:.0f} s) and its docstring "
            f"does not say why: make it cheaper (share the session warehouse, a small change, a "
            f"dbt unit test) or add one line 'Why over 30 s: <reason>'")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    started, limit = cpu_seconds(), SLOW_TEST_CPU_SECONDS
    result = yield
    function = getattr(item, "function", None)
    if problem := over_budget(getattr(function, "__doc__", None), cpu_seconds() - started,
                              limit):
        pytest.fail(problem, pytrace=False)
    return result


def reference_file(name: str) -> Path:
    """A file of ../shared/reference. Absent locally: the test is skipped; on CI (CI=true),
    which always has ../shared, its absence fails the test loudly."""
    path = REFERENCE_DIR / name
    if not path.exists():
        message = f"{path} is missing (../shared/reference beside the repo)"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message + "; CI always has it")
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def metafor():
    """R's metafor, the oracle of the pooled numbers: one Rscript process for the whole session
    (tests/oracle/metafor.py). Without R or metafor the tests skip, saying what to install;
    with CI=true (.ci/run installs them) they fail."""
    from tests.oracle.metafor import Metafor, MetaforMissing

    try:
        oracle = Metafor.start()
    except MetaforMissing as exc:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"{exc}; .ci/run installs them on CI")
        pytest.skip(str(exc))
    yield oracle
    oracle.close()


def point_at(monkeypatch: pytest.MonkeyPatch, data: Path, snapshot: Path, outcomes: Path) -> None:
    monkeypatch.setenv("BETACELL_DATA_DIR", str(data))
    monkeypatch.setenv("BETACELL_SNAPSHOT_DIR", str(snapshot))
    monkeypatch.setenv("BETACELL_OUTCOMES_DIR", str(outcomes))
    monkeypatch.setenv("BETACELL_HTTP_BACKOFF_INITIAL_SECONDS", "0")
    monkeypatch.setenv("BETACELL_HTTP_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("BETACELL_SOURCE_RETRY_DELAYS_SECONDS", "")  # no minutes-long task retries
    reset_settings_cache()


@pytest.fixture(scope="session")
def prefect_harness():
    """One Prefect API (temporary SQLite) for the whole session: flows run for real."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@dataclass(frozen=True)
class PrefectApi:
    """The session's Prefect server: its API URL and the folder of its SQLite database."""

    url: str
    database_dir: Path

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].split("/", 1)[0])


@pytest.fixture(scope="session")
def prefect_api(prefect_harness) -> PrefectApi:
    """The harness's server, for processes of their own (CLI runs, workers, ``make run``)."""
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_DATABASE_CONNECTION_URL
    from sqlalchemy.engine import make_url

    database = make_url(PREFECT_SERVER_DATABASE_CONNECTION_URL.value()).database
    return PrefectApi(PREFECT_API_URL.value(), Path(database).parent)


def cli_env(prefect_api: PrefectApi, **extra: str) -> dict[str, str]:
    """The environment of a ``betacell`` subprocess that records on the session's server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env["PREFECT_API_URL"] = prefect_api.url
    env.update(extra)
    return env


def session_dir(tmp_path_factory, name: str) -> Path:
    """A directory shared by every worker of this test session (pytest-xdist), or by the one
    process when the suite runs without workers. Build things there once, under a file lock."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    return base / name


@pytest.fixture(scope="session")
def dbt_parse_state(tmp_path_factory) -> Path:
    """dbt parses the project once per session; every pipeline run starts from this state
    (the profile does not depend on the data directory, so the state is valid for all)."""
    from flows.transform import run_dbt

    root = session_dir(tmp_path_factory, "dbt_parse")
    settings = Settings(data_dir=root / "data")
    state = settings.build_dir / "dbt_target" / "partial_parse.msgpack"
    with FileLock(f"{root}.lock"):
        if not state.exists():
            settings.build_dir.mkdir(parents=True, exist_ok=True)
            run_dbt(settings, ["parse"], settings.build_database)
    assert state.exists(), "dbt parse wrote no partial-parse state"
    return state


def seed_parse_state(data: Path, state: Path) -> None:
    target = data / "build" / "dbt_target"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(state, target / state.name)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh BETACELL_DATA_DIR for one test, using the shipped snapshot."""
    target = tmp_path / "data"
    target.mkdir()
    point_at(monkeypatch, target, SNAPSHOT_DIR, OUTCOMES_DIR)
    yield target
    reset_settings_cache()


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    from flows.settings import get_settings

    return get_settings()


@pytest.fixture
def pipeline_settings(prefect_harness, dbt_parse_state, data_dir) -> Settings:
    """Settings for a test that runs the pipeline itself in a fresh data directory."""
    from flows.settings import get_settings

    seed_parse_state(data_dir, dbt_parse_state)
    return get_settings()


@pytest.fixture
def snapshot_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A writable copy of the shipped snapshot (for tests that inject bad records)."""
    target = tmp_path / "snapshot"
    shutil.copytree(SNAPSHOT_DIR, target)
    monkeypatch.setenv("BETACELL_SNAPSHOT_DIR", str(target))
    reset_settings_cache()
    return target


def inject_studies(snapshot: Path, *records: dict) -> None:
    """Append ClinicalTrials.gov records to a snapshot copy's page."""
    path = snapshot / "ctgov" / "studies-0001.json"
    doc = orjson.loads(path.read_bytes())
    doc["studies"].extend(records)
    path.write_bytes(orjson.dumps(doc))


def edit_one_sheet_value(outcomes: Path) -> None:
    """The smallest change a refresh rebuilds for: one value of the main outcome sheet (only
    that sheet is landed and loaded again; every other source is skipped as unchanged)."""
    sheet = outcomes / "published_outcomes.csv"
    text = sheet.read_text()
    assert "adults with T1D" in text, "the sheet no longer has the value this edit changes"
    sheet.write_text(text.replace("adults with T1D", "Adults with T1D", 1))


def set_data_timestamp(snapshot: Path, stamp: str) -> None:
    path = snapshot / "ctgov" / "version.json"
    doc = orjson.loads(path.read_bytes())
    doc["dataTimestamp"] = stamp
    path.write_bytes(orjson.dumps(doc))


@dataclass(frozen=True)
class Built:
    """The session's published data directory and the inputs it was built from."""

    root: Path
    summary: dict

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def snapshot(self) -> Path:
        return self.root / "snapshot"

    @property
    def outcomes(self) -> Path:
        return self.root / "outcomes"

    @property
    def warehouse(self) -> Path:
        return self.data / "warehouse.duckdb"

    @property
    def marts(self) -> Path:
        return self.data / "marts"


INJECTED_ICTRP = ("export_quirks.xml", "export_quirks.csv")
# One bad line among ~160: rejected with file, line and reason; the run still publishes.
REJECTED_STUDY = {"protocolSection": {"identificationModule": {"nctId": "NCT123",
                                                               "briefTitle": "bad id"}}}


@pytest.fixture(scope="session")
def built_warehouse(prefect_harness, dbt_parse_state, tmp_path_factory) -> Built:
    """The pipeline run once on the snapshot plus injected fixtures: the registry record with a
    results section (NCT09999950), a record with a malformed id (rejected) and the ICTRP quirk
    exports. Read it; never write it."""
    root = session_dir(tmp_path_factory, "built")
    done = root / "summary.json"
    with FileLock(f"{root}.lock"):
        if not done.exists():
            summary = build_session_warehouse(root, dbt_parse_state)
            done.write_text(json.dumps(summary, default=str))
    return Built(root, json.loads(done.read_text()))


def build_session_warehouse(root: Path, dbt_parse_state: Path) -> dict:
    from flows.refresh import refresh_warehouse
    from tests.fixtures.ctgov_records import WITH_RESULTS

    built = Built(root, {})
    shutil.copytree(SNAPSHOT_DIR, built.snapshot)
    shutil.copytree(OUTCOMES_DIR, built.outcomes)
    inject_studies(built.snapshot, WITH_RESULTS, REJECTED_STUDY)
    for name in INJECTED_ICTRP:
        shutil.copy(FIXTURES / "ictrp" / name, built.snapshot / "ictrp" / name)
    built.data.mkdir()
    seed_parse_state(built.data, dbt_parse_state)
    patch = pytest.MonkeyPatch()
    try:
        point_at(patch, built.data, built.snapshot, built.outcomes)
        return refresh_warehouse(source="snapshot")
    finally:
        patch.undo()
        reset_settings_cache()


@pytest.fixture
def published_copy(built_warehouse: Built, tmp_path: Path, monkeypatch) -> Settings:
    """A private copy of the session's published data directory and its inputs; the
    environment points at it. Rerun, mutate or republish freely."""
    from flows.settings import get_settings

    copy = Built(tmp_path / "published", built_warehouse.summary)
    shutil.copytree(built_warehouse.root, copy.root, symlinks=True,  # the published layout
                    ignore=shutil.ignore_patterns("*.lock", "duckdb_tmp", "summary.json"))
    point_at(monkeypatch, copy.data, copy.snapshot, copy.outcomes)
    yield get_settings()
    reset_settings_cache()
