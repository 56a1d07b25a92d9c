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


# ---------------------------------------------------------------- where things go
SUITE_BODY = """
        name: placed
        datasets: {digits: {source: digits}}
        models: {const: {source: reference}}
        metrics: {test_constant: {}}
"""


@pytest.mark.parametrize("field, value, flag", [
    ("tracking_uri", "http://attacker.example:5000", "--tracking-uri or MLFLOW_TRACKING_URI"),
    ("tracking_uri", "sqlite:////tmp/anywhere.db", "--tracking-uri or MLFLOW_TRACKING_URI"),
    ("cache_dir", "../../../../tmp/elsewhere", "--cache-dir or BENCH_CACHE_DIR"),
    ("executor", "{name: ray, address: 'ray://attacker.example:10001'}", "--executor"),
    ("executor", "{name: slurm, cluster: local, folder: /tmp/elsewhere}", "--executor"),
])
def test_a_shared_runner_refuses_a_suite_that_says_where_things_go(shared, write_suite, field,
                                                                   value, flag):
    shared("torchvision.models")
    path = write_suite(SUITE_BODY + f"        {field}: {value}\n")
    with pytest.raises(BenchError) as e:
        load_suite(path, check_resources=False)
    msg = str(e.value)
    assert len(msg.splitlines()) == 1 and f"suite.yaml:6: {field}: on a shared runner" in msg
    assert flag in msg and f"Remove `{field}` from the suite" in msg


def test_every_location_is_refused_in_one_line_each(shared, write_suite):
    shared("torchvision.models")
    path = write_suite(SUITE_BODY + "        tracking_uri: sqlite:///x.db\n"
                       "        cache_dir: /tmp/c\n        executor: {name: local, workers: 2}\n")
    with pytest.raises(BenchError) as e:
        load_suite(path, check_resources=False)
    lines = str(e.value).splitlines()
    assert lines[0] == f"3 problems in suite {path}:"
    assert [ln.split(": ")[1] for ln in lines[1:]] == ["tracking_uri", "cache_dir", "executor"]


def test_a_suite_names_no_artifact_location(shared, write_suite):
    """Artifacts go where the store (operator's) or --artifact-root says; a suite file has no
    field for them, and one it invents is refused like any unknown option."""
    shared("torchvision.models")
    path = write_suite(SUITE_BODY + "        artifact_location: /tmp/elsewhere\n")
    with pytest.raises(BenchError, match="unknown option 'artifact_location' for a suite"):
        load_suite(path, check_resources=False)


def test_a_private_runner_obeys_the_suite_and_a_shared_one_the_operator(shared, write_suite,
                                                                         monkeypatch, tmp_path):
    from bench.cli import build_parser
    from bench.record.tracking import resolve_uri

    monkeypatch.delenv("BENCH_ALLOWED_MODULES", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    path = write_suite(SUITE_BODY + "        tracking_uri: sqlite:///suite.db\n"
                       "        cache_dir: cache\n        executor: {name: local, workers: 2}\n")
    s = load_suite(path, check_resources=False)  # private: the suite decides
    assert (s.tracking_uri, s.cache_dir) == ("sqlite:///suite.db", str(tmp_path / "cache"))
    assert s.executor.options.workers == 2
    shared("torchvision.models")
    path = write_suite(SUITE_BODY)  # shared: the suite says nothing, the command line decides
    s = load_suite(path, check_resources=False)
    args = build_parser().parse_args(["run", str(path), "--tracking-uri", "sqlite:///op.db",
                                      "--cache-dir", "/srv/cache", "--workers", "3"])
    assert resolve_uri(args.tracking_uri, s.tracking_uri) == "sqlite:///op.db"
    assert s.cache_dir is None and s.executor.override(None, {"--workers": 3}).options.workers == 3


# ---------------------------------------------------------------- data that would run code
class _Marker:
    """Unpickling it would write `path` (the proof that a load ran code)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_yaml_python_tag_constructs_nothing(shared, write_suite, tmp_path):
    shared("torchvision.models")
    marker = tmp_path / "MARKER"
    path = write_suite(SUITE_BODY + f"        seed: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(BenchError, match="not valid YAML"):
        load_suite(path, check_resources=False)
    assert not marker.exists()


def test_an_npz_object_array_is_not_unpickled(shared, write_suite, tmp_path):
    import numpy as np

    shared("torchvision.models")
    marker = tmp_path / "MARKER"
    objs = np.empty(2, dtype=object)
    objs[:] = [_Marker(marker), _Marker(marker)]
    np.savez(tmp_path / "evil.npz", images=objs, labels=np.array([0, 1]))
    path = write_suite("""
        name: objects
        datasets: {evil: {source: npz, path: evil.npz}}
        models: {const: {source: reference}}
        metrics: {test_constant: {}}
        """)
    msg = _problems(path)
    assert "datasets.evil" in msg and "evil.npz" in msg
    assert not marker.exists()


# ---------------------------------------------------------------- YAML bounded
def _alias_bomb(depth: int, repeat: int = 9) -> str:
    """A "billion laughs" suite: each anchor a list repeating the previous one `repeat` times
    (depth 6: 469 bytes, 5.3 million nodes once expanded; depth 9: 3.9 billion)."""
    lines = ["name: bomb", "datasets: {digits: {}}", "models: {m: {source: reference}}",
             "metrics: {fid: {}}", "x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * repeat)}]" for i in range(1, depth + 1)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("depth", [6, 9])
def test_a_yaml_alias_bomb_is_refused_in_under_a_second(write_suite, depth):
    import time

    text = _alias_bomb(depth)
    assert len(text) < 1024
    path = write_suite(text)
    t0 = time.perf_counter()
    with pytest.raises(BenchError) as e:
        load_suite(path, check_resources=False)
    assert time.perf_counter() - t0 < 1.0
    assert str(e.value) == (f"{path}: its YAML aliases (*name) repeat more than 100,000 nodes; a "
                            "suite needs no such nesting. Write the repeated parts out, or use "
                            "fewer nested anchors.")


@pytest.mark.parametrize("text, why", [
    ("name: x\na: &a [*a]\n", "refer to a node from inside itself"),
    ("name: x\na: &a {b: *a}\n", "refer to a node from inside itself"),
    ("name: x\na: " + "[" * 1100 + "]" * 1100 + "\n", "nested too deeply"),
])
def test_a_cyclic_or_bottomless_suite_is_refused_in_one_line(write_suite, text, why):
    path = write_suite(text)
    with pytest.raises(BenchError, match=why) as e:
        load_suite(path, check_resources=False)
    assert str(path) in str(e.value) and len(str(e.value).splitlines()) == 1


def test_ordinary_anchors_and_merge_keys_still_work(write_suite):
    path = write_suite("""
        name: anchored
        datasets: {digits: {source: digits}}
        models:
          a: &gen {source: reference}
          b: *gen
        metrics:
          fid_a: &fid {source: fid, num_samples: 64}
          fid_b: {<<: *fid, num_samples: 128}
          fid_c: {<<: *fid, nums_samples: 32}
        """)
    with pytest.raises(BenchError) as e:  # line numbers still found through the merge
        load_suite(path, check_resources=False)
    assert "suite.yaml:10: metrics.fid_c.nums_samples: unknown option" in str(e.value)
    path = write_suite(path.read_text().replace("nums_samples", "num_samples"))
    s = load_suite(path, check_resources=False)
    assert s.models["b"].plugin == "reference"
    assert [s.metrics[k].options.num_samples for k in ("fid_a", "fid_b", "fid_c")] == [64, 128, 32]
