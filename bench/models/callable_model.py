"""A generator defined in the user's own Python code: `target: "package.module:build"`.

The target (a class or a function) builds a torch `nn.Module`; a checkpoint, if given, is
loaded into it. This is the shortest path from a training repository to the suite: no
export step, and the latents stay accessible (PPL and other latent metrics work).

Checkpoints load with `torch.load(..., weights_only=True)`, which cannot run code; a file
that holds pickled objects needs `trusted_checkpoint: true`, an explicit opt-in. On a shared
runner both the target's module and a trusted checkpoint's folder must be allowed by name
(bench.core.allowlist).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pickle
import re
import sys
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from pydantic import Field
from torch import nn

from bench.core import allowlist
from bench.core.errors import BenchError
from bench.core.registry import did_you_mean
from bench.data._util import file_sha256
from bench.data.base import DataInfo, Dataset
from bench.models import MODELS
from bench.models.base import BuildContext, Generator, ModelSource
from bench.models.torch_generator import TorchModelOptions, build_torch_generator, has_mapping_parts

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
    # where a module beside the suite file is found (as `python suite_dir/x.py` finds its
    # neighbours): the suite's folder, filled in by the suite; not part of the cell's identity
    module_dir: Path | None = Field(None, exclude=True, json_schema_extra={"suite_folder": True},
                                    description="folder searched for the target's module when it "
                                    "is not installed (default: the suite file's folder)")


def check_allowed(target: str) -> None:
    """A suite is code, like a Makefile: `target` imports and calls any function (`os:system`
    too). On a shared runner (bench.core.allowlist) a target outside BENCH_ALLOWED_MODULES is
    refused before it is imported."""
    allowlist.check_module(target)


def _import(mod_name: str, folder: Path | None) -> Any:
    """The module, from the installed packages and PYTHONPATH, else from `folder` (the suite
    file's): a module written beside the suite imports without an install."""
    try:
        return importlib.import_module(mod_name)
    except ModuleNotFoundError as e:
        top = mod_name.split(".")[0]
        if folder is None or e.name != top or not ((folder / f"{top}.py").is_file()
                                                    or (folder / top / "__init__.py").is_file()):
            raise
    with _PATH_LOCK:
        sys.path.insert(0, str(folder))
        try:
            return importlib.import_module(mod_name)
        finally:
            sys.path.remove(str(folder))  # the module stays imported; the path is not left changed


_PATH_LOCK = threading.Lock()


def resolve_target(target: str, folder: Path | None = None) -> Callable[..., Any]:
    """Import 'module:attr' (attr may be dotted), with errors that say what to fix; `folder`
    (the suite file's) is searched for a module that is not installed."""
    check_allowed(target)
    mod_name, _, attr = target.partition(":")
    try:
        obj: Any = _import(mod_name, folder)
    except ModuleNotFoundError as e:
        where = f" or beside the suite file ({folder})" if folder is not None else ""
        raise BenchError(f"model target '{target}': cannot import module '{mod_name}' ({e}). "
                         f"Install the package, put its folder on PYTHONPATH{where}.") from None
    except Exception as e:  # noqa: BLE001 - the user's module failed while importing
        raise BenchError(f"model target '{target}': importing '{mod_name}' failed with "
                         f"{type(e).__name__}: {e}") from None
    reached: list[tuple[str, Any]] = []
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            names = [n for n in dir(obj) if not n.startswith("_")]
            raise BenchError(f"model target '{target}': '{mod_name}' has no attribute '{attr}'. "
                             f"Defined there: {', '.join(names[:20])}.") from None
        reached.append((".".join([*(n for n, _ in reached), part]), obj))
    allowlist.check_resolved(target, reached)
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


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
SAVE_HINT = "torch.save(model.state_dict(), path)"


def _checkpoint_format(path: Path) -> str:
    """"zip" (torch.save's format since 1.6) or "legacy" (older pickle-based files); a
    BenchError for a file torch.save did not write (torch.load's own error for it is a bare
    `KeyError: 101` or `IndexError`)."""
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError) as e:
            raise BenchError(f"checkpoint {path}: damaged zip archive ({e}). Save it again with "
                             f"{SAVE_HINT}.") from None
        if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
            return "zip"
        raise BenchError(f"checkpoint {path} is a zip archive but not a torch checkpoint (it holds "
                         f"{names[:5]}). Point `checkpoint` at a file written by {SAVE_HINT}.")
    with open(path, "rb") as f:
        head = f.read(16)
    if head[:1] == b"\x80":  # a pickle stream: torch.save's legacy format
        return "legacy"
    what = "an empty file" if not head else f"it starts with {head!r}"
    if head[:4] == b"PK\x03\x04":
        what = "a zip archive without its end: truncated? torch.save writes zip archives"
    if len(head) > 9 and head[8:10] == b'{"':
        what = "a safetensors file; convert it with safetensors.torch.load_file and torch.save"
    raise BenchError(f"checkpoint {path} is not a torch checkpoint ({what}). Point `checkpoint` at "
                     f"a file written by {SAVE_HINT}.")


