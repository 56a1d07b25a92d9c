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
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

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


def check_module(target: str) -> None:
    """Refuse a `module:attr` target outside BENCH_ALLOWED_MODULES, before it is imported."""
    if not shared_mode():
        return
    mod_name = target.partition(":")[0]
    if not any(mod_name == m or mod_name.startswith(m + ".") for m in listed(MODULES)):
        raise BenchError(f"model target '{target}': module '{mod_name}' is not in {MODULES} "
                         f"{_why_on(MODULES)}. Add it there if you trust it, or use a model "
                         "from an allowed module.")


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
