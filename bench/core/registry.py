"""One generic registry per plugin kind: name -> plugin class, lazy, with "did you mean" errors.

Modelled on lm-evaluation-harness's `lm_eval/api/registry.py`: the modules that define a
kind's plugins are imported on first lookup (so `import bench` stays cheap and there are
no import cycles), and third-party packages can add plugins through the entry-point
group `bench.<kind>` without touching this package.

Loading is per entry: each plugin module (and each entry point) is imported on its own. One
that fails to import makes only its own names fail, with its import error in the message
(`bench list` shows it too); every other plugin keeps working. A registry knows the base
class its entries must subclass and refuses anything else at registration.
"""

from __future__ import annotations

import ast
import difflib
import importlib
import importlib.util
from abc import ABC
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from importlib.metadata import entry_points
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Generic,
    Literal,
    Protocol,
    TypeVar,
    get_args,
    get_origin,
)

from pydantic import BaseModel, ConfigDict

from bench.core.errors import BenchError


class Options(BaseModel):
    """Base of every plugin's options: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoOptions(Options):
    pass


BaseOptions = Options  # inside Plugin, `Options` is the plugin's own options class
O = TypeVar("O", bound=Options)  # noqa: E741 - a plugin's options class, as in Plugin[O]
_O = TypeVar("_O", bound=Options)


class _OptionsClass(Protocol):
    """What mypy sees of `Plugin.Options` (at run time it is a plain class attribute): read
    on `FID` or `type[FID]`, the options class its type argument names, `type[FIDOptions]`;
    set, any options class (the older form, `Options = X` in the class body)."""

    def __get__(self, obj: object, owner: type[Plugin[_O]]) -> type[_O]: ...

    def __set__(self, obj: object, value: type[BaseOptions]) -> None: ...


def _options_of(cls: type, arg: Any) -> type[BaseOptions] | None:
    """The options class that a type argument of `cls`'s generic base names: the class itself,
    or the default of a type variable that declares one (PEP 696: an intermediate base such as
    FeatureMetric passes on its own options this way); None for a type variable without a
    default, or Any: then `cls` inherits its base's."""
    if isinstance(arg, TypeVar):
        arg = getattr(arg, "__default__", None)  # typing_extensions.TypeVar(default=) on 3.11
        return arg if isinstance(arg, type) and issubclass(arg, BaseOptions) else None
    if arg is Any:
        return None
    if isinstance(arg, type) and issubclass(arg, BaseOptions):
        return arg
    raise TypeError(f"{cls.__qualname__}: the type argument {arg!r} of its base is not a "
                    f"subclass of bench.core.registry.Options; name the options class itself "
                    f"(not a string), e.g. Metric[MyOptions].")


class Plugin(ABC, Generic[O]):  # the kinds declare the abstract methods (ModelSource.build)
    """Base of datasets, model sources, metrics, feature extractors and executors.

    A plugin declares its options as a pydantic model so the suite validator can check
    types and unknown keys before anything runs, and `bench list` can document them. It
    names that model once, as the type argument of its kind: `class FID(Metric[FIDOptions])`
    types `self.options` as FIDOptions and sets the class attribute `FID.Options` to
    FIDOptions (what the validator, `bench list` and the docs read). A subclass with no type
    argument inherits its base's; none anywhere: NoOptions. A class body's own `Options = X`
    (the older form) still wins. It is an ABC: a subclass that leaves an @abstractmethod
    unimplemented cannot be instantiated.
    """

    name: ClassVar[str] = ""
    if TYPE_CHECKING:
        Options: ClassVar[_OptionsClass]
    else:
        Options = NoOptions  # set per subclass by __init_subclass__
    options: O

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "Options" in cls.__dict__:  # set in the class body
            return
        for base in cls.__dict__.get("__orig_bases__", ()):
            origin = get_origin(base)
            if isinstance(origin, type) and issubclass(origin, Plugin) and get_args(base):
                found = _options_of(cls, get_args(base)[0])
                if found is not None:
                    cls.Options = found  # type: ignore[assignment]  # mypy: no __set__ on a class
                    return

    def __init__(self, options: O | None = None):
        self.options = options if options is not None else type(self).Options()

    def fingerprint(self) -> dict[str, Any]:
        """Extra identity for cell keys beyond the options, e.g. the content hash of an
        input file, so that resume re-runs a cell whose inputs changed under the same path."""
        return {}

    @classmethod
    def summary(cls) -> str:
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""


T = TypeVar("T")