def read_checkpoint(path: Path, trusted: bool, map_location: str = "cpu") -> Any:
    """torch.load with errors that say what to fix. `map_location="meta"` (validation) reads
    only the structure and shapes, memory-mapped, without the tensor data. A trusted file is
    unpickled even then, so a shared runner's allowance is checked first."""
    if trusted:
        allowlist.check_checkpoint(path)
    fmt = _checkpoint_format(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=not trusted,
                          mmap=fmt == "zip" and map_location == "meta")
    except pickle.UnpicklingError as e:
        if not trusted:
            m = re.search(r"GLOBAL ([\w.]+)", str(e))
            what = f" (it pickles {m[1]})" if m else ""
            raise BenchError(f"checkpoint {path} holds pickled Python objects, not only tensors"
                             f"{what}. Save `model.state_dict()` instead, or, if you trust the "
                             "file, set `trusted_checkpoint: true` (loading it runs code from the "
                             "file).") from None
        why = str(e)
    except Exception as e:  # noqa: BLE001 - a damaged file raises KeyError, EOFError, RuntimeError...
        why = f"{type(e).__name__}: {e}"
    first = _ANSI.sub("", why).strip().splitlines()[0] if why.strip() else "no details"
    raise BenchError(f"checkpoint {path} cannot be read by torch.load ({first}). Check that the "
                     f"file is complete, or save it again with {SAVE_HINT}.")


def checkpoint_state_dict(path: Path, trusted: bool, key: str | None,
                          map_location: str = "cpu") -> dict[str, Any]:
    """The state dict a checkpoint holds, without a DataParallel/DDP `module.` prefix."""
    sd = _state_dict(read_checkpoint(path, trusted, map_location), key, path)
    if sd and all(k.startswith("module.") for k in sd):  # saved from DataParallel/DDP
        sd = {k.removeprefix("module."): v for k, v in sd.items()}
    return sd


def fit_problems(net: nn.Module, sd: dict[str, Any], limit: int = 5) -> list[str]:
    """Missing and unexpected keys and shape mismatches between a module and a state dict
    (empty when it loads): the first `limit` of each, with counts."""
    want = net.state_dict()

    def listed(keys: list[str]) -> str:
        more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
        return ", ".join(keys[:limit]) + more

    out = []
    missing = sorted(set(want) - set(sd))
    unexpected = sorted(set(sd) - set(want))
    shapes = [(k, tuple(sd[k].shape), tuple(want[k].shape)) for k in sorted(set(want) & set(sd))
              if hasattr(sd[k], "shape") and hasattr(want[k], "shape")
              and tuple(sd[k].shape) != tuple(want[k].shape)]
    if missing:
        out.append(f"{len(missing)} key(s) of the module missing from the checkpoint: {listed(missing)}")
    if unexpected:
        out.append(f"{len(unexpected)} unexpected key(s) in the checkpoint: {listed(unexpected)}")
    if shapes:
        out.append(f"{len(shapes)} shape mismatch(es): " + "; ".join(
            f"{k} is {tuple(a)} in the checkpoint, {tuple(b)} in the module"
            for k, a, b in shapes[:limit]) + (f"; and {len(shapes) - limit} more"
                                              if len(shapes) > limit else ""))
    return out


def _not_fitting(path: Path, target: str, problems: list[str]) -> BenchError:
    return BenchError(f"checkpoint {path} does not fit the module built by '{target}': "
                      + "; ".join(problems) + ". Check `kwargs` (the architecture must be the "
                      "one that was trained) and `checkpoint_key` (which entry holds the weights).")


def load_checkpoint(net: nn.Module, path: Path, trusted: bool, key: str | None,
                    target: str = "the target") -> None:
    sd = checkpoint_state_dict(path, trusted, key)
    problems = fit_problems(net, sd)
    if problems:
        raise _not_fitting(path, target, problems)
    try:
        net.load_state_dict(sd)
    except RuntimeError as e:
        raise BenchError(f"checkpoint {path} does not fit the module: {e}") from None


