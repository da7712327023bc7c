"""Fail on dbt refs that run backwards: staging -> intermediate -> marts, never the other way.

Rules (dbt Labs' project structure): staging models read sources, seeds and the ``base_``
models of their own source folder; intermediate models read staging, intermediate and seeds;
marts read intermediate, marts, seeds and snapshots; only staging (and snapshots) read sources.
A ref to a later layer, to another staging model, or a source read outside staging fails the
check; a mart reading staging directly (skipping intermediate) is listed as a note. Reads the
SQL and Python models directly, so it needs no dbt run:
``python tools/check_dag.py [dbt_project_dir]`` exits 1 on any backwards reference.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

REF = re.compile(r"""\bref\(\s*['"]([A-Za-z0-9_]+)['"]\s*\)""")
SOURCE = re.compile(r"""\bsource\(\s*['"]([A-Za-z0-9_]+)['"]\s*,\s*['"]([A-Za-z0-9_]+)['"]""")
ALLOWED = {  # layer of the model -> layers it may ref
    "staging": {"seed"},
    "intermediate": {"staging", "intermediate", "seed"},
    "marts": {"intermediate", "marts", "seed", "snapshot"},
    "snapshot": {"staging", "intermediate"},
}
MAY_READ_SOURCES = {"staging", "snapshot"}
RANK = {"seed": 0, "staging": 1, "snapshot": 2, "intermediate": 2, "marts": 3}


def layer(path: Path, project: Path) -> str:
    parts = path.relative_to(project).parts
    if parts[0] == "snapshots":
        return "snapshot"
    if parts[0] == "seeds":
        return "seed"
    return parts[1]  # models/<layer>/...


def nodes(project: Path) -> dict[str, Path]:
    found = {}
    for folder in ("models", "snapshots"):
        for path in (project / folder).rglob("*"):
            if path.suffix in {".sql", ".py"}:
                found[path.stem] = path
    for path in (project / "seeds").rglob("*.csv"):
        found[path.stem] = path
    for snapshot in (project / "snapshots").rglob("*.yml"):
        for name in re.findall(r"^\s*-\s*name:\s*([A-Za-z0-9_]+)", snapshot.read_text(), re.M):
            found.setdefault(name, snapshot)
    for path in (project / "models").rglob("*.yml"):  # yml-defined snapshots (dbt >= 1.9)
        text = path.read_text()
        if re.search(r"^snapshots:", text, re.M):
            for name in re.findall(r"^\s*-\s*name:\s*([A-Za-z0-9_]+)", text, re.M):
                found.setdefault(name, Path(project / "snapshots" / f"{name}.yml"))
    return found


def violations(project: Path) -> tuple[list[str], list[str]]:
    """(backwards references, layer skips): the first fail the check, the second are listed."""
    known = nodes(project)
    problems, skips = [], []
    for _name, path in sorted(known.items()):
        if path.suffix not in {".sql", ".py"}:
            continue
        own = layer(path, project)
        text = path.read_text()
        for target in sorted(set(REF.findall(text))):
            if target not in known:
                problems.append(f"{path.relative_to(project)}: ref('{target}') names no model")
                continue
            theirs = layer(known[target], project)
            if theirs in ALLOWED[own] or (own == theirs == "staging" and target.startswith(
                    "base_") and known[target].parent == path.parent):
                continue  # a base model of the same source folder is part of its staging
            message = f"{path.relative_to(project)}: {own} model reads {theirs} model {target}"
            if RANK.get(theirs, 0) > RANK.get(own, 0) or own == theirs == "staging":
                problems.append(message + " (backwards)")
            else:
                skips.append(message + " (skips the intermediate layer)")
        if SOURCE.search(text) and own not in MAY_READ_SOURCES:
            problems.append(f"{path.relative_to(project)}: {own} model reads a source directly "
                            "(only staging reads sources)")
    return problems, skips


def main(argv: list[str]) -> int:
    project = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[1] / "dbt_project"
    problems, skips = violations(project)
    for problem in problems:
        print(problem)
    for skip in skips:
        print(f"note: {skip}")
    print(f"{len(problems)} backwards reference(s)" if problems
          else f"dbt DAG runs forward: staging -> intermediate -> marts ({len(skips)} layer "
               "skip(s) listed as notes)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
