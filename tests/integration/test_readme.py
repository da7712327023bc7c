"""The README is executable: every fenced shell, SQL and Python block of README.md and
data/outcomes/README.md runs as written, in document order, in a fresh clone of the repository
(the tracked files, no data/ output) with the project's .venv — the way jaffle_shop_duckdb's CI
runs its quickstart. `make run` builds and publishes the snapshot warehouse there; the query
blocks then read it with the `duckdb` command, read-only.

A block that cannot run here is marked by the line right before it,
``<!-- readme-test: skip (the reason) -->``, and is skipped with that reason. Every fenced block
names its language (``text`` for diagrams and sample output), so none escapes by omission.
"""

from __future__ import annotations

import fnmatch
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
from tests.conftest import seed_parse_state

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


@pytest.fixture(scope="module")
def clone(tmp_path_factory, dbt_parse_state) -> Path:
    """A fresh clone: the tracked files, no data output, the project's .venv beside them."""
    stamp = REPO_DIR / ".venv" / ".installed-stamp"
    if not stamp.exists() or stamp.stat().st_mtime < (REPO_DIR / "pyproject.toml").stat().st_mtime:
        pytest.skip("the README's `make` commands need an installed .venv: run `make` first "
                    "(`make test` always does)")
    root = tmp_path_factory.mktemp("clone") / "betacell"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO_DIR, capture_output=True,
                             check=True).stdout.decode().split("\0")
    for name in filter(None, tracked):
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_DIR / name, target)
    (root / ".venv").symlink_to(REPO_DIR / ".venv")
    seed_parse_state(root / "data", dbt_parse_state)  # dbt parses nothing again
    return root


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BETACELL_", "PREFECT_API", "MAKE", "MFLAGS", "PYTEST_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "180"
    # `make run` records on a Prefect server that answers on PREFECT_PORT; never on someone
    # else's server on this machine
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        env["PREFECT_PORT"] = str(sock.getsockname()[1])
    return env


def _command(block: Block) -> list[str]:
    if block.language == "sql":
        return ["duckdb", "-readonly", "-bail", "data/warehouse.duckdb"]
    if block.language == "python":
        return ["python", "-"]
    return ["bash", "-e", "-o", "pipefail", "-"]


@pytest.fixture(scope="module")
def outcomes(clone) -> dict[str, subprocess.CompletedProcess]:
    """Run every runnable block once, in document order, in the clone."""
    results = {}
    for block in BLOCKS:
        if block.language not in RUNNABLE or block.skip_reason:
            continue
        results[block.id] = subprocess.run(
            _command(block), input=block.code, cwd=clone, env=_environment(),
            capture_output=True, text=True, timeout=900)
    return results


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.language in RUNNABLE],
                         ids=lambda b: b.id)
def test_readme_block_runs_as_written(block, outcomes):
    if block.skip_reason:
        pytest.skip(f"marked in {block.document}: {block.skip_reason}")
    result = outcomes[block.id]
    assert result.returncode == 0, (block.code, result.stdout[-3000:], result.stderr[-3000:])
    assert result.stdout.strip(), "the block printed nothing"


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
    """`betacell status` shows how many references are unresolved (the mart's row count), not
    the ids: the README says exactly that."""
    readme = " ".join((REPO_DIR / "README.md").read_text().split())
    assert ("`betacell status` shows how many there are (the row count of "
            "`marts.unresolved_references`; query the mart for the ids)") in readme
    status = subprocess.run(["betacell", "status"], cwd=clone, env=_environment(),
                            capture_output=True, text=True, timeout=300)
    assert status.returncode == 0, status.stderr[-2000:]
    con = duckdb.connect(str(clone / "data" / "warehouse.duckdb"), read_only=True)
    try:
        ids = [i for (i,) in con.sql("select registry_id from marts.unresolved_references")
               .fetchall()]
    finally:
        con.close()
    assert ids, "the snapshot names trial ids no record carries"
    assert re.search(rf"marts\.unresolved_references\s*│\s*{len(ids)}\b", status.stdout), \
        status.stdout[-3000:]
