"""No import cycles among bench's modules.

The graph is built from the source with `ast`, without importing anything: an edge A -> B
for every import of B that runs when A is imported (module body, class bodies, `if`/`try`
blocks), including `from bench.x import y` (an edge to bench.x, and to bench.x.y when y is a
submodule) and relative imports. `if TYPE_CHECKING:` blocks are left out (they never run),
except by the strictest test.
Imports inside functions run at call time, so they cannot fail at import; they are still
counted by the strict test, because a cycle through them still ties two modules together
(neither can be read, tested or replaced without the other).

Importing bench.a.b also runs bench/a/__init__.py, so an import of bench.a.b is an edge to
bench.a as well, except from a module inside bench.a: a package's __init__ has always
started before its submodules run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def module_files(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every module of `package` under `root`."""
    out = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(nodes: list, functions: bool = False, type_checking: bool = False):
    """Import statements that run when the module is imported; with `functions`, also those
    inside function bodies (run at call time); with `type_checking`, also those that only
    the type checker reads."""
    for node in nodes:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) and not functions:
            continue
        elif isinstance(node, ast.If) and _is_type_checking(node.test) and not type_checking:
            yield from _import_nodes(node.orelse, functions, type_checking)
        else:  # class and function bodies, if/try/with/for/match blocks
            for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                children = getattr(node, field, None)
                if isinstance(children, list):
                    yield from _import_nodes(children, functions, type_checking)


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph(root: Path, package: str, functions: bool = False,
                 type_checking: bool = False) -> dict[str, set[str]]:
    """module -> the package's modules its import runs (see the module docstring); with
    `functions`, also the modules its functions import; with `type_checking`, also those
    imported under `if TYPE_CHECKING:`."""
    modules = module_files(root, package)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        is_pkg = path.name == "__init__.py"
        explicit: set[str] = set()
        for node in _import_nodes(ast.parse(path.read_text(), str(path)).body, functions,
                                  type_checking):
            if isinstance(node, ast.Import):
                explicit.update(a.name for a in node.names)
                continue
            base = node.module or ""
            if node.level:  # relative: from the module's package, up level - 1 packages
                pkg = mod.split(".") if is_pkg else mod.split(".")[:-1]
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join(pkg + ([base] if base else []))
            for a in node.names:  # `from p import m` imports submodule p.m; else names of p
                explicit.add(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base)
        own = {*_ancestors(mod), mod}  # packages whose __init__ has started before mod runs
        for t in explicit:
            graph[mod].update(a for a in _ancestors(t) if a in modules and a not in own)
            if t in modules and t != mod:
                graph[mod].add(t)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_bench_has_no_import_cycle():
    graph = import_graph(ROOT, "bench")
    assert len(graph) > 50 and "bench.config.suite" in graph["bench.run.runner"]  # the graph is real
    cycle = find_cycle(graph)
    assert cycle is None, (
        "import cycle: " + " -> ".join(cycle) + ". Move what both sides need into a module "
        "that imports neither (like bench/executors/cells.py), or import inside the function that needs it "
        "if it is a lazily loaded plugin.")


def test_bench_has_no_cycle_even_through_function_level_imports():
    graph = import_graph(ROOT, "bench", functions=True)
    assert "bench.metrics" in graph["bench.config.suite"]  # a function-level edge is counted
    cycle = find_cycle(graph)
    assert cycle is None, (
        "cycle through a function-level import: " + " -> ".join(cycle) + ". A lazy import "
        "avoids the import-time failure but still ties the modules together: move what both "
        "sides need into a module that imports neither, or pass it in as an argument.")


def test_bench_has_no_cycle_even_through_type_checking_imports():
    """A type-only import never runs, but a cycle through it still means two modules that
    must be read together (gates once typed its argument as the leaderboard's Table)."""
    graph = import_graph(ROOT, "bench", functions=True, type_checking=True)
    # a TYPE_CHECKING edge is counted (the executors' base names the worker's types only)
    assert "bench.executors.worker" in graph["bench.executors"]
    assert "bench.executors.worker" not in import_graph(ROOT, "bench", functions=True)["bench.executors"]
    cycle = find_cycle(graph)
    assert cycle is None, (
        "cycle through a type-only import: " + " -> ".join(cycle) + ". Pass the parts the "
        "function reads (as bench.report.gates.board_flags does) or declare the type beside "
        "its user (as FrechetReferenceKey is, in bench/metrics/_distribution.py).")


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return tmp_path


