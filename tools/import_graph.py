"""How the runtime package hangs together, measured (a developer tool, README "Code map").

    python -m tools.import_graph            # the static import graph of flows/
    python -m tools.import_graph --walk     # and one CT.gov study's walk through a real refresh

Static figures (read from the source with ``ast``, nothing imported):

- modules and project imports, and how many of those imports sit inside functions;
- imports that climb back up: an import, hidden inside a function, of module B by module A
  where B, directly or through other modules, imports A again (``flows/sources/*`` counted as
  one layer, so a source module importing a runtime module that imports any source is one):
  counted per import statement, and per arrow (importer -> target); and every arrow that is
  part of such a cycle between layers, hidden or not;
- runtime imports of the developer tools (``tools.*``) and ``sys.path`` edits under flows/;
- the files outside tests/ that name a source (``--name ctis``).

The walk (``--walk``) runs the real ``refresh-warehouse`` flow (snapshot mode, the registries
stage) in a scratch data directory whose snapshot holds one ClinicalTrials.gov study, with a
profiler on every function of flows/. A call *carries* the study when its arguments or its
return value hold the study's NCT id (in text, bytes, containers, objects, data frames). The
walk follows the call tree pruned to the calls that carry the study or call one that does, in
the order they ran, and lists the module at every step (entering a call, and coming back to
the caller). From that sequence: the modules crossed, how often each is entered, and the
returns to a module already left. "HTTP to raw" ends where the referential closure starts
(every source is in raw then); the whole walk goes on to the published warehouse (dbt runs in
a subprocess: the SQL models between the raw table and ``dim_trials`` are counted from dbt's
manifest).
"""

from __future__ import annotations

import argparse
import ast
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "flows"
SOURCES_LAYER = "flows.sources"
# objects that hold a source's data without moving it (a client, a snapshot served like an API)
HOLDERS = ("Client", "Transport", "Pool", "Limiter")


# -- the static graph ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Import:
    importer: str
    target: str
    in_function: bool
    line: int


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module an imported name lives in (``flows.a.b`` -> itself, or its package)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _targets(node: ast.AST, importer: str, modules: dict[str, Path]) -> list[str]:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:  # relative: from the importer's package
            package = importer.split(".")
            package = package[: len(package) - node.level + (importer in _packages(modules))]
            base = ".".join(package + ([base] if base else []))
        names = [f"{base}.{alias.name}" for alias in node.names]
    return [name for name in names if name.split(".")[0] in {"flows", "tools"}]


def _packages(modules: dict[str, Path]) -> set[str]:
    return {name for name, path in modules.items() if path.name == "__init__.py"}


def imports_of(path: Path, importer: str, modules: dict[str, Path]) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef
                                               | ast.Lambda)
            if isinstance(child, ast.Import | ast.ImportFrom):
                for name in _targets(child, importer, modules):
                    target = (_resolve(name, modules) if name.startswith("flows")
                              else name.split(".")[0] + "." + name.split(".")[1]
                              if "." in name else name)
                    if target and target != importer:
                        found.append(Import(importer, target, inside, child.lineno))
            visit(child, inside)

    visit(tree, False)
    return found


def sys_path_edits(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute) and node.func.attr in {"insert", "append"}
            and ast.unparse(node.func.value) == "sys.path"]


def layer(module: str) -> str:
    return SOURCES_LAYER if module.startswith(SOURCES_LAYER + ".") else module


def reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            todo += graph.get(node, ())
    return False


def static_figures(name: str | None = None) -> dict[str, Any]:
    modules = runtime_modules()
    imports = [i for module, path in modules.items() for i in imports_of(path, module, modules)]
    project = [i for i in imports if i.target.startswith("flows")]
    edges = {(i.importer, i.target) for i in project}
    condensed: dict[str, set[str]] = defaultdict(set)
    for importer, target in edges:
        if layer(importer) != layer(target):
            condensed[layer(importer)].add(layer(target))
    cyclic = {(a, b) for a, b in edges
              if layer(a) != layer(b) and reaches(condensed, layer(b), layer(a))}
    climbing = sorted({(i.importer, i.line, i.target) for i in project
                       if i.in_function and (i.importer, i.target) in cyclic})
    figures: dict[str, Any] = {
        "modules": len(modules),
        "project_imports": len(edges),
        "imports_inside_functions": len({(i.importer, i.target, i.line)
                                         for i in project if i.in_function}),
        "imports_climbing_back_up": [f"{a}:{line} -> {b}" for a, line, b in climbing],
        "arrows_climbing_back_up": sorted({f"{a} -> {b}" for a, _, b in climbing}),
        "import_cycles_between_layers": sorted(f"{a} -> {b}" for a, b in cyclic),
        "runtime_imports_of_tools": sorted({f"{i.importer} -> {i.target}" for i in imports
                                            if i.target.startswith("tools")}),
        "sys_path_edits": [f"{module}:{line}" for module, path in modules.items()
                           for line in sys_path_edits(path)],
        "lines": {module: len(path.read_text(encoding="utf-8").splitlines())
                  for module, path in modules.items()},
    }
    if name:
        listed = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True)
        tracked = (listed.stdout.split() if listed.returncode == 0 else  # an exported tree
                   [str(p.relative_to(REPO)) for p in REPO.rglob("*") if p.is_file()
                    and not any(part.startswith(".") or part in {"__pycache__", "target"}
                                for part in p.relative_to(REPO).parts)])
        figures[f"files_naming_{name}_outside_tests"] = sorted(
            f for f in tracked if not f.startswith(("tests/", "data/")) and (REPO / f).is_file()
            and name.lower() in (REPO / f).read_text(encoding="utf-8", errors="replace").lower())
    return figures


