"""The README is executable: every fenced shell, SQL and Python block of README.md and
data/outcomes/README.md runs as written, in document order, in a fresh clone of the repository
(the tracked files) with the project's .venv — the way jaffle_shop_duckdb's CI runs its
quickstart. The query blocks read the published warehouse with the `duckdb` command, read-only.

What the test session already has is not made again: the clone links the installed .venv (no
second install), its dbt starts from the session's parse state, and the README's `make run`
records on the session's Prefect server (``PREFECT_PORT``) instead of starting a temporary
one. That `make run` is a real refresh of the shipped snapshot from scratch (the README's
counts are those of a fresh clone; the session warehouse holds injected records, so it cannot
stand in). The blocks run once per test session (shared by the xdist workers under a file
lock); each block is one test.

A block that cannot run here is marked by the line right before it,
``<!-- readme-test: skip (the reason) -->``, and is skipped with that reason. Every fenced block
names its language (``text`` for diagrams and sample output), so none escapes by omission.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from flows.settings import REPO_DIR

pytestmark = pytest.mark.integration
DOCUMENTS = ("README.md", "data/outcomes/README.md")
RUNNABLE = {"bash": "shell", "sh": "shell", "shell": "shell", "sql": "sql", "python": "python"}
SKIP_MARKER = re.compile(r"<!--\s*readme-test:\s*skip\s*\((?P<reason>[^)]+)\)\s*-->")
FENCE = re.compile(r"^```(?P<lang>[\w-]*)\s*$")


@dataclass(frozen=True)
class Block:
    document: str
    line: int
    language: str
    code: str
    skip_reason: str | None

    @property
    def id(self) -> str:
        return f"{self.document}:{self.line}:{self.language}"


def readme_blocks() -> list[Block]:
    blocks = []
    for document in DOCUMENTS:
        lines = (REPO_DIR / document).read_text().splitlines()
        index = 0
        while index < len(lines):
            opening = FENCE.match(lines[index])
            if not opening:
                index += 1
                continue
            start = index
            index += 1
            while index < len(lines) and lines[index].rstrip() != "```":
                index += 1
            previous = next((lines[i] for i in range(start - 1, -1, -1) if lines[i].strip()), "")
            marker = SKIP_MARKER.fullmatch(previous.strip())
            blocks.append(Block(document, start + 1, opening.group("lang"),
                                "\n".join(lines[start + 1:index]) + "\n",
                                marker.group("reason").strip() if marker else None))
            index += 1
    return blocks


BLOCKS = readme_blocks()


def test_every_block_names_its_language_and_markers_sit_on_blocks():
    assert len([b for b in BLOCKS if b.language in RUNNABLE]) >= 10
    unnamed = [b.id for b in BLOCKS if not b.language]
    assert unnamed == [], "name the language of every fenced block (text for output)"
    for document in DOCUMENTS:
        lines = [line.strip() for line in (REPO_DIR / document).read_text().splitlines()]
        markers = [line for line in lines if line.startswith("<!--") and "readme-test" in line]
        assert all(SKIP_MARKER.fullmatch(line) for line in markers), markers  # well-formed
        # each marker line is followed by its block
        assert len(markers) == sum(1 for b in BLOCKS if b.document == document and b.skip_reason)


def make_clone(root: Path, parse_state: Path) -> Path:
    """A fresh clone: the tracked files, the project's .venv linked beside them, and dbt's
    partial-parse state of the session (dbt parses nothing again)."""
    from tests.conftest import seed_parse_state

    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO_DIR, capture_output=True,
                             check=True).stdout.decode().split("\0")
    for name in filter(None, tracked):
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_DIR / name, target)
    (root / ".venv").symlink_to(REPO_DIR / ".venv")
    seed_parse_state(root / "data", parse_state)
    return root


def record_session_server_as_served(clone: Path, prefect_api) -> None:
    """What the clone's `make serve` would have written (its server's pid and URL), naming the
    session's Prefect server: `make run` attaches only to the server its checkout served. The
    pid is this test process's, which keeps the session's server alive while it lives."""
    prefect_dir = clone / "data" / "prefect"
    prefect_dir.mkdir(parents=True, exist_ok=True)
    (prefect_dir / "server.pid").write_text(f"{os.getpid()}\n")
    (prefect_dir / "server.url").write_text(f"{prefect_api.url}\n")


def block_environment(prefect_port: int | None = None) -> dict[str, str]:
    """The environment of a block: the .venv's commands first, no test settings; `make run`
    records on the Prefect server answering on ``prefect_port`` (a free port: none)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BETACELL_", "PREFECT_API", "MAKE", "MFLAGS", "PYTEST_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "180"
    if prefect_port is None:  # never someone else's server on this machine
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            prefect_port = sock.getsockname()[1]
    env["PREFECT_PORT"] = str(prefect_port)
    return env