def did_you_mean(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return f" Did you mean '{close[0]}'?" if close else ""


def _why(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


def declared_names(module: str) -> list[str]:
    """The names a plugin module registers with a literal `@X.register("name")`, read from its
    source without importing it: whom to blame when the module fails to import."""
    try:
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            return []
        with open(spec.origin, encoding="utf-8") as f:
            tree = ast.parse(f.read(), spec.origin)
    except Exception:  # noqa: BLE001 - a syntax error or missing parent: nobody to blame
        return []
    return [node.args[0].value for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "register" and node.args
            and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)]


class Registry(Generic[T]):
    """name -> plugin. `modules` register their plugins when imported (on first lookup);
    `base` is the class every entry must subclass (None: any callable, e.g. a factory
    function); `what` is the singular noun used in messages (default: `kind` minus its s)."""

    def __init__(self, kind: str, modules: list[str], base: type | None = None,
                 what: str | None = None):
        self.kind = kind
        self.base = base
        self.what = what or kind.removesuffix("s")
        self._modules = modules
        self._entries: dict[str, T] = {}
        self._failed: dict[str, str] = {}  # name -> why it could not be loaded
        self._unattributed: dict[str, str] = {}  # module or entry point -> why, names unknown
        self._loaded = False

    def _check(self, name: str, obj: Any) -> None:
        if self.base is not None:
            if not (isinstance(obj, type) and issubclass(obj, self.base)):
                got = obj.__qualname__ if isinstance(obj, type) else repr(obj)
                raise TypeError(f"{self.what} '{name}': {got} is not a subclass of "
                                f"{self.base.__module__}.{self.base.__qualname__}; a registered "
                                f"{self.what} must be one.")
        elif not callable(obj):
            raise TypeError(f"{self.what} '{name}': {obj!r} is not callable.")
        if name in self._entries and self._entries[name] is not obj:
            raise ValueError(f"{self.what} '{name}' is registered twice")

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            self._check(name, obj)
            self._entries[name] = obj
            self._failed.pop(name, None)
            if isinstance(obj, type) and issubclass(obj, Plugin):
                obj.name = name
            return obj

        return deco

    @contextmanager
    def scoped(self, entries: Mapping[str, T]) -> Iterator[None]:
        """Register `entries` for the duration of a `with` block, then remove them (tests)."""
        self._load()
        for name, obj in entries.items():
            if name in self._entries:
                raise ValueError(f"{self.what} '{name}' is registered twice")
            self._check(name, obj)
        try:
            for name, obj in entries.items():
                self.register(name)(obj)
            yield
        finally:
            for name in entries:
                self._entries.pop(name, None)

    def _import(self, module: str) -> None:
        before = set(self._entries)
        try:
            importlib.import_module(module)
        except Exception as e:  # noqa: BLE001 - one broken plugin must not hide the others
            why = f"module {module} failed to import: {_why(e)}"
            # what the half-imported module itself registered points into a broken module
            added = {n for n in set(self._entries) - before
                     if getattr(self._entries[n], "__module__", None) == module}
            for name in added:
                del self._entries[name]
            names = (added | set(declared_names(module))) - set(self._entries)
            for name in names:
                self._failed[name] = why
            if not names:
                self._unattributed[module] = why

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for module in self._modules:
            self._import(module)
        for ep in entry_points(group=f"bench.{self.kind}"):
            try:
                self.register(ep.name)(ep.load())
            except Exception as e:  # noqa: BLE001 - one broken installed plugin must not hide the others
                why = f"entry point {ep.name} = {ep.value} failed to load: {_why(e)}"
                if ep.name in self._entries:
                    self._unattributed[f"entry point {ep.name}"] = why
                else:
                    self._failed[ep.name] = why

    def explain(self, name: str) -> str:
        """Why `name` cannot be looked up: its load error, or unknown with the known names."""
        self._load()
        if name in self._failed:
            return (f"{self.what} '{name}' is unavailable: {self._failed[name]}. Install what "
                    f"it needs or fix the module; the other {self.kind} work.")
        msg = (f"unknown {self.what} '{name}'.{did_you_mean(name, self.names())} "
               f"Known: {', '.join(self.names()) or '(none)'} (see `bench list`).")
        if self._unattributed:
            msg += " Not loaded: " + "; ".join(self._unattributed.values()) + "."
        return msg

    def get(self, name: str) -> T:
        self._load()
        try:
            return self._entries[name]
        except KeyError:
            raise BenchError(self.explain(name)) from None

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._entries

    def names(self) -> list[str]:
        """The names that can be looked up (not the ones that failed to load)."""
        self._load()
        return sorted(self._entries)

    def items(self) -> Iterator[tuple[str, T]]:
        self._load()
        yield from sorted(self._entries.items())

    def failures(self) -> dict[str, str]:
        """name (or module, when its names are unknown) -> why it could not be loaded."""
        self._load()
        return {**self._failed, **self._unattributed}


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
            elif (isinstance(default, list) and default
                  and all(isinstance(d, BaseModel) for d in default)):  # e.g. K classifiers
                items = ", ".join(d.model_dump_json(exclude_defaults=True) for d in default)
                default = f"({len(default)} x {type(default[0]).__name__}: {items})"
        rows.append((fname, tname, default, field.description or ""))
    return rows
