"""`bench list [KIND]`: each registry's plugins with their options, and those that could not
be loaded (and why)."""

from __future__ import annotations

from bench.cli.parser import LISTS


def print_lists(kind: str | None = None) -> None:
    """Every registry of bench.cli.parser.LISTS, or only `kind`'s."""
    import importlib

    from bench.core.registry import Registry, describe_options

    for k, where in LISTS.items():
        if kind and kind != k:
            continue
        module, _, attr = where.partition(":")
        reg: Registry = getattr(importlib.import_module(module), attr)
        if k == "classifiers":
            _print_classifiers(reg)
        else:
            print(f"\n{k}:")
            for name, cls in reg.items():
                print(f"  {name:<18} {cls.summary()}")
                for opt, typ, default, desc in describe_options(cls.Options):
                    flag = (cls.Options.model_fields[opt].json_schema_extra or {}).get("cli")
                    d = (f" — {desc}" if desc else "") + (f" (`bench run {flag}`)" if flag else "")
                    print(f"      {opt}: {typ} = {default if isinstance(default, str) and default.startswith(('(', '{')) else repr(default)}{d}")
        for name, why in reg.failures().items():
            print(f"  {name:<18} unavailable: {why}")


def _print_classifiers(reg) -> None:
    import inspect

    from bench.classifiers.train import ClassifierConfig
    from bench.core.registry import describe_options

    print("\nclassifiers (metric option `classifier: {name: ..., epochs: ..., ...}`):")
    for name, cls in reg.items():
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        params = [p for p in inspect.signature(cls).parameters
                  if p not in ("in_chans", "num_classes", "image_size")]
        own = " [own recipe and trainer]" if cls.has_own_trainer() else ""
        print(f"  {name:<18} {doc}{own}" + (f"  (args: {', '.join(params)})" if params else ""))
    print("  training options of every classifier:")
    for opt, typ, default, desc in describe_options(ClassifierConfig):
        print(f"      {opt}: {typ} = {default!r}" + (f" — {desc}" if desc else ""))