def _command(block: Block) -> list[str]:
    if block.language == "sql":
        return ["duckdb", "-readonly", "-bail", "data/warehouse.duckdb"]
    if block.language == "python":
        return ["python", "-"]
    return ["bash", "-e", "-o", "pipefail", "-"]


def run_block(block: Block, cwd: Path, env: dict[str, str]) -> dict[str, object]:
    done = subprocess.run(_command(block), input=block.code, cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)
    return {"returncode": done.returncode, "stdout": done.stdout, "stderr": done.stderr}


def problem_with(result: dict[str, object]) -> str | None:
    """Why a block's run does not count as running as written (None: it does)."""
    if result["returncode"] != 0:
        return (f"exit {result['returncode']}: {str(result['stdout'])[-3000:]}\n"
                f"{str(result['stderr'])[-3000:]}")
    if not str(result["stdout"]).strip():
        return "the block printed nothing"
    return None


@pytest.fixture(scope="session")
def outcomes(tmp_path_factory, dbt_parse_state, prefect_api) -> dict[str, dict]:
    """Run every runnable block once per session, in document order, in a fresh clone."""
    from filelock import FileLock

    from tests.conftest import session_dir

    stamp = REPO_DIR / ".venv" / ".installed-stamp"
    if not stamp.exists() or stamp.stat().st_mtime < (REPO_DIR / "pyproject.toml").stat().st_mtime:
        pytest.skip("the README's `make` commands need an installed .venv: run `make` first "
                    "(`make test` always does)")
    root = session_dir(tmp_path_factory, "readme")
    done = root / "outcomes.json"
    with FileLock(f"{root}.lock"):
        if not done.exists():
            clone = make_clone(root / "betacell", dbt_parse_state)
            record_session_server_as_served(clone, prefect_api)
            env = block_environment(prefect_api.port)
            results = {block.id: run_block(block, clone, env) for block in BLOCKS
                       if block.language in RUNNABLE and not block.skip_reason}
            done.write_text(json.dumps(results))
    return json.loads(done.read_text())


@pytest.fixture(scope="session")
def clone(tmp_path_factory, outcomes) -> Path:
    """The clone the README's blocks ran in (its data: what their `make run` published)."""
    from tests.conftest import session_dir

    return session_dir(tmp_path_factory, "readme") / "betacell"


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.language in RUNNABLE],
                         ids=lambda b: b.id)
def test_readme_block_runs_as_written(block, outcomes):
    if block.skip_reason:
        pytest.skip(f"marked in {block.document}: {block.skip_reason}")
    problem = problem_with(outcomes[block.id])
    assert problem is None, (block.code, problem)


def test_make_run_in_the_clone_records_on_the_session_server_and_publishes(outcomes):
    """The README's first block is `make run`: a real refresh of the shipped snapshot, recorded
    on the session's Prefect server (no temporary server), that publishes a version."""
    (first,) = [b for b in BLOCKS if b.code.startswith("make run")]
    result = outcomes[first.id]
    assert problem_with(result) is None, result
    output = " ".join(str(result["stdout"] + result["stderr"]).split())
    assert "PREFECT_API_URL=http://127.0.0.1:" in output  # the session's server, not a temporary
    assert "Published: " in output and "nothing changed" not in output


