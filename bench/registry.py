"""One generic registry per plugin kind: name -> plugin class, lazy, with "did you mean" errors.

Modelled on lm-evaluation-harness's `lm_eval/api/registry.py`: the modules that define a
kind's plugins are imported on first lookup (so `import bench` stays cheap and there are
no import cycles), and third-party packages can add plugins through the entry-point
group `bench.<kind>` without touching this package.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Any, ClassVar, Generic, Literal, TypeVar, get_args, get_origin

from pydantic import BaseModel, ConfigDict

from bench.errors import BenchError


class Options(BaseModel):
    """Base of every plugin's options: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoOptions(Options):
    pass


class Plugin:
    """Base of datasets, model sources, metrics, classifiers and feature extractors.

    A plugin declares its options as a pydantic model so the suite validator can check
    types and unknown keys before anything runs, and `bench list` can document them.
    """

    name: ClassVar[str] = ""
    Options: ClassVar[type[Options]] = NoOptions

    def __init__(self, options: Options | None = None):
        self.options = options if options is not None else type(self).Options()

    def fingerprint(self) -> dict[str, Any]:
        """Extra identity for cell keys beyond the options, e.g. the content hash of an
        input file, so that resume re-runs a cell whose inputs changed under the same path."""
        return {}

    @classmethod
    def summary(cls) -> str:
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""


T = TypeVar("T", bound=type)


def did_you_mean(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return f" Did you mean '{close[0]}'?" if close else ""


class Registry(Generic[T]):
    def __init__(self, kind: str, modules: list[str]):
        self.kind = kind
        self._modules = modules
        self._entries: dict[str, T] = {}
        self._loaded = False

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._entries and self._entries[name] is not obj:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._entries[name] = obj
            if isinstance(obj, type) and issubclass(obj, Plugin):
                obj.name = name
            return obj

        return deco

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for mod in self._modules:
            importlib.import_module(mod)
        for ep in entry_points(group=f"bench.{self.kind}"):
            self.register(ep.name)(ep.load())

    def get(self, name: str) -> T:
        self._load()
        try:
            return self._entries[name]
        except KeyError:
            raise BenchError(
                f"unknown {self.kind} '{name}'.{did_you_mean(name, self.names())} "
                f"Known: {', '.join(self.names())} (see `bench list`)."
            ) from None

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._entries

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def items(self) -> Iterator[tuple[str, T]]:
        self._load()
        yield from sorted(self._entries.items())


def describe_options(options: type[BaseModel]) -> list[tuple[str, str, Any, str]]:
    """(name, type, default, description) per option, for `bench list` and the docs."""
    rows = []
    for fname, field in options.model_fields.items():
        ann = field.annotation
        if get_origin(ann) is Literal:
            tname = " | ".join(repr(a) for a in get_args(ann))
        else:
            tname = getattr(ann, "__name__", None) or str(ann).replace("typing.", "")
        if field.is_required():
            default = "(required)"
        else:
            default = field.get_default(call_default_factory=True)
            if isinstance(default, BaseModel):
                default = f"{{...}} ({type(default).__name__})"
        rows.append((fname, tname, default, field.description or ""))
    return rows