# -- the walk of one study -------------------------------------------------------------------------
@dataclass
class Call:
    module: str
    function: str
    parent: Call | None
    carries: bool = False
    children: list[Call] = field(default_factory=list)
    on_path: bool = False


class StudyTracer:
    """A profiler recording every call of a flows/ function, and whether it carries the study."""

    def __init__(self, needle: str) -> None:
        self.needle = needle
        self.needle_bytes = needle.encode()
        self.roots: list[Call] = []
        self.active: dict[int, Call] = {}
        self.lock = threading.Lock()
        self.module_of_file: dict[str, str | None] = {}

    def module(self, filename: str) -> str | None:
        if filename not in self.module_of_file:
            path = Path(filename)
            self.module_of_file[filename] = (module_name(path) if path.is_relative_to(PACKAGE)
                                             else None)
        return self.module_of_file[filename]

    def __call__(self, frame: Any, event: str, arg: Any) -> None:
        if event not in ("call", "return"):
            return
        module = self.module(frame.f_code.co_filename)
        if module is None:
            return
        with self.lock:
            if event == "call":
                parent = self._parent(frame)
                call = Call(module, frame.f_code.co_name, parent)
                (parent.children if parent else self.roots).append(call)
                self.active[id(frame)] = call
                arguments = dict(frame.f_locals)
                arguments.pop("self", None)  # an object holding the study is not moving it
                call.carries = self.holds(arguments)
            else:
                call = self.active.pop(id(frame), None)
                if call is not None and not call.carries:
                    call.carries = self.holds(arg)

    def _parent(self, frame: Any) -> Call | None:
        """The innermost active call below ``frame``; in a thread, the call that started it."""
        back = frame.f_back
        while back is not None:
            if (found := self.active.get(id(back))) is not None:
                return found
            back = back.f_back
        return getattr(threading.current_thread(), "walk_parent", None)

    def current(self) -> Call | None:
        return self._parent(sys._getframe(1))

    def follow_threads(self) -> Any:
        """Make a thread's calls children of the call that started the thread."""
        start = threading.Thread.start
        tracer = self

        def start_followed(thread: threading.Thread) -> None:
            with tracer.lock:
                thread.walk_parent = tracer.current()  # type: ignore[attr-defined]
            start(thread)

        threading.Thread.start = start_followed  # type: ignore[method-assign]
        return start

    def holds(self, value: Any, depth: int = 0, budget: list[int] | None = None) -> bool:
        """Whether ``value`` holds the study (its NCT id), looking a few levels deep."""
        budget = budget if budget is not None else [3000]
        budget[0] -= 1
        if budget[0] < 0 or depth > 5:
            return False
        if isinstance(value, str):
            return self.needle in value
        if isinstance(value, bytes | bytearray | memoryview):
            return self.needle_bytes in bytes(value[:10_000_000])
        if isinstance(value, dict):
            return any(self.holds(k, depth + 1, budget) or self.holds(v, depth + 1, budget)
                       for k, v in itertools.islice(value.items(), 500))
        if isinstance(value, list | tuple | set | frozenset):
            return any(self.holds(v, depth + 1, budget) for v in itertools.islice(value, 500))
        kind = type(value).__module__
        if kind.startswith(("polars", "pandas")) and hasattr(value, "shape"):
            try:
                return self.needle in str(value.to_dicts() if kind.startswith("polars")
                                          else value.to_dict("records"))
            except Exception:  # noqa: BLE001 - a frame we cannot read does not carry it
                return False
        if hasattr(value, "gi_frame") and value.gi_frame is not None:  # a generator's state
            return self.holds(dict(value.gi_frame.f_locals), depth + 1, budget)
        attributes = getattr(value, "__dict__", None)
        if (isinstance(attributes, dict) and kind.split(".")[0] in {"flows", "httpx"}
                and not type(value).__name__.endswith(HOLDERS)):
            return self.holds(attributes, depth + 1, budget)
        return False


