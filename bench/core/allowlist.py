"""Shared-runner mode: what other people's suites may run as code, allowed by name.

A suite is code, like a Makefile. It runs code three ways: a `callable` model imports and
calls its `target`; `trusted_checkpoint: true` unpickles the checkpoint (pickles run code);
an `mlflow` model is unpickled when MLflow loads it. A runner that executes suites it did not
write sets any of these comma-separated variables, and then all three are refused unless
named in their own variable (an unset one allows nothing of its kind):

- BENCH_ALLOWED_MODULES: module prefixes whose callables may be targets
  (`mylab.models,torchvision.models`);
- BENCH_ALLOWED_CHECKPOINTS: folders under which a trusted checkpoint may be loaded (the
  file's real path, symlinks followed, must lie under one);
- BENCH_ALLOWED_MODELS: MLflow models that may be loaded: a registered model name (any
  version or alias), a run id (`runs:/<id>/...`), a logged model id (`m-...`) or a whole URI.

Refusals come at validation (`bench validate`, and `bench run` before any work), one line
naming the variable to set, and again where the code would be loaded. Checkpoints loaded
with `weights_only=True` (the default) and built-in sources run no suite-chosen code and
need no allowance.

In the same mode the operator, not the suite, decides where things go: a suite's own
`tracking_uri`, `cache_dir` and `executor` (`SUITE_LOCATIONS`) are refused, one line each.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from bench.core.errors import BenchError

MODULES = "BENCH_ALLOWED_MODULES"
CHECKPOINTS = "BENCH_ALLOWED_CHECKPOINTS"
MODELS = "BENCH_ALLOWED_MODELS"
VARIABLES = (MODULES, CHECKPOINTS, MODELS)


def listed(var: str) -> list[str]:
    """The comma-separated entries of `var` (none when unset or blank)."""
    from bench.core.settings import VARIABLES, settings

    return list(getattr(settings(), VARIABLES[var]))


def shared_mode() -> bool:
    """Whether this runner restricts suites: any of the variables is set (non-blank)."""
    return any(listed(v) for v in VARIABLES)


def _why_on(var: str) -> str:
    """The tail of a refusal: what the variable holds, or why it matters while unset."""
    have = listed(var)
    if have:
        return f"({', '.join(have)})"
    on = ", ".join(v for v in VARIABLES if listed(v))
    return f"(unset; this runner restricts suites because {on} is set)"


def _allowed_module(name: str | None) -> bool:
    if not name:
        return False
    return any(name == m or name.startswith(m + ".") for m in listed(MODULES))


def check_module(target: str) -> None:
    """Refuse a `module:attr` target outside BENCH_ALLOWED_MODULES, before it is imported.

    The module before the colon is only where the walk starts: `allowed:_api.fnmatch.os.system`
    names an allowed module and reaches `os.system`. So a shared runner also refuses private
    parts (`_x`) of the attribute path here, and `check_resolved` then checks what was reached."""
    if not shared_mode():
        return
    mod_name, _, attr = target.partition(":")
    if not _allowed_module(mod_name):
        raise BenchError(f"model target '{target}': module '{mod_name}' is not in {MODULES} "
                         f"{_why_on(MODULES)}. Add it there if you trust it, or use a model "
                         "from an allowed module.")
    private = [p for p in attr.split(".") if p.startswith("_")]
    if private:
        raise BenchError(f"model target '{target}': '{private[0]}' is a private attribute; a shared "
                         f"runner ({MODULES} is set) follows only public names. Name the class or "
                         "function where it is defined, in an allowed module.")


def _defined_in(obj: Any) -> str | None:
    """The module that defines `obj` (a module's own name for a module)."""
    if inspect.ismodule(obj):
        return obj.__name__
    if inspect.isclass(obj) or inspect.isfunction(obj) or inspect.ismethod(obj):
        mod = getattr(obj, "__module__", None)
        return mod if isinstance(mod, str) else None
    return None  # instances, builtins, partials: nothing says where they come from


def check_resolved(target: str, reached: list[tuple[str, Any]]) -> None:
    """After import, before any call: every object on the attribute path (`reached`, name and
    object, in order) is a module, class or Python function defined in an allowed module, and
    the last is a class or function. What is called is checked, not where the walk started:
    a re-export such as `allowed:torch.load` or `allowed:os.system` is refused."""
    if not shared_mode():
        return
    for i, (name, obj) in enumerate(reached):
        last = i == len(reached) - 1
        where = _defined_in(obj)
        kind = ("module" if inspect.ismodule(obj) else "class" if inspect.isclass(obj)
                else "function" if where else type(obj).__name__)
        if last and inspect.ismodule(obj):
            where = None  # a module is not a generator builder
        if where is None or not _allowed_module(where):
            src = f"defined in '{where}'" if where else "not a class or Python function"
            raise BenchError(f"model target '{target}': '{name}' is a {kind} {src}, which is not "
                             f"in {MODULES} {_why_on(MODULES)}. A shared runner calls only "
                             "classes and functions defined in allowed modules; name it where it "
                             "is defined, and allow that module if you trust it.")


def check_checkpoint(path: str | os.PathLike[str]) -> None:
    """Refuse unpickling the checkpoint at `path` unless its real path lies under a folder
    of BENCH_ALLOWED_CHECKPOINTS (called only for `trusted_checkpoint: true`)."""
    if not shared_mode():
        return
    real = Path(path).expanduser().resolve()
    for folder in listed(CHECKPOINTS):
        if real.is_relative_to(Path(folder).expanduser().resolve()):
            return
    raise BenchError(f"checkpoint {real}: `trusted_checkpoint: true` unpickles it (runs code from "
                     f"the file), and its folder is not in {CHECKPOINTS} {_why_on(CHECKPOINTS)}. "
                     f"Add the folder to {CHECKPOINTS} if you trust it, or save "
                     "model.state_dict() and drop `trusted_checkpoint`.")


def check_mlflow_model(uri: str, names: Iterable[str]) -> None:
    """Refuse loading (unpickling) the MLflow model `uri` unless one of `names` (what the URI
    names: registered model, run id, logged model id) or the URI itself is in
    BENCH_ALLOWED_MODELS."""
    if not shared_mode():
        return
    allowed = set(listed(MODELS))
    if uri in allowed or any(n in allowed for n in names):
        return
    which = ", ".join(f"'{n}'" for n in names) or f"'{uri}'"
    raise BenchError(f"MLflow model '{uri}': loading it unpickles it (runs code from the store), "
                     f"and {which} is not in {MODELS} {_why_on(MODELS)}. Add it to {MODELS} if "
                     "you trust it, or use a model from an allowed source.")


# suite fields that choose where a run writes or where its cells run (and whose results are
# unpickled): on a shared runner the operator's flag or variable sets each one
SUITE_LOCATIONS = {
    "tracking_uri": ("the store runs and their artifacts are written to",
                     "--tracking-uri or MLFLOW_TRACKING_URI; a new experiment's artifacts: "
                     "--artifact-root"),
    "cache_dir": ("the folder the cache writes", "--cache-dir or BENCH_CACHE_DIR"),
    "executor": ("where cells run (a Ray address, a Slurm log folder)",
                 "--executor and its flags (--workers, --ray-address, ...)"),
}


def suite_locations(fields: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field, one-line refusal) for each of `SUITE_LOCATIONS` a suite file sets (`fields`:
    its top-level mapping), on a shared runner; none elsewhere."""
    if not shared_mode():
        return []
    on = ", ".join(v for v in VARIABLES if listed(v))
    return [(name, f"on a shared runner ({on} is set) the operator sets {what} ({how}), not "
             f"a suite. Remove `{name}` from the suite.")
            for name, (what, how) in SUITE_LOCATIONS.items() if fields.get(name) is not None]
