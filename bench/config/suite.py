"""YAML suite -> validated Suite -> list[Cell]. Pure configuration: it builds nothing heavy.

Every problem a user can cause is found here, before any run starts, and reported all at
once as `file:line: key: what is wrong. What to do.`
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bench.config.leakage import leaking_cells
from bench.config.published import PublishedBlock, check_blocks, declared_values
from bench.core import allowlist
from bench.core.errors import BenchError
from bench.core.registry import Options, Plugin, Registry, did_you_mean
from bench.core.safe_names import name_problem, printable
from bench.executors import EXECUTORS, ExecutorConfig
from bench.executors.cells import Cell, Spec, resolve_device
from bench.infra.cache import stable_hash

if TYPE_CHECKING:
    from bench.data.base import DataInfo

# Cell, Spec and resolve_device live in bench/executors/cells.py (what the executors run; they
# import it from there, not from here); they stay importable from bench.config.suite.
__all__ = ["Cell", "Problem", "Problems", "Spec", "Suite", "SuiteError", "cell_key", "load_suite",
           "resolve_device", "suite_from_dict"]

SECTIONS = ("datasets", "models", "metrics")
KIND_OF = {"datasets": "dataset", "models": "model", "metrics": "metric"}


# ---------------------------------------------------------------- YAML with line numbers
# nodes that aliases may add to a suite's graph (each `*anchor` repeats the anchored node and
# all below it): a 1 KB file of nested anchors ("billion laughs") expands to 10^9 nodes,
# which the line map and the duplicate-key walk below would visit one by one
ALIAS_BUDGET = 100_000


def _alias_growth(root: yaml.Node) -> int | None:
    """How many nodes aliases add to `root` once expanded (the expanded count minus the
    distinct nodes), in one pass over the distinct nodes (never the expansion); None
    for an alias inside its own anchor (a cycle, which no walk ends)."""
    size: dict[int, int] = {}  # id(node) -> nodes below and including it, expanded
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:  # post-order without recursion: a deep document must not overflow the stack
        node, done = stack.pop()
        children = ([n for kv in node.value for n in kv] if isinstance(node, yaml.MappingNode)
                    else list(node.value) if isinstance(node, yaml.SequenceNode) else [])
        if done:
            on_path.discard(id(node))
            size[id(node)] = 1 + sum(size[id(c)] for c in children)  # exact: ints do not overflow
            continue
        if id(node) in size:
            continue
        if id(node) in on_path:
            return None
        on_path.add(id(node))
        stack.append((node, True))
        for c in children:
            if id(c) in on_path:
                return None
            if id(c) not in size:
                stack.append((c, False))
    return max(0, size[id(root)] - len(size))


def _line_map(node: yaml.Node, path: tuple = (), out: dict | None = None) -> dict[tuple, int]:
    """Map every key path (('models', 'cgan', 'steps'), ('cells', 0, 'models')) to its line."""
    out = {} if out is None else out
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            p = (*path, k.value)
            out[p] = k.start_mark.line + 1
            _line_map(v, p, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _line_map(v, (*path, i), out)
    return out


def _duplicate_keys(node: yaml.Node, path: str = "") -> list[tuple[str, int, int]]:
    """(dotted key, first line, repeated line) for every key defined twice in one mapping."""
    out: list[tuple[str, int, int]] = []
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for k, v in node.value:
            key = f"{path}.{k.value}" if path else str(k.value)
            line = k.start_mark.line + 1
            if k.value in seen:
                out.append((key, seen[k.value], line))
            else:
                seen[k.value] = line
            out.extend(_duplicate_keys(v, key))
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            out.extend(_duplicate_keys(v, f"{path}[{i}]"))
    return out


@dataclass(frozen=True)
class Problem:
    """One validation error: the key path from the suite's top (`("metrics", "kid",
    "num_samples")`), what is wrong and what to do, and the line of the nearest key (None: a
    suite given as a dict)."""

    path: tuple
    message: str
    line: int | None = None

    @property
    def key(self) -> str:
        return printable(".".join(str(p) for p in self.path)) or "(top level)"  # a name may hold ESC

    def text(self, file: str) -> str:
        return f"{file}:{self.line}: {self.key}: {self.message}" if self.line is not None \
            else f"{file}: {self.key}: {self.message}"


class SuiteError(BenchError):
    """A suite's problems, all at once; `problems` holds them typed (bench.evaluate tells them
    in its caller's words), the message as `file:line: key: what is wrong. What to do.`"""

    def __init__(self, file: str, problems: list[Problem]):
        self.file, self.problems = file, list(problems)
        lines = [p.text(file) for p in problems]
        super().__init__(lines[0] if len(lines) == 1 else  # one line names file, line and key
                         f"{len(lines)} problems in suite {file}:\n  " + "\n  ".join(lines))


class Problems:
    """Collects every validation error with its file, line and key."""

    def __init__(self, file: str, lines: dict[tuple, int]):
        self.file, self.lines = file, lines
        self.items: list[Problem] = []

    def add(self, path: tuple, msg: str) -> None:
        line = None
        for i in range(len(path), -1, -1):  # nearest enclosing key that has a line
            if path[:i] in self.lines:
                line = self.lines[path[:i]]
                break
        self.items.append(Problem(tuple(path), msg, line))

    def raise_if_any(self) -> None:
        if self.items:
            raise SuiteError(self.file, self.items)


def _model_in(ann: Any) -> tuple[type[BaseModel] | None, int]:
    """The options model an annotation holds and how many containers wrap it: a model is
    (M, 0), `list[M]`, `dict[str, M]` or `M | None` is (M, 1 for each list or dict)."""
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann, 0
    origin = get_origin(ann)
    for arg in reversed(get_args(ann)):  # a dict's value type is its last argument
        m, depth = _model_in(arg)
        if m is not None:
            return m, depth + (origin in (list, dict, tuple, set))
    return None, 0


def _field_at(model: type[BaseModel], loc: tuple, raw: Any = None
              ) -> tuple[type[BaseModel] | None, Any]:
    """The options model that holds the last key of `loc` and that key's field (None when
    it holds no such field), for "did you mean" hints and the descriptions of missing options.
    A model whose extras are another plugin's options (`features: {name: timm, ...}`) names
    that plugin's options model through `options_for(raw)`."""
    node, skip = raw, 0
    owner: type[BaseModel] | None = model
    for i, part in enumerate(loc):
        parent, node = node, (node.get(part) if isinstance(node, dict) else
                              node[part] if isinstance(node, list) and isinstance(part, int)
                              and -len(node) <= part < len(node) else None)
        if skip:  # a list index or a dict key
            skip -= 1
            continue
        if owner is None:
            return None, None
        f = owner.model_fields.get(str(part))
        extras = getattr(owner, "options_for", None)
        if f is None and extras is not None and isinstance(parent, dict):
            owner = extras(parent)
            f = owner.model_fields.get(str(part)) if owner is not None else None
        if i == len(loc) - 1:
            return owner, f
        if f is None:
            return None, None
        owner, skip = _model_in(f.annotation)
    return owner, None


def _report_validation(problems: Problems, base: tuple, err: ValidationError,
                       model: type[BaseModel], what: str, raw: Any = None) -> None:
    for e in err.errors():
        loc = tuple(e["loc"])
        inside = ".".join(str(p) for p in loc[:-1])  # where a nested option sits
        inside = f" in {inside}" if inside else ""
        if e["type"] == "extra_forbidden":
            owner, _ = _field_at(model, loc, raw)
            known = list(owner.model_fields) if owner is not None else []
            listed = f" Known options: {', '.join(known)}." if known else ""
            problems.add((*base, *loc), f"unknown option '{loc[-1]}'{inside} for {what}."
                         f"{did_you_mean(str(loc[-1]), known)}{listed}")
        elif e["type"] == "missing":
            _, f = _field_at(model, loc, raw)
            desc = f" ({f.description})" if f is not None and f.description else ""
            problems.add((*base, *loc), f"required option '{loc[-1]}'{inside}{desc} missing for "
                         f"{what}. Add it.")
        else:
            got = f" (got {e['input']!r})" if "input" in e and not isinstance(e["input"], dict) else ""
            msg = e["msg"].removeprefix("Value error, ")
            problems.add((*base, *loc), f"{msg}{got}.")


# ---------------------------------------------------------------- schema of the suite file
Names = list[str] | Literal["all"]


class ExcludeRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str | None = None
    dataset: str | None = None
    metric: str | None = None


class CellBlock(BaseModel):
    model_config = ConfigDict(extra="forbid")
    models: Names = "all"
    datasets: Names = "all"
    metrics: Names = "all"
    exclude: list[ExcludeRule] = Field(default_factory=list)


class SuiteFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[\w.-]+$")
    experiment: str | None = None
    tracking_uri: str | None = None
    seed: int = 0
    repeats: int = Field(1, ge=1)
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    cache_dir: str | None = None
    executor: dict[str, Any] | None = None  # {name: local|ray|slurm, ...its options}
    timeout: float | None = Field(None, gt=0)  # seconds per cell; a metric's `timeout` wins
    datasets: dict[str, dict[str, Any] | None]
    models: dict[str, dict[str, Any] | None]
    metrics: dict[str, dict[str, Any] | None]
    cells: list[CellBlock] = Field(default_factory=lambda: [CellBlock()])
    # numbers from papers to read the run against (shown beside ours; never ranked)
    published: list[PublishedBlock] = Field(default_factory=list)


# ---------------------------------------------------------------- the validated result
@dataclass
class Suite:
    path: Path
    text: str
    name: str
    experiment: str
    tracking_uri: str | None
    seed: int
    repeats: int
    device: str
    cache_dir: str | None
    executor: ExecutorConfig  # the `executor:` block, validated (default: local)
    timeout: float | None  # the suite's limit per cell, seconds (each Cell has its own)
    datasets: dict[str, Spec]
    models: dict[str, Spec]
    metrics: dict[str, Spec]
    cells: list[Cell]
    published: list[PublishedBlock] = field(default_factory=list)


def declared_pairs(suite: Suite) -> set[tuple[str, str]]:
    """The (dataset, model) pairs a suite declares: the rows its board shows. (Here, not in
    the runner: `bench leaderboard` needs it without importing torch.)"""
    return {(c.dataset.key, c.model.key) for c in suite.cells}


def cell_key(model: Spec, dataset: Spec, metric: Spec, seed: int) -> str:
    # names are part of the identity: two model names with the same options are two rows
    # (their generator work is still shared through the content-keyed caches), and a rename
    # shows the new name instead of resuming under the old one
    return stable_hash({
        "model_name": model.key, "dataset_name": dataset.key, "metric_name": metric.key,
        "model": model.resolved(), "dataset": dataset.resolved(), "metric": metric.resolved(),
        "metric_version": getattr(metric.cls, "version", "1"), "seed": seed,
    })


def _registries() -> dict[str, Registry]:
    from bench.data import DATASETS
    from bench.metrics import METRICS
    from bench.models import MODELS

    return {"datasets": DATASETS, "models": MODELS, "metrics": METRICS}


def _resolve_paths(opts_cls: type[Options], raw: dict[str, Any], base: Path) -> dict[str, Any]:
    """Relative file options are relative to the suite file, not to the working directory."""
    out = dict(raw)
    for name, f in opts_cls.model_fields.items():
        extra = f.json_schema_extra if isinstance(f.json_schema_extra, dict) else {}
        if extra.get("suite_folder") and out.get(name) is None:  # e.g. where a model's module is
            out[name] = str(base.resolve())
        ann = f.annotation
        is_path = ann is Path or (hasattr(ann, "__args__") and Path in getattr(ann, "__args__", ()))
        if is_path and isinstance(out.get(name), str) and not Path(out[name]).is_absolute():
            out[name] = str((base / out[name]).resolve())
    return out


def _parse_spec(section: str, key: str, raw: dict | None, reg: Registry, base: Path,
                problems: Problems, local: Mapping[str, type[Plugin]] | None = None) -> Spec | None:
    raw = dict(raw or {})
    path = (section, key)
    if "source" in raw and "name" in raw:
        problems.add(path, "give either `source` or `name`, not both.")
        return None
    explicit = "source" in raw or "name" in raw
    plugin = raw.pop("source", None) or raw.pop("name", None) or key
    if local and isinstance(plugin, str) and plugin in local:  # this suite's own plugin
        own = local[plugin]
        try:
            return Spec(section, key, plugin, own.Options(**raw), own)
        except ValidationError as e:
            _report_validation(problems, path, e, own.Options, f"{KIND_OF[section]} '{plugin}'", raw)
            return None
    if isinstance(plugin, str) and plugin not in reg and plugin in reg.failures():
        problems.add((*path, "source"), reg.explain(plugin))  # its module failed to import
        return None
    if not isinstance(plugin, str) or plugin not in reg:
        hint = did_you_mean(str(plugin), reg.names())
        how = "" if explicit else " Set `source:` to one of them."
        problems.add((*path, "source"), f"unknown {KIND_OF[section]} plugin '{plugin}'.{hint} "
                     f"Known: {', '.join(reg.names())}.{how}")
        return None
    cls = reg.get(plugin)
    raw = _resolve_paths(cls.Options, raw, base)
    try:
        opts = cls.Options(**raw)
    except ValidationError as e:
        _report_validation(problems, path, e, cls.Options, f"{KIND_OF[section]} '{plugin}'", raw)
        return None
    return Spec(section, key, plugin, opts, cls)


def _pop_timeout(raw: dict[str, Any] | None, key: str, default: float | None,
                 problems: Problems) -> tuple[dict[str, Any] | None, float | None]:
    """A metric entry's `timeout` (seconds its cells may run; the suite's `timeout` when it
    has none), taken out of the entry: it is not an option of the metric."""
    if not raw or "timeout" not in raw:
        return raw, default
    rest = {k: v for k, v in raw.items() if k != "timeout"}
    t = raw["timeout"]
    if t is None:
        return rest, default
    if isinstance(t, bool) or not isinstance(t, int | float) or t <= 0:
        problems.add(("metrics", key, "timeout"), f"seconds a cell of this metric may run, a "
                     f"number > 0 (got {t!r}).")
        return rest, default
    return rest, float(t)


def _parse_executor(raw: dict[str, Any] | None, problems: Problems) -> ExecutorConfig | None:
    try:
        return ExecutorConfig.parse(raw)
    except BenchError as e:  # unknown executor
        problems.add(("executor", "name"), str(e))
    except ValidationError as e:
        name = (raw or {}).get("name", "local")
        _report_validation(problems, ("executor",), e, EXECUTORS.get(name).Options,
                           f"executor '{name}'", raw)
    return None


def _select(names: Any, pool: dict[str, Any], path: tuple, problems: Problems) -> list[str]:
    if names == "all":
        return list(pool)
    out = []
    for i, n in enumerate(names):
        if n in pool:
            out.append(n)
        else:
            problems.add((*path, i), f"'{n}' is not defined in `{path[-1]}`.{did_you_mean(n, list(pool))} "
                         f"Defined: {', '.join(pool) or '(none)'}.")
    return out


def _check_names_and_code(sf: SuiteFile, specs: dict[str, dict[str, Spec]],
                          problems: Problems) -> None:
    """Names no file or terminal can show are refused (bench.core.safe_names; any other name is
    mapped where a file is named after it), and so is code a shared runner does not allow
    (bench.core.allowlist), before any later check imports or unpickles it: such a model is
    dropped from `specs`."""
    for section in SECTIONS:
        for key in getattr(sf, section):
            if why := name_problem(key):
                problems.add((section, key), f"the {KIND_OF[section]} name "
                             f"'{printable(key[:60])}{'...' * (len(key) > 60)}' {why}.")
    for key, spec in list(specs["models"].items()):
        try:
            spec.instance().check_allowed()
        except BenchError as e:
            problems.add(("models", key), str(e))
            del specs["models"][key]


def load_suite(path: str | Path, check_resources: bool = True) -> Suite:
    """Parse and validate a suite file. Raises BenchError listing every problem found."""
    path = Path(path)
    if path.is_dir():
        found = sorted(p.name for p in path.glob("*.y*ml"))[:3]
        raise BenchError(f"{path} is a directory, not a suite file. Pass the path of a YAML suite"
                         + (f" in it, e.g. {path / found[0]}." if found else ", e.g. suites/quickstart.yaml."))
    if not path.is_file():
        raise BenchError(f"suite file {path} not found. Pass the path of a YAML suite, "
                         "e.g. suites/quickstart.yaml.")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BenchError(f"{path}: not a text file (not UTF-8). A suite is a YAML file, e.g. "
                         "suites/quickstart.yaml.") from None
    return parse_suite(text, path, check_resources)


def parse_suite(text: str, path: str | Path, check_resources: bool = True,
                folder: Path | None = None) -> Suite:
    """Validate a suite given as YAML text (what `load_suite` read from `path`, or what
    `bench.run_suite` / `bench.evaluate` built in memory). `path` names it in messages;
    relative file options resolve against `folder` (default: the folder of `path`)."""
    path = Path(path)
    try:
        node = yaml.compose(text)
        growth = _alias_growth(node) if node is not None else 0
        if growth is None or growth > ALIAS_BUDGET:
            raise BenchError(f"{path}: its YAML aliases (*name) " + (
                "refer to a node from inside itself, which never ends" if growth is None else
                f"repeat more than {ALIAS_BUDGET:,} nodes") + "; a suite needs no such "
                "nesting. Write the repeated parts out, or use fewer nested anchors.")
        duplicates = _duplicate_keys(node) if node is not None else []
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise BenchError(f"{where}: not valid YAML: {getattr(e, 'problem', e)}. Fix the syntax.") from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise BenchError(f"{path}: nested too deeply for a suite (hundreds of levels of lists "
                         "or mappings). Flatten it.") from None
    if duplicates:
        raise BenchError("\n".join(
            f"{path}:{second}: {key}: defined twice (first at line {first}); YAML keeps only the "
            "last one silently. Rename or remove one." for key, first, second in duplicates))
    if not isinstance(data, dict):
        raise BenchError(f"{path}: a suite is a YAML mapping with name, datasets, models, metrics, cells.")
    return _validate(data, path, text, _line_map(node) if node is not None else {},
                     check_resources, folder)


def suite_from_dict(data: Mapping[str, Any], name: str = "<suite dict>", check_resources: bool = True,
                    folder: Path | None = None,
                    plugins: Mapping[str, Mapping[str, type[Plugin]]] | None = None) -> Suite:
    """Validate a suite given as a dict, with no YAML in between (bench.evaluate). Problems
    have no line (`Problem.line` None); `name` names the suite in messages. `plugins`:
    {section: {source name: plugin class}} known to this suite only, before the registries
    (the generator object of one bench.evaluate call); an option value may be any object."""
    return _validate(dict(data), Path(name), yaml.safe_dump(_plain(data), sort_keys=False), {},
                     check_resources, folder or Path.cwd(), plugins)


def _plain(x: Any) -> Any:
    """`x` with what YAML cannot write (a generator object) as its repr: the suite's text."""
    if isinstance(x, Mapping):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    return x if x is None or isinstance(x, str | int | float | bool) else repr(x)


def _validate(data: dict[str, Any], path: Path, text: str, lines: dict[tuple, int],
              check_resources: bool, folder: Path | None,
              plugins: Mapping[str, Mapping[str, type[Plugin]]] | None = None) -> Suite:
    problems = Problems(str(path), lines)
    try:
        sf = SuiteFile(**data)
    except ValidationError as e:
        _report_validation(problems, (), e, SuiteFile, "a suite", data)
        # keep validating the parts that are fine, so one run of `bench validate` shows all
        bad = {err["loc"][0] for err in e.errors() if err["loc"]}
        clean = {k: v for k, v in data.items() if k not in bad}
        try:
            sf = SuiteFile(**{"name": "invalid", "datasets": {}, "models": {}, "metrics": {}, **clean})
        except ValidationError:
            problems.raise_if_any()
            raise
    for name, msg in allowlist.suite_locations(data):
        problems.add((name,), msg)
    regs = _registries()
    base = (folder or path.parent).resolve()
    specs: dict[str, dict[str, Spec]] = {}
    timeouts: dict[str, float | None] = {}  # metric -> its cells' limit
    for section in SECTIONS:
        specs[section] = {}
        for key, raw in getattr(sf, section).items():
            if section == "metrics":
                raw, timeouts[key] = _pop_timeout(raw, key, sf.timeout, problems)
            spec = _parse_spec(section, key, raw, regs[section], base, problems,
                               (plugins or {}).get(section, {}))
            if spec is not None:
                specs[section][key] = spec
    _check_names_and_code(sf, specs, problems)
    for at, msg in check_blocks(sf.published, list(sf.datasets), list(sf.models),
                                declared_values([s.cls for s in specs["metrics"].values()])):
        problems.add(at, msg)
    executor = _parse_executor(sf.executor, problems)
    if sf.device.startswith("cuda") and check_resources:
        import torch

        if not torch.cuda.is_available():
            problems.add(("device",), f"'{sf.device}' requested but no CUDA device is available. "
                         "Use `device: auto` (GPU when present) or `cpu`.")

    # cells: blocks of models x datasets x metrics, minus exclusions, without duplicates
    triples: list[tuple[str, str, str]] = []
    block_of: dict[tuple[str, str, str], int] = {}  # the first `cells` block selecting each
    for i, block in enumerate(sf.cells):
        ms = _select(block.models, dict(sf.models), ("cells", i, "models"), problems)
        ds = _select(block.datasets, dict(sf.datasets), ("cells", i, "datasets"), problems)
        mt = _select(block.metrics, dict(sf.metrics), ("cells", i, "metrics"), problems)
        for j, rule in enumerate(block.exclude):
            for kind, pool in (("model", sf.models), ("dataset", sf.datasets), ("metric", sf.metrics)):
                v = getattr(rule, kind)
                if v is not None and v not in pool:
                    problems.add(("cells", i, "exclude", j, kind), f"'{v}' is not a defined {kind}."
                                 f"{did_you_mean(v, list(pool))}")
        for d in ds:
            for m in ms:
                for t in mt:
                    if any((r.model in (None, m)) and (r.dataset in (None, d)) and (r.metric in (None, t))
                           for r in block.exclude):
                        continue
                    if (m, d, t) not in triples:
                        triples.append((m, d, t))
                        block_of[(m, d, t)] = i
    if not triples and not problems.items:
        problems.add(("cells",), "selects no cells. Check the names and `exclude` rules.")
    for (m, d, t), msg in leaking_cells(specs["models"], specs["metrics"], triples):
        at = ("cells", block_of[(m, d, t)])  # the block's line; the model's without `cells:`
        problems.add(at if at in problems.lines else ("models", m), msg)
    for (m, d, t), msg in untrainable_cells(specs["models"], specs["metrics"], triples):
        at = ("cells", block_of[(m, d, t)])
        problems.add(at if at in problems.lines else ("metrics", t), msg)

    if check_resources:
        _check_resources(specs, triples, problems, executor)
    problems.raise_if_any()

    cells = []
    for m, d, t in triples:
        if m not in specs["models"] or d not in specs["datasets"] or t not in specs["metrics"]:
            continue
        for r in range(sf.repeats):
            seed = sf.seed + r
            mod, dat, met = specs["models"][m], specs["datasets"][d], specs["metrics"][t]
            cells.append(Cell(mod, dat, met, r, seed, cell_key(mod, dat, met, seed), timeouts[t]))
    return Suite(
        path=path, text=text, name=sf.name, experiment=sf.experiment or sf.name,
        tracking_uri=sf.tracking_uri, seed=sf.seed, repeats=sf.repeats, device=sf.device,
        cache_dir=str((base / sf.cache_dir).resolve()) if sf.cache_dir else None,
        executor=executor or ExecutorConfig.parse(None), timeout=sf.timeout,
        datasets=specs["datasets"], models=specs["models"],
        metrics=specs["metrics"], cells=cells, published=list(sf.published),
    )


def untrainable_cells(models: dict[str, Spec], metrics: dict[str, Spec],
                      triples: list[tuple[str, str, str]]) -> list[tuple[tuple[str, str, str], str]]:
    """((model, dataset, metric), message) for each cell whose metric, with its options,
    trains the model source itself (`Metric.trains_model`) on a source that cannot be
    trained (`ModelSource.trainable`). Reads only classes and options, like the leakage rule."""
    out = []
    why: dict[str, str | None] = {}
    for m, d, t in triples:
        if m not in models or t not in metrics or getattr(models[m].cls, "trainable", False):
            continue
        if t not in why:
            why[t] = metrics[t].instance().trains_model()
        if why[t]:
            out.append(((m, d, t), f"cell (model '{m}', dataset '{d}', metric '{t}'): {why[t]}, "
                        f"and model '{m}' ({models[m].plugin}) cannot be trained by the suite "
                        "(only trainable sources can: cgan, baseline). Exclude the pair "
                        f"(`exclude: [{{model: {m}, metric: {t}}}]`), or give it a metric entry "
                        "that uses the model as it is."))
    return out


def _check_resources(specs: dict[str, dict[str, Spec]], triples: list[tuple[str, str, str]],
                     problems: Problems, executor: ExecutorConfig | None = None) -> None:
    """Files exist, each model can produce images of the shape its datasets need, and no
    size option implies more memory than a cell can have."""
    infos = {}
    for key, spec in specs["datasets"].items():
        try:
            inst = spec.instance()
            inst.check()
            infos[key] = inst.describe()
        except BenchError as e:
            problems.add(("datasets", key), str(e))
    for key, spec in specs["metrics"].items():
        try:
            spec.instance().check()
        except BenchError as e:
            problems.add(("metrics", key), str(e))
    for m, _, t in triples:
        if (m in specs["models"] and t in specs["metrics"] and specs["metrics"][t].cls.needs_latent
                and not specs["models"][m].cls.has_latent):
            problems.add(("cells",), f"metric '{t}' needs a generator that exposes its latent input, "
                         f"and model '{m}' ({specs['models'][m].plugin}) does not. Exclude the pair: "
                         f"`exclude: [{{model: {m}, metric: {t}}}]`.")
    for (_, _, t), msg in unmapped_cells(specs, triples, infos):
        problems.add(("metrics", t, "space"), msg)
    checked = set()
    for m, d, _ in triples:
        if (m, d) in checked or m not in specs["models"] or d not in infos:
            continue
        checked.add((m, d))
        try:
            specs["models"][m].instance().check(infos[d])
        except BenchError as e:
            problems.add(("models", m), f"cannot be used with dataset '{d}': {e}")
    for (_, _, t), msg in unlabeled_cells(specs, triples, infos):
        problems.add(("metrics", t), msg)
    _check_memory(specs, triples, infos, problems, executor)


def unmapped_cells(specs: dict[str, dict[str, Spec]], triples: list[tuple[str, str, str]],
                   infos: dict[str, DataInfo]) -> list[tuple[tuple[str, str, str], str]]:
    """((model, dataset, metric), message) for each cell whose metric works in w
    (`Metric.needs_mapping`: `space: w`) on a model source whose generator has no mapping and
    synthesis network (`ModelSource.has_mapping` False; None, unknown before building, passes
    and the run says so)."""
    out = []
    why: dict[str, str | None] = {}
    has: dict[tuple[str, str], bool | None] = {}
    for m, d, t in triples:
        if m not in specs["models"] or t not in specs["metrics"] or d not in infos:
            continue
        if not specs["models"][m].cls.has_latent:
            continue  # refused already: no latent input at all
        if t not in why:
            why[t] = specs["metrics"][t].instance().needs_mapping()
        if not why[t]:
            continue
        if (m, d) not in has:
            try:
                has[(m, d)] = specs["models"][m].instance().has_mapping(infos[d])
            except BenchError:  # the model's own check reports it
                has[(m, d)] = None
        if has[(m, d)] is False:
            out.append(((m, d, t), f"cell (model '{m}', dataset '{d}', metric '{t}'): "
                        f"{specs['metrics'][t].plugin} needs a generator with a mapping and a "
                        f"synthesis network ({why[t]}), StyleGAN2-ADA style: a module with "
                        "`mapping(z, c) -> w` and `synthesis(w) -> image`; model "
                        f"'{m}' ({specs['models'][m].plugin}) has none. Set `space: z` in the "
                        f"metric's options, or exclude the pair: "
                        f"`exclude: [{{model: {m}, metric: {t}}}]`."))
    return out


def unlabeled_cells(specs: dict[str, dict[str, Spec]], triples: list[tuple[str, str, str]],
                    infos: dict[str, DataInfo]) -> list[tuple[tuple[str, str, str], str]]:
    """((model, dataset, metric), one-line message) for each cell whose metric needs class
    labels (`Metric.label_need`) on a dataset without labels (`DataInfo.labeled`) or a model
    whose images have none (`ModelSource.unconditional`): a flat folder, an npz without labels."""
    out = []
    need: dict[str, tuple[str | None, str | None]] = {}  # metric -> (the dataset's, the model's)
    source: dict[str, str | None] = {}
    told: set[tuple[str, str]] = set()  # (dataset, metric): data without labels, told once
    free: list[str] | None = None
    for m, d, t in triples:
        if m not in specs["models"] or t not in specs["metrics"] or d not in infos:
            continue
        if t not in need:
            metric = specs["metrics"][t].instance()
            need[t] = (metric.label_need(), metric.model_label_need())
        if not infos[d].labeled:
            why_need = need[t][0]
            if not why_need or (d, t) in told:
                continue
            told.add((d, t))
            why, pair = f"dataset '{d}' has none (no class sub-folders or labels)", f"dataset: {d}"
        else:
            why_need = need[t][1]
            if not why_need:
                continue
            if m not in source:
                source[m] = specs["models"][m].instance().unconditional()
            if not source[m]:
                continue
            why, pair = f"model '{m}' has none ({source[m]})", f"model: {m}"
        plugin = specs["metrics"][t].plugin
        free = label_free_metrics() if free is None else free
        # a label-free metric that needs labels only through its options: the fix is the option
        fix = ("" if plugin in free else
               f"Use label-free metrics ({', '.join(free)}), or exclude the pair: "
               f"`exclude: [{{{pair}, metric: {t}}}]`.")
        cell = f"model '{m}', " if infos[d].labeled else ""  # no labels: every model's cell
        out.append(((m, d, t), f"cell ({cell}dataset '{d}', metric '{t}'): {plugin} needs class "
                    f"labels ({why_need}), and {why}.{' ' + fix if fix else ''}"))
    return out


def label_free_metrics() -> list[str]:
    """The registered metrics that run without labels with their default options."""
    from bench.metrics import METRICS

    out = []
    for name, cls in METRICS.items():
        try:
            if not cls().label_need() and cls.values and not cls.needs_latent:
                out.append(name)
        except Exception:  # noqa: BLE001 - a metric that needs options: not listed
            continue
    return out


def _check_memory(specs: dict[str, dict[str, Spec]], triples: list[tuple[str, str, str]],
                  infos: dict[str, DataInfo], problems: Problems,
                  executor: ExecutorConfig | None) -> None:
    """Size options (`num_samples`...) whose generated images alone need more memory than a
    cell can have: refused with the numbers before anything runs (bench.config.memory)."""
    from bench.config.memory import Need, fmt_bytes, implied, memory_limit

    worst: dict[tuple[str, str], tuple[Need, str]] = {}  # (metric, option) -> its largest need
    for _, d, t in triples:
        if t not in specs["metrics"] or d not in infos:
            continue
        spec = specs["metrics"][t]
        for need in implied(spec.cls, spec.options, infos[d]):
            if (t, need.option) not in worst or need.total > worst[(t, need.option)][0].total:
                worst[(t, need.option)] = (need, d)
    limit = memory_limit(executor) if worst else None
    if limit is None:
        return
    cap, whose = limit
    for (t, opt), (need, d) in worst.items():
        if need.total <= cap:
            continue
        c, h, w = infos[d].image_shape
        feats = (f" + {need.features} features {fmt_bytes(need.feature_bytes)}"
                 if need.feature_bytes else "")
        field = type(specs["metrics"][t].options).model_fields.get(opt)
        unset = (" or leave it out (default: the real train split's size)"
                 if field is not None and field.default is None else "")
        fit, k = cap // need.per_image, infos[d].num_classes
        what = ""
        if opt == "per_class":
            what, fit = f"{need.count // k:,} per class x {k} classes = ", fit // k
        problems.add(("metrics", t, opt), f"{what}{need.count:,} generated images of {c}x{h}x{w} "
                     f"(dataset '{d}') need at least {fmt_bytes(need.total)} in memory "
                     f"(images {fmt_bytes(need.image_bytes)}{feats}), more than {whose}. Lower "
                     f"`{opt}` (up to about {fit:,} fits){unset}.")
