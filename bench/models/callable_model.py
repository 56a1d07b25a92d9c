"""A generator defined in the user's own Python code: `target: "package.module:build"`.

The target (a class or a function) builds a torch `nn.Module`; a checkpoint, if given, is
loaded into it. This is the shortest path from a training repository to the suite: no
export step, and the latents stay accessible (PPL and other latent metrics work).

Checkpoints load with `torch.load(..., weights_only=True)`, which cannot run code; a file
that holds pickled objects needs `trusted_checkpoint: true`, an explicit opt-in.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from pydantic import Field
from torch import nn

from bench.data._util import file_sha256
from bench.data.base import DataInfo, Dataset
from bench.errors import BenchError
from bench.models import MODELS
from bench.models.base import BuildContext, Generator, ModelSource
from bench.models.torch_generator import TorchModelOptions, build_torch_generator

# dataset facts passed to the target when its signature asks for them and kwargs do not
AUTO_ARGS = ("num_classes", "image_size", "channels", "latent_dim")


class CallableOptions(TorchModelOptions):
    target: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$",
                        description="'module:attr', a class or function returning the nn.Module")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of the "
                                   f"target (it also gets {', '.join(AUTO_ARGS)} if it takes them)")
    checkpoint: Path | None = Field(None, description="weights: a state dict, or a dict with a "
                                    "`state_dict` / `model` entry (see checkpoint_key)")
    checkpoint_key: str | None = Field(None, description="entry of the checkpoint dict that holds "
                                       "the state dict (e.g. g_ema); default: state_dict, model")
    trusted_checkpoint: bool = Field(False, description="allow a checkpoint with pickled objects "
                                     "(runs code from the file: only for files you trust)")


def check_allowed(target: str) -> None:
    """A suite is code, like a Makefile: `target` imports and calls any function (`os:system`
    too). Shared runners that execute other people's suites set BENCH_ALLOWED_MODULES to a
    comma-separated list of module prefixes (e.g. `mylab.models,torchvision.models`); any other
    target is refused before it is imported."""
    allowed = [m.strip() for m in os.environ.get("BENCH_ALLOWED_MODULES", "").split(",") if m.strip()]
    if not allowed:
        return
    mod_name = target.partition(":")[0]
    if not any(mod_name == m or mod_name.startswith(m + ".") for m in allowed):
        raise BenchError(f"model target '{target}': module '{mod_name}' is not in "
                         f"BENCH_ALLOWED_MODULES ({', '.join(allowed)}). Add it there if you trust "
                         "it, or use a model from an allowed module.")


def resolve_target(target: str) -> Callable[..., Any]:
    """Import 'module:attr' (attr may be dotted), with errors that say what to fix."""
    check_allowed(target)
    mod_name, _, attr = target.partition(":")
    try:
        obj: Any = importlib.import_module(mod_name)
    except ModuleNotFoundError as e:
        raise BenchError(f"model target '{target}': cannot import module '{mod_name}' ({e}). "
                         "Install the package, or put its folder on PYTHONPATH.") from None
    except Exception as e:  # noqa: BLE001 - the user's module failed while importing
        raise BenchError(f"model target '{target}': importing '{mod_name}' failed with "
                         f"{type(e).__name__}: {e}") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            names = [n for n in dir(obj) if not n.startswith("_")]
            raise BenchError(f"model target '{target}': '{mod_name}' has no attribute '{attr}'. "
                             f"Defined there: {', '.join(names[:20])}.") from None
    if not callable(obj):
        raise BenchError(f"model target '{target}' is a {type(obj).__name__}, not a class or "
                         "function that builds the generator module.")
    return obj


def _state_dict(obj: Any, key: str | None, path: Path) -> dict[str, torch.Tensor]:
    """The state dict inside what torch.load returned: a bare state dict, a module, or a
    training checkpoint that keeps it under `state_dict` / `model` (or `checkpoint_key`)."""
    if isinstance(obj, nn.Module):
        return obj.state_dict()
    if not isinstance(obj, dict):
        raise BenchError(f"checkpoint {path} holds a {type(obj).__name__}, not a state dict.")
    if key is not None:
        if key not in obj:
            raise BenchError(f"checkpoint {path} has no entry '{key}' (checkpoint_key); it has "
                             f"{sorted(map(str, obj))[:20]}.")
        return _state_dict(obj[key], None, path)
    if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj
    for k in ("state_dict", "model"):
        if k in obj:
            return _state_dict(obj[k], None, path)
    raise BenchError(f"checkpoint {path}: not a state dict and no `state_dict` / `model` entry "
                     f"(entries: {sorted(map(str, obj))[:20]}). Set `checkpoint_key` to the entry "
                     "that holds the generator's weights.")


def load_checkpoint(net: nn.Module, path: Path, trusted: bool, key: str | None) -> None:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=not trusted)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise BenchError(f"checkpoint {path} holds pickled Python objects, not only tensors "
                         f"({first}). Save `model.state_dict()` instead, or, if you trust the "
                         "file, set `trusted_checkpoint: true`.") from None
    except (OSError, RuntimeError, EOFError) as e:
        raise BenchError(f"checkpoint {path}: cannot be read by torch.load ({e}).") from None
    sd = _state_dict(obj, key, path)
    if sd and all(k.startswith("module.") for k in sd):  # saved from DataParallel/DDP
        sd = {k.removeprefix("module."): v for k, v in sd.items()}
    missing, unexpected = _key_diff(net, sd)
    if missing or unexpected:
        raise BenchError(f"checkpoint {path} does not fit the module built by the target: "
                         f"missing keys {missing[:8]}, unexpected keys {unexpected[:8]}. Check "
                         "`kwargs` (architecture) and `checkpoint_key`.")
    try:
        net.load_state_dict(sd)
    except RuntimeError as e:
        raise BenchError(f"checkpoint {path} does not fit the module: {e}") from None


def _key_diff(net: nn.Module, sd: dict[str, Any]) -> tuple[list[str], list[str]]:
    want = set(net.state_dict())
    return sorted(want - set(sd)), sorted(set(sd) - want)


@MODELS.register("callable")
class CallableModel(ModelSource):
    """A torch generator from your own code ('module:attr'), with an optional checkpoint."""

    Options = CallableOptions
    options: CallableOptions
    has_latent = True

    def check(self, info: DataInfo) -> None:
        o = self.options
        resolve_target(o.target)
        if o.checkpoint is not None and not o.checkpoint.is_file():
            raise BenchError(f"checkpoint {o.checkpoint} does not exist. Check `checkpoint` "
                             "(relative paths are resolved against the suite file's folder).")

    def _kwargs(self, fn: Callable[..., Any], dataset: Dataset) -> dict[str, Any]:
        """kwargs plus the dataset facts the target's signature names: a builder written for
        any dataset (`def build(num_classes, image_size)`) needs no per-dataset suite entry."""
        kw = dict(self.options.kwargs)
        c, h, _ = dataset.image_shape
        facts = {"num_classes": dataset.num_classes, "image_size": h, "channels": c,
                 "latent_dim": self.options.latent_dim}
        try:
            params = inspect.signature(fn).parameters
        except (TypeError, ValueError):
            return kw
        for name in AUTO_ARGS:
            if name in params and name not in kw and facts[name] is not None:
                kw[name] = facts[name]
        return kw

    def build(self, dataset: Dataset, ctx: BuildContext) -> Generator:
        o = self.options
        fn = resolve_target(o.target)
        kw = self._kwargs(fn, dataset)
        try:
            net = fn(**kw)
        except TypeError as e:
            raise BenchError(f"model target '{o.target}' cannot be called with {sorted(kw)}: {e}. "
                             "Fix `kwargs`.") from None
        if not isinstance(net, nn.Module):
            raise BenchError(f"model target '{o.target}' returned a {type(net).__name__}; it must "
                             "return a torch.nn.Module.")
        if o.checkpoint is not None:
            load_checkpoint(net, o.checkpoint, o.trusted_checkpoint, o.checkpoint_key)
        return build_torch_generator(net, o, dataset, ctx, o.target)

    def fingerprint(self) -> dict[str, str]:
        """Content hashes of the checkpoint and of the target's source file: new weights or
        new code under the same names are new cells, not resumed old ones."""
        out = {}
        o = self.options
        if o.checkpoint is not None and o.checkpoint.is_file():
            out["checkpoint_sha256"] = file_sha256(o.checkpoint)
        try:
            spec = importlib.util.find_spec(o.target.partition(":")[0])
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.origin and Path(spec.origin).is_file():
            out["target_sha256"] = file_sha256(Path(spec.origin))
        return out