def mark_path(call: Call) -> bool:
    below = [mark_path(child) for child in call.children]
    call.on_path = call.carries or any(below)
    return call.on_path


def module_sequence(roots: list[Call]) -> list[tuple[str, str]]:
    """(module, function) at every step of the pruned call tree: entering, coming back."""
    steps: list[tuple[str, str]] = []

    def walk(call: Call) -> None:
        steps.append((call.module, call.function))
        for child in call.children:
            if child.on_path:
                walk(child)
                steps.append((call.module, call.function))

    for root in roots:
        if mark_path(root):
            walk(root)
    collapsed = [steps[0]] if steps else []
    for step in steps[1:]:
        if step[0] != collapsed[-1][0]:
            collapsed.append(step)
    return collapsed


def walk_figures(sequence: list[tuple[str, str]]) -> dict[str, Any]:
    modules = [module for module, _ in sequence]
    entries = Counter(modules)
    return {"modules_crossed": len(entries), "steps": len(modules),
            "returns_to_a_module_already_left": len(modules) - len(entries),
            "entries_per_module": dict(entries.most_common()),
            "sequence": [f"{m}.{f}" for m, f in sequence]}


def one_study_snapshot(data_dir: Path, nct_id: str | None) -> str:
    source = REPO / "data" / "snapshot" / "ctgov"
    studies = json.loads((source / "studies-0001.json").read_bytes())["studies"]
    study = next(s for s in studies if nct_id in (None, s["protocolSection"]
                                                  ["identificationModule"]["nctId"]))
    target = data_dir / "snapshot" / "ctgov"
    target.mkdir(parents=True)
    shutil.copy(source / "version.json", target / "version.json")
    (target / "studies-0001.json").write_text(json.dumps({"studies": [study]}))
    (data_dir / "outcomes").mkdir()
    return study["protocolSection"]["identificationModule"]["nctId"]


def dbt_models_between(manifest: Path, source: str, mart: str) -> list[str]:
    nodes = json.loads(manifest.read_text())
    parents = {**nodes["parent_map"]}
    goal = next(n for n in parents if n.endswith(f".{mart}") and n.startswith("model."))
    found: set[str] = set()

    def upstream(node: str) -> bool:
        if node.startswith("source.") and node.endswith(source):
            return True
        hit = False
        for parent in parents.get(node, []):
            if upstream(parent):
                hit = True
        if hit and node.startswith("model."):
            found.add(node.split(".")[-1])
        return hit

    upstream(goal)
    return sorted(found)


def walk_study(nct_id: str | None, keep: Path | None) -> dict[str, Any]:
    data_dir = keep or Path(tempfile.mkdtemp(prefix="betacell-walk-"))
    needle = one_study_snapshot(data_dir, nct_id)
    os.environ["BETACELL_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    sys.path.insert(0, str(REPO))
    from flows.refresh import refresh_warehouse
    from flows.settings import reset_settings_cache

    reset_settings_cache()
    tracer = StudyTracer(needle)
    outcome = "published"
    original_start = tracer.follow_threads()
    threading.setprofile(tracer)
    sys.setprofile(tracer)
    try:
        refresh_warehouse(source="snapshot", stages=["registries"])
    except Exception as exc:  # noqa: BLE001 - the walk up to the failure still counts
        outcome = f"stopped: {type(exc).__name__}: {str(exc)[:300]}"
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
        threading.Thread.start = original_start  # type: ignore[method-assign]
    sequence = module_sequence(tracer.roots)
    cut = next((i for i, (m, _) in enumerate(sequence) if m == "flows.closure"), len(sequence))
    figures = {"study": needle, "run": outcome,
               "http_to_raw": walk_figures(sequence[:cut]),
               "whole_refresh": walk_figures(sequence)}
    manifest = data_dir / "build" / "dbt_target" / "manifest.json"
    if manifest.exists():
        models = dbt_models_between(manifest, "ctgov_studies", "dim_trials")
        figures["dbt_models_raw_to_dim_trials"] = {"count": len(models), "models": models}
    if keep is None:
        shutil.rmtree(data_dir, ignore_errors=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.import_graph")
    parser.add_argument("--walk", action="store_true", help="also walk one study (~2 minutes)")
    parser.add_argument("--nct-id", help="the study to walk (default: the snapshot's first)")
    parser.add_argument("--keep", type=Path, help="data directory for the walk (kept)")
    parser.add_argument("--name", default="ctis", help="count files naming this source")
    parser.add_argument("--lines", action="store_true", help="list every module's line count")
    args = parser.parse_args(argv)
    figures = static_figures(args.name)
    if not args.lines:
        figures.pop("lines")
    if args.walk:
        figures["walk"] = walk_study(args.nct_id, args.keep)
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