@pytest.mark.parametrize("language, broken, good", [
    ("bash", "ls no-such-file-in-the-clone\necho still here", "echo ran"),
    ("bash", "false | cat\necho still here", "echo ran | cat"),
    ("sql", "select count(*) from marts.no_such_mart;", "select count(*) from marts.dim_trials;"),
    ("python", "raise SystemExit('a step failed')", "print('ran')"),
    ("bash", "true", "echo ran"),  # runs, but prints nothing: not what the README shows
], ids=["failing-command", "failing-pipe", "sql-error", "python-error", "prints-nothing"])
def test_a_block_that_does_not_run_as_written_fails(tmp_path, language, broken, good):
    """The checks the README test applies, on deliberately broken blocks beside working ones."""
    warehouse = tmp_path / "data" / "warehouse.duckdb"
    warehouse.parent.mkdir()
    con = duckdb.connect(str(warehouse))
    con.execute("create schema marts; create table marts.dim_trials as select 1 as trial_id")
    con.close()
    env = block_environment()
    for code, works in ((good, True), (broken, False)):
        block = Block("README.md", 1, language, code + "\n", None)
        problem = problem_with(run_block(block, tmp_path, env))
        assert (problem is None) == works, (code, problem)


STAGING_CLAIM = re.compile(
    r"on the snapshot (?P<empty>\d+) of the (?P<total>\d+) `stg_\*` staging tables are empty\s+"
    r"\((?P<listed>.+?)\); a live run", re.S)


def listed_tables(text: str, existing: list[str]) -> tuple[set[str], dict[str, int]]:
    """The README's list: full names, `__x` short for the previous full name's source, and
    globs ("the 8 `stg_ctgov__result_*` tables") with the number it says they are."""
    named, globs, source = set(), {}, ""
    for count, token in re.findall(r"(?:the\s+(\d+)\s+)?`([\w*]+)`", text):
        if token.startswith("__"):
            token = source + token
        else:
            source = token.split("__")[0]
        if "*" in token:
            assert count, f"say how many tables `{token}` stands for"
            globs[token] = int(count)
            named |= {t for t in existing if fnmatch.fnmatch(t, token)}
        else:
            named.add(token)
    return named, globs


def test_the_staging_counts_in_the_readme_are_those_of_a_fresh_make_run(clone, outcomes):
    """The README's empty-staging sentence, checked against the warehouse `make run` published
    in the clone (the shipped snapshot, nothing rejected)."""
    claim = STAGING_CLAIM.search((REPO_DIR / "README.md").read_text())
    assert claim, "the README's sentence about empty staging tables is gone"
    con = duckdb.connect(str(clone / "data" / "warehouse.duckdb"), read_only=True)
    try:
        tables = [name for (name,) in con.sql(
            "select table_name from duckdb_tables() where schema_name = 'staging' "
            "and table_name like 'stg\\_%' escape '\\' union all select view_name from "
            "duckdb_views() where schema_name = 'staging' and view_name like 'stg\\_%' "
            "escape '\\' order by 1").fetchall()]
        empty = {name for name in tables
                 if con.sql(f'select count(*) from staging."{name}"').fetchone()[0] == 0}
    finally:
        con.close()
    assert int(claim.group("total")) == len(tables)
    assert int(claim.group("empty")) == len(empty)
    named, globs = listed_tables(claim.group("listed"), tables)
    assert named == empty
    for pattern, count in globs.items():
        assert count == len(fnmatch.filter(tables, pattern)), pattern


def test_the_readme_says_what_betacell_status_shows_of_unresolved_references(clone, outcomes):
    """`betacell status` lists every unresolved id (not only how many): the README says so."""
    readme = " ".join((REPO_DIR / "README.md").read_text().split())
    assert ("`betacell status` lists every unresolved id with its registry, when a registry was "
            "last asked and why it stays unresolved (the rows of "
            "`marts.unresolved_references`)") in readme
    status = subprocess.run(["betacell", "status"], cwd=clone, env=block_environment(),
                            capture_output=True, text=True, timeout=300)
    assert status.returncode == 0, status.stderr[-2000:]
    con = duckdb.connect(str(clone / "data" / "warehouse.duckdb"), read_only=True)
    try:
        ids = [i for (i,) in con.sql("select registry_id from marts.unresolved_references")
               .fetchall()]
    finally:
        con.close()
    assert ids, "the snapshot names trial ids no record carries"
    assert f"Unresolved references ({len(ids)})" in status.stdout, status.stdout[-3000:]
    assert all(i in status.stdout for i in ids), (ids, status.stdout[-3000:])