@pytest.mark.parametrize("files, cycle", [
    # from-import of a name, and a plain import
    ({"pkg/__init__.py": "", "pkg/a.py": "from pkg.b import f\n",
      "pkg/b.py": "import pkg.a\n"}, ["pkg.a", "pkg.b", "pkg.a"]),
    # `from pkg.sub import mod` where mod is a submodule; the import inside a class body runs
    ({"pkg/__init__.py": "", "pkg/sub/__init__.py": "", "pkg/a.py": "from pkg.sub import c\n",
      "pkg/sub/c.py": "class C:\n    from pkg import a\n"}, ["pkg.a", "pkg.sub.c", "pkg.a"]),
    # a package __init__ that imports a module importing the package back; relative imports
    ({"pkg/__init__.py": "from .reg import R\n", "pkg/reg.py": "from . import x\n",
      "pkg/x.py": "from pkg import R\n"}, ["pkg", "pkg.reg", "pkg.x", "pkg"]),
    # importing pkg.sub.m runs pkg/sub/__init__.py, which imports a
    ({"pkg/__init__.py": "", "pkg/sub/__init__.py": "import pkg.a\n", "pkg/sub/m.py": "",
      "pkg/a.py": "try:\n    from pkg.sub.m import z\nexcept ImportError:\n    pass\n"},
     ["pkg.a", "pkg.sub", "pkg.a"]),
])
def test_cycle_detection_finds_module_level_cycles(tmp_path, files, cycle):
    assert find_cycle(import_graph(_package(tmp_path, files), "pkg")) == cycle


def test_cycle_detection_allows_function_level_and_type_checking_imports(tmp_path):
    root = _package(tmp_path, {
        "pkg/__init__.py": "from pkg.base import Base\nREG = {}\n",
        "pkg/base.py": "class Base:\n    def get(self):\n        from pkg import REG\n        return REG\n",
        "pkg/plugin.py": "from typing import TYPE_CHECKING\nfrom pkg import REG\n"
                         "if TYPE_CHECKING:\n    from pkg.user import U\n",
        "pkg/user.py": "from pkg.plugin import REG\n",
        # a submodule importing its own package does not make a cycle by itself
        "pkg/sub/__init__.py": "from pkg.sub.m import x\n",
        "pkg/sub/m.py": "x = 1\n",
    })
    graph = import_graph(root, "pkg")
    assert graph["pkg.plugin"] == {"pkg"} and graph["pkg.sub"] == {"pkg.sub.m"}
    assert find_cycle(graph) is None
    # the strict graph counts the function-level import back to the package's registry
    assert find_cycle(import_graph(root, "pkg", functions=True)) == ["pkg", "pkg.base", "pkg"]


def test_the_documented_layers_hold(capsys):
    """`lint-imports` (make lint) with the contracts of pyproject.toml: the layers of
    docs/architecture.md and the forbidden imports (a plugin never imports the runner...)."""
    from importlinter.cli import lint_imports

    code = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True)
    out = capsys.readouterr().out
    assert "Layers: data flows down" in out and "A plugin never imports" in out
    assert "Only the record layer talks to MLflow" in out
    assert code == 0, out


def test_layer_contracts_count_function_level_imports(tmp_path, capsys):
    """The suite imports the metric registry only inside a function (so that listing a suite
    imports no plugin); the contract still counts it: a lazy import cannot hide an upward one."""
    from importlinter.cli import lint_imports

    config = tmp_path / "upside_down.toml"
    config.write_text('[tool.importlinter]\nroot_package = "bench"\n\n'
                      '[[tool.importlinter.contracts]]\nname = "metrics above config"\n'
                      'type = "layers"\nlayers = ["bench.metrics", "bench.config"]\n')
    assert lint_imports(config_filename=str(config), no_cache=True, no_logo=True) == 1
    assert "bench.config.suite -> bench.metrics (l." in capsys.readouterr().out
