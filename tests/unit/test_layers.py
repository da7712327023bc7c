"""The ground floor stays the ground floor: a source package (``flows/sources/``) fetches and
parses; it never imports the raw loader, the flow or a developer tool, not even through another
module. Read from the source with ``ast`` (every import, also those inside functions)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from flows.settings import REPO_DIR

FLOWS = REPO_DIR / "flows"
# What a source may stand on: the HTTP client and its own modules, landing (the immutable copy
# of what came in), masking, settings, seeds, errors, the record checks and progress lines.
FOUNDATION = {"flows", "flows.errors", "flows.settings", "flows.seeds", "flows.landing",
              "flows.redaction", "flows.checks", "flows.progress"}
# Named in the failure message: what a source must never reach.
LOADER_FLOW_TOOLS = ("flows.raw_loader", "flows.refresh", "flows.stages", "flows.closure",
                     "flows.transform", "flows.publish", "flows.cli", "flows.parallel", "tools")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_DIR).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_imports(path: Path) -> set[str]:
    """The project modules (``flows.*``, ``tools.*``) one file imports, anywhere in it."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {name for name in names if name.split(".")[0] in ("flows", "tools")}
    return found


def known_modules() -> dict[str, Path]:
    return {module_name(path): path for root in (FLOWS, REPO_DIR / "tools")
            for path in root.rglob("*.py")}


def reached_from(start: str, modules: dict[str, Path]) -> dict[str, str]:
    """Every project module ``start`` reaches through imports -> the module that imports it."""
    reached: dict[str, str] = {}
    todo = [start]
    while todo:
        current = todo.pop()
        for target in project_imports(modules[current]):
            if target.startswith("tools"):
                reached.setdefault(target, current)
                continue
            if target not in modules or target in reached or target == start:
                continue
            reached[target] = current
            todo.append(target)
    return reached


def chain(target: str, start: str, reached: dict[str, str]) -> str:
    steps = [target]
    while steps[-1] in reached and steps[-1] != start:
        steps.append(reached[steps[-1]])
    return " <- ".join(steps)


def test_source_packages_import_only_the_ground_floor():
    modules = known_modules()
    sources = sorted(name for name in modules if name.startswith("flows.sources"))
    assert len(sources) > 10, "the source packages were not found"
    trespasses = []
    for source in sources:
        reached = reached_from(source, modules)
        for target in sorted(reached):
            if target.startswith("flows.sources") or target in FOUNDATION:
                continue
            forbidden = " (the loader, the flow or a developer tool)" if target.startswith(
                LOADER_FLOW_TOOLS) else ""
            trespasses.append(f"{chain(target, source, reached)}{forbidden}")
    assert not trespasses, ("modules under flows/sources/ import above the ground floor:\n"
                            + "\n".join(trespasses))


def test_the_check_sees_an_import_hidden_in_a_function(tmp_path, monkeypatch):
    """The rule itself can fail: a function-level import of the loader is found."""
    source = tmp_path / "flows" / "sources" / "fake" / "client.py"
    source.parent.mkdir(parents=True)
    source.write_text("def fetch():\n    from ...raw_loader import load\n    return load\n")
    monkeypatch.setattr(sys.modules[__name__], "REPO_DIR", tmp_path)
    assert project_imports(source) == {"flows.raw_loader", "flows.raw_loader.load"}
