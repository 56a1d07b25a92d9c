"""A shared runner (BENCH_ALLOWED_* set) against suites written to get around it.

The module allow-list checks what is called, not where the attribute walk starts: the two
bypasses found in review (`torchvision.models:_api.fnmatch.os.system`, and
`bench.models.defects:torch.load` with `weights_only: false`) are refused with nothing run, and
a search over every public path reachable from an allowed module finds no way to a callable
defined outside it."""

from __future__ import annotations

import inspect
import sys
import types

import pytest

from bench.config.suite import load_suite
from bench.core.errors import BenchError
from bench.models.callable_model import resolve_target

DANGEROUS = {"os.system", "os.popen", "torch.load", "torch.hub.load", "subprocess.run",
             "subprocess.Popen", "builtins.eval", "builtins.exec", "pickle.load", "pickle.loads"}


def _problems(path) -> str:
    try:
        load_suite(path, check_resources=True)
    except BenchError as e:
        return str(e)
    return ""


@pytest.fixture
def shared(monkeypatch):
    for var in ("BENCH_ALLOWED_CHECKPOINTS", "BENCH_ALLOWED_MODELS"):
        monkeypatch.delenv(var, raising=False)

    def allow(modules: str) -> None:
        monkeypatch.setenv("BENCH_ALLOWED_MODULES", modules)
    return allow


def test_a_private_walk_from_an_allowed_module_runs_nothing(shared, write_suite, tmp_path):
    shared("torchvision.models")  # the README's own example
    marker = tmp_path / "MARKER"
    path = write_suite(f"""
        name: walk
        datasets: {{digits: {{source: digits}}}}
        models:
          evil: {{source: callable, target: "torchvision.models:_api.fnmatch.os.system",
                  kwargs: {{command: "id > {marker}"}}}}
        metrics: {{fid: {{}}}}
        """)
    msg = _problems(path)
    assert "'_api' is a private attribute" in msg and "models.evil" in msg
    assert not marker.exists()


def test_a_re_export_of_torch_load_is_refused(shared, write_suite):
    shared("bench.models.defects")
    path = write_suite("""
        name: reexport
        datasets: {digits: {source: digits}}
        models:
          evil: {source: callable, target: "bench.models.defects:torch.load",
                 kwargs: {f: "crafted.pt", weights_only: false}}
        metrics: {fid: {}}
        """)
    msg = _problems(path)
    assert "'torch' is a module defined in 'torch', which is not in BENCH_ALLOWED_MODULES" in msg


@pytest.mark.parametrize("allowed, target, why", [
    ("bench.models.defects", "bench.models.defects:torch.hub.load", "'torch' is a module defined in 'torch'"),
    ("bench.models.defects", "bench.models.defects:nn.Linear", "'nn' is a module defined in 'torch.nn'"),
    ("os", "os:system", "'system' is a builtin_function_or_method not a class or Python function"),
])
def test_reached_modules_and_builtins_are_refused(shared, allowed, target, why):
    shared(allowed)
    with pytest.raises(BenchError, match=why):
        resolve_target(target)


def test_a_class_defined_in_an_allowed_module_still_works(shared):
    shared("torchvision.models")
    assert resolve_target("torchvision.models:resnet18").__name__ == "resnet18"
    assert inspect.isclass(resolve_target("torchvision.models:ResNet"))


def test_validation_on_a_shared_runner_calls_no_target(shared, write_suite, tmp_path,
                                                      monkeypatch):
    marker = tmp_path / "built"
    mod = types.ModuleType("calls_at_build")
    exec(  # a module of the test's own
        "import torch\n"
        f"def build(num_classes):\n    open({str(marker)!r}, 'w').close()\n"
        "    return torch.nn.Linear(1, 1)\n", mod.__dict__)
    monkeypatch.setitem(sys.modules, "calls_at_build", mod)
    shared("calls_at_build")
    path = write_suite("""
        name: allowed
        datasets: {digits: {source: digits}}
        models:
          mine: {source: callable, target: "calls_at_build:build", latent_dim: 4}
        metrics: {test_constant: {}}
        """)
    assert "BENCH_ALLOWED" not in _problems(path)
    assert not marker.exists()  # allowed, yet not called before the cell runs
    monkeypatch.delenv("BENCH_ALLOWED_MODULES")
    _problems(path)
    assert marker.exists()  # a private runner builds it on the meta device to check shapes


def _public_paths(root: types.ModuleType, depth: int):
    """Every public attribute path from `root` up to `depth` parts, through modules and
    classes (the only things a path may pass through)."""
    frontier = [("", root)]
    for _ in range(depth):
        nxt = []
        for prefix, obj in frontier:
            for name in dir(obj):
                if name.startswith("_"):
                    continue
                try:
                    child = getattr(obj, name)
                except Exception:  # noqa: BLE001 - lazy attributes that fail on access
                    continue
                path = f"{prefix}.{name}" if prefix else name
                yield path, child
                if inspect.ismodule(child) or inspect.isclass(child):
                    nxt.append((path, child))
        frontier = nxt


@pytest.mark.parametrize("module", ["torchvision.models", "bench.models.defects"])
def test_no_public_path_from_an_allowed_module_reaches_code_defined_elsewhere(shared, module):
    import importlib

    shared(module)
    root = importlib.import_module(module)
    accepted, refused = 0, 0
    for path, _obj in _public_paths(root, depth=2):
        try:
            got = resolve_target(f"{module}:{path}")
        except BenchError:
            refused += 1
            continue
        accepted += 1
        where = f"{got.__module__}.{got.__qualname__}"
        assert got.__module__ == module or got.__module__.startswith(module + "."), path
        assert where not in DANGEROUS
    assert accepted > 0 and refused > 0