def check_arguments(fn: Callable[..., Any], kw: dict[str, Any], target: str) -> None:
    """The target accepts these keyword arguments and gets every one it requires."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin or C extension: nothing to compare with
        return
    try:
        sig.bind(**kw)
        return
    except TypeError:
        pass
    params = sig.parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    named = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unexpected = [] if takes_any else [k for k in kw if k not in named]
    missing = [n for n, p in params.items() if p.default is p.empty and n not in kw
               and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    parts = []
    if unexpected:
        hints = "".join(did_you_mean(u, named) for u in unexpected)
        parts.append(f"it takes no argument(s) {unexpected}, given in `kwargs`.{hints}")
    if missing:
        auto = [n for n in missing if n in AUTO_ARGS]
        how = (f"; {', '.join(auto)} come from the dataset and options only where known (set "
               "`latent_dim`)") if auto else ""
        parts.append(f"required argument(s) {missing} are not given: add them to `kwargs`{how}.")
    detail = " ".join(parts) or f"it cannot be called with arguments {sorted(kw)}."
    raise BenchError(f"model target '{target}' does not accept the suite's arguments: {detail} "
                     f"Its signature: {sig}. Fix `kwargs`.")


def build_on_meta(fn: Callable[..., Any], kw: dict[str, Any], target: str) -> nn.Module | None:
    """The target's module built on the meta device (shapes, no memory, instant), or None
    when its constructor cannot run there (it reads data, calls .item()...): then only
    build() can tell, and the run reports what goes wrong."""
    try:
        with torch.device("meta"):
            net = fn(**kw)
    except Exception:  # noqa: BLE001 - the real build reports real errors with the real device
        return None
    if not isinstance(net, nn.Module):
        raise BenchError(f"model target '{target}' returned a {type(net).__name__}; it must "
                         "return a torch.nn.Module.")
    return net


@MODELS.register("callable")
class CallableModel(ModelSource[CallableOptions]):
    """A torch generator from your own code ('module:attr'), with an optional checkpoint."""

    has_latent = True

    def check_allowed(self) -> None:
        o = self.options
        allowlist.check_module(o.target)
        if allowlist.shared_mode():
            resolve_target(o.target, o.module_dir)  # imports the allowed module; checks what the path reaches
        if o.checkpoint is not None and o.trusted_checkpoint:
            allowlist.check_checkpoint(o.checkpoint)

    def check(self, info: DataInfo) -> None:
        """What build() would find, without building: the target imports and accepts the
        arguments, and the checkpoint is a readable torch file whose keys and shapes fit the
        module (built on the meta device, read memory-mapped without its data)."""
        o = self.options
        fn = resolve_target(o.target, o.module_dir)
        if o.checkpoint is not None and not o.checkpoint.is_file():
            raise BenchError(f"checkpoint {o.checkpoint} does not exist. Check `checkpoint` "
                             "(relative paths are resolved against the suite file's folder).")
        kw = self._kwargs(fn, info)
        check_arguments(fn, kw, o.target)
        # a shared runner calls no suite-chosen code at validation, even an allowed one
        net = None if allowlist.shared_mode() else build_on_meta(fn, kw, o.target)
        if o.checkpoint is not None:
            sd = checkpoint_state_dict(o.checkpoint, o.trusted_checkpoint, o.checkpoint_key,
                                       map_location="meta")
            problems = fit_problems(net, sd) if net is not None else []
            if problems:
                raise _not_fitting(o.checkpoint, o.target, problems)

    def has_mapping(self, info: DataInfo) -> bool | None:
        """Whether the module has `mapping` and `synthesis` (StyleGAN2-ADA's G), told from the
        module built on the meta device; None when it cannot be built there."""
        o = self.options
        if allowlist.shared_mode():
            return None  # no suite-chosen code runs before the cell does
        try:
            fn = resolve_target(o.target, o.module_dir)
            net = build_on_meta(fn, self._kwargs(fn, info), o.target)
        except BenchError:
            return None
        return None if net is None else has_mapping_parts(net)

    def _kwargs(self, fn: Callable[..., Any], dataset: Dataset | DataInfo) -> dict[str, Any]:
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
        fn = resolve_target(o.target, o.module_dir)
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
            load_checkpoint(net, o.checkpoint, o.trusted_checkpoint, o.checkpoint_key, o.target)
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
