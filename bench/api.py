"""The Python API: score images against real data, or run a suite, without a YAML file.

    import bench
    res = bench.evaluate(real="data/real", fake="samples.npz", metrics=["fid", "kid"])
    res["fid"].value, res["fid"].lo, res["fid"].hi       # with its 95% interval
    print(res)                                            # a table of every value

    bench.run_suite({"name": "s", "datasets": ..., "models": ..., "metrics": ...})

`evaluate` is not a second implementation of the metrics: it builds what it was given as a
suite (the real images a dataset, the generated ones a model, one cell per metric; a
generator object carried in the model spec), runs that suite through the runner
(bench.run.runner.run_suite: the store, one sampling and one feature pass per model, the
on-disk cache of real features) into a suite log (bench.record.suite_log), and reads the
cell records back (bench.record.cell_record.CellRecord). So a value from `evaluate` or
`bench score` is the value a suite run on the same images gets, and the real side is
cached across calls like everywhere else. The log is this process's memory
(bench.record.memory: no store is created, nothing is left), unless `log=True` (or a
`tracking_uri`) asks for the runs to be kept in MLflow, boards included. The verdict
(flags, targets) is judged from the records when first read.

What `real` and `fake` may be: a folder of images (class sub-folders, or flat for data
without labels), an .npz file, an array or tensor of images (with labels as a tuple
`(images, labels)`), a `torch.utils.data.Dataset` of images or (image, label) pairs; `fake`
may also be a generator (a `bench.models.Generator`, an object with `sample(n, labels,
seed)`, or a function `f(n, labels, seed)`). Float arrays need their `range` declared.
Arrays are written once to the bench cache as content-addressed .npz files, so the same
arrays are the same dataset (and the same cached features) in every call.

Every real image is the reference (the train split) and also the val split, as in
torch-fidelity and clean-fid; metrics that compare with held-out real images
(`Metric.needs_held_out`: data copying, the classifier protocol) need `real_val`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import os
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field

from bench.core.errors import BenchError
from bench.core.registry import Options
from bench.models.base import BuildContext, Generator, ModelSource

if TYPE_CHECKING:
    import torch

    from bench.config.suite import Suite
    from bench.data.base import Dataset
    from bench.record.cell_record import CellRecord
    from bench.record.flags import Flag
    from bench.record.values import Measured, Value
    from bench.run.runner import SuiteReport

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"}
GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
OBJECT_SOURCE = "python_object"  # the model source of in-memory generators (only during a call)


class EvaluationFailed(BenchError):
    """A metric's cell failed (its error is in the message; with `log`, in its MLflow run)."""


# ---------------------------------------------------------------- results
@dataclass(frozen=True)
class Result:
    """One logged value: the number, its 95% interval (None where the metric gives none) and
    its declaration (role `score` / `diagnostic` / `reference`, ideal, aspect)."""

    metric: str  # the metric entry that logged it
    name: str
    value: float
    lo: float | None
    hi: float | None
    declaration: Value

    @property
    def role(self) -> str:
        return self.declaration.role

    @property
    def ideal(self) -> str:
        return self.declaration.ideal

    @property
    def aspect(self) -> str | None:
        return self.declaration.aspect

    def __float__(self) -> float:
        return self.value

    def interval(self) -> str:
        return "" if self.lo is None or self.hi is None else f"[{self.lo:.4g}, {self.hi:.4g}]"

    def __str__(self) -> str:
        """The value as the leaderboard prints it: the digits its interval supports, float
        noise around an exact 0 as 0 (an identical-set FID is 0, not -2.97e-05)."""
        from bench.report.leaderboard import fmt_value

        nan = math.nan
        lo, hi = (nan, nan) if self.lo is None or self.hi is None else (self.lo, self.hi)
        return fmt_value(self.value, lo=lo, hi=hi, u=(hi - lo) / 2)

    def to_json(self) -> dict[str, Any]:
        return {"metric": self.metric, "value": self.value, "lo": self.lo, "hi": self.hi,
                "declaration": self.declaration.to_json()}


@dataclass
class Evaluation(Mapping[str, Result]):
    """The values of `evaluate`, by value name (`fid`, `kid_mean`, ...), in the order of the
    metrics asked for, each metric's primary value first. `records` are the cell records as
    read back from the store; `tracking_uri`, `suite_run_id` and `run_ids` (per metric) say
    where they were logged (None: kept in memory only, gone after the call)."""

    results: dict[str, Result]
    records: list[CellRecord] = field(default_factory=list)
    tracking_uri: str | None = None
    experiment_id: str | None = None
    suite_run_id: str | None = None
    run_ids: dict[str, str] = field(default_factory=dict)
    log: str = ""  # the runner's console lines (shown with verbose=True)
    # the verdict, as the leaderboard gives it: the model's flags (output checks, a metric's
    # evidence, the gates), gates first; and per `target` value what it is compared with.
    # Given, or judged on first use by `judge` (the board's rules: a table build that a
    # caller who reads only values never pays for)
    given_flags: list[Flag] | None = field(default=None, repr=False)
    given_targets: dict[str, Target] | None = field(default=None, repr=False)
    judge: Callable[[], tuple[list[Flag], dict[str, Target]]] | None = field(
        default=None, repr=False, compare=False)

    def _judged(self) -> tuple[list[Flag], dict[str, Target]]:
        if self.given_flags is None or self.given_targets is None:
            self.given_flags, self.given_targets = self.judge() if self.judge else ([], {})
            self.judge = None
        return self.given_flags, self.given_targets

    @property
    def flags(self) -> list[Flag]:
        return self._judged()[0]

    @property
    def targets(self) -> dict[str, Target]:
        return self._judged()[1]

    @property
    def flagged(self) -> bool:
        """True when a gate flag fires: the leaderboard would place the model below every
        model that passes (bench.record.flags)."""
        return any(f.gate for f in self.flags)

    @property
    def verdict(self) -> str:
        """'pass', or the kinds of the gate flags that fire ('constant; copies')."""
        kinds = list(dict.fromkeys(f.kind for f in self.flags if f.gate))
        return "; ".join(kinds) if kinds else "pass"

    def verdict_lines(self) -> list[str]:
        """One line per flag with its reason (✗: a gate, ⚠: a warning on a value)."""
        if not self.flags:
            return ["verdict: pass (no output check, metric evidence or gate raised a flag)"]
        head = (f"verdict: ✗ flagged ({self.verdict}): a leaderboard places this model below "
                "every model that passes" if self.flagged else "verdict: pass, with warnings")
        return [head, *(f"  {'✗' if f.gate else '⚠'} {f.kind}" + (f" ({f.value})" if f.value else "")
                        + f": {f.reason}" for f in self.flags)]

    def __getitem__(self, name: str) -> Result:
        try:
            return self.results[name]
        except KeyError:
            from bench.core.registry import did_you_mean

            raise KeyError(f"no value '{name}'.{did_you_mean(name, list(self.results))} "
                           f"Values: {', '.join(self.results)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def as_dict(self) -> dict[str, float]:
        """{value name: number}."""
        return {k: r.value for k, r in self.results.items()}

    def to_json(self) -> dict[str, Any]:
        return {"values": {k: r.to_json() for k, r in self.results.items()},
                "verdict": self.verdict, "flags": [f.to_json() for f in self.flags],
                "targets": {k: {"value": t.value, "source": t.source}
                            for k, t in self.targets.items()},
                "tracking_uri": self.tracking_uri, "experiment_id": self.experiment_id,
                "suite_run_id": self.suite_run_id, "run_ids": self.run_ids}

    def table(self) -> str:
        """The values as a plain-text table: value [95% interval], what is better (a target
        value: the reference it is compared with, and that reference's value)."""
        rows = [("value", "[95% interval]", "")]
        for name, r in self.results.items():
            better = {"higher": "higher is better", "lower": "lower is better"}.get(r.ideal)
            if better is None:
                t = self.targets.get(name)
                if t is not None:
                    better = f"target: {t.source} {_fmt(t.value)}"
                elif r.declaration.ref:  # no held-out real images: nothing to compare with
                    better = "target: held-out real (not measured: pass real_val / --real-val)"
                else:
                    better = f"target {r.declaration.symbol.removeprefix('→')}"
            what = better if r.role == "score" else f"{r.role}, {better}"
            rows.append((name, str(r), what))
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                         for row in rows)

    def __str__(self) -> str:
        """The table, then the verdict with each flag's reason."""
        return self.table() + "\n\n" + "\n".join(self.verdict_lines())

    def __repr__(self) -> str:
        values = ", ".join(f"{k}={r}" for k, r in list(self.results.items())[:6])
        more = f", ... {len(self.results) - 6} more" if len(self.results) > 6 else ""
        return f"<Evaluation {values}{more}; verdict: {self.verdict}>"


@dataclass(frozen=True)
class Target:
    """What a `target` value is compared with: the held-out real images' value of the same
    metric (`held-out real`), another value of the same run (`real_val_acc`) or a number."""

    value: float
    source: str


def _fmt(x: float) -> str:
    from bench.report.leaderboard import fmt_value

    return fmt_value(x)


# ---------------------------------------------------------------- in-memory generators
class ObjectOptions(Options):
    ref: str = Field(description="this call's name of the generator (a cell key never reused)")
    # the user's object itself, carried in the model spec (never hashed into a key or logged)
    generator: Any = Field(None, exclude=True, description="the generator object or function")
    range: str | None = Field(None, description="value range of float outputs")


class _Adapter(Generator):
    """A user's generator object or function as a Generator: uint8 (n, C, H, W) torch
    tensors, float output mapped from the declared range."""

    def __init__(self, obj: Any, dataset: Dataset, declared: str | None):
        self.obj, self.declared = obj, declared
        self.image_shape = dataset.image_shape
        self.num_classes = dataset.num_classes
        self.latent_dim = getattr(obj, "latent_dim", None)

    def sample(self, n: int, labels: torch.Tensor, seed: int) -> torch.Tensor:
        import torch

        from bench.data._util import to_uint8
        from bench.infra.output_checks import generator_output

        fn = self.obj.sample if hasattr(self.obj, "sample") else self.obj
        who = "the generator's sample(n, labels, seed)" if fn is not self.obj else \
            "the generator function f(n, labels, seed)"
        # arrays and (images, the labels asked for) work; anything else: one line, what to return
        out = generator_output(fn(n, labels, seed), n, labels, who)
        if out.dtype == torch.uint8:
            return out
        arr = out.detach().cpu().numpy()
        return torch.from_numpy(to_uint8(arr, "the generator's output", self.declared))


class PythonObject(ModelSource[ObjectOptions]):
    """A generator object in this process (bench.evaluate's `fake`): its samples never
    persisted. Known to the one suite `evaluate` builds (`suite_from_dict(plugins=...)`),
    never registered in the models registry."""

    persist_samples = False  # one call's object: its samples are not the cache's to keep

    def fingerprint(self) -> dict[str, Any]:
        return {"object": self.options.ref}  # one call's object: never resumed, never shared

    def build(self, dataset: Dataset, ctx: BuildContext) -> Generator:
        obj = self.options.generator
        if obj is None:
            raise BenchError("fake: no generator object given.")
        if isinstance(obj, Generator) and self.options.range is None:
            return obj
        return _Adapter(obj, dataset, self.options.range)


def _is_generator(x: Any) -> bool:
    return isinstance(x, Generator) or hasattr(x, "sample") or (
        callable(x) and not _is_torch_dataset(x) and not isinstance(x, type))


def _is_torch_dataset(x: Any) -> bool:
    try:
        from torch.utils.data import Dataset as TorchDataset
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return isinstance(x, TorchDataset)


# ---------------------------------------------------------------- inputs -> suite entries
def _cache_root(cache_dir: str | os.PathLike | None) -> Path:
    from bench.infra.cache import Cache

    return Cache(cache_dir).root


def _arrays_from(x: Any, what: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(images, labels or None) from an array, a tensor, an (images, labels) tuple or a torch
    Dataset (of images, or of (image, label) pairs; PIL images, arrays or tensors)."""
    import torch

    def arr(v: Any) -> np.ndarray:
        if isinstance(v, torch.Tensor):
            return v.detach().cpu().numpy()
        return np.asarray(v)

    if isinstance(x, tuple) and len(x) == 2:
        images, given = arr(x[0]), arr(x[1])
        if given.ndim != 1 or len(given) != len(images) or not np.issubdtype(given.dtype, np.integer):
            raise BenchError(f"{what}: (images, labels) needs one integer label per image; got "
                             f"labels of {given.dtype} {given.shape} for {len(images)} images.")
        return images, given.astype(np.int64)
    if _is_torch_dataset(x):
        items = [x[i] for i in range(len(x))]
        if not items:
            raise BenchError(f"{what}: the torch Dataset is empty.")
        pairs = all(isinstance(it, tuple | list) and len(it) >= 2 for it in items)
        imgs = [arr(it[0] if pairs else it) for it in items]
        shapes = {a.shape for a in imgs}
        if len(shapes) > 1:
            raise BenchError(f"{what}: the Dataset's images differ in shape ({sorted(shapes)[:3]}); "
                             "resize them to one size (a transform) first.")
        labels: np.ndarray | None = None
        if pairs:
            ys = [it[1] for it in items]
            if all(np.ndim(arr(y)) == 0 and np.issubdtype(arr(y).dtype, np.integer) for y in ys):
                labels = np.asarray([int(arr(y)) for y in ys], np.int64)
        return np.stack(imgs), labels
    if isinstance(x, np.ndarray | torch.Tensor):
        return arr(x), None
    raise BenchError(f"{what}: expected a folder, an .npz file, an array or tensor of images, "
                     f"(images, labels), or a torch Dataset; got {type(x).__name__}.")


def _write_npz(images: np.ndarray, labels: np.ndarray | None, root: Path) -> Path:
    """The arrays as an .npz in the cache, named by their content: the same arrays are the
    same file (hence the same dataset digest and cached features) in every call."""
    h = hashlib.sha256()
    for a in (images, labels):
        if a is not None:
            a = np.ascontiguousarray(a)
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(a.data)
    path = root / "arrays" / f"{h.hexdigest()[:24]}.npz"
    if not path.is_file():
        from bench.infra.cache import atomic_write

        arrays = {"images": images} if labels is None else {"images": images, "labels": labels}
        atomic_write(path, lambda tmp: np.savez(tmp, **arrays))  # type: ignore[arg-type]
    return path


def _as_path(x: Any, what: str) -> Path | None:
    if not isinstance(x, str | os.PathLike):
        return None
    p = Path(x).expanduser().resolve()
    if not p.exists():
        raise BenchError(f"{what}: {x} does not exist. Pass a folder of images, an .npz file, "
                         "or the images themselves.")
    if p.is_file() and p.suffix != ".npz":
        raise BenchError(f"{what}: {x} is a {p.suffix or 'suffix-less'} file; pass a folder of "
                         "images or an .npz file (numpy.savez(path, images=..., labels=...)).")
    return p


def _first_image(folder: Path) -> Path | None:
    for f in sorted(folder.rglob("*")):
        if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file() and not f.name.startswith("."):
            return f
    return None


def _channels(folder: Path) -> int:
    """1 when the folder's images are grey (the first image's mode), else 3."""
    from PIL import Image

    f = _first_image(folder)
    if f is None:
        return 3  # the dataset's check names the empty folder
    with Image.open(f) as im:
        return 1 if im.mode in GREY_MODES else 3


def _count(path: Path) -> int | None:
    """How many images a samples folder or .npz holds (None: not known cheaply)."""
    if path.is_dir():
        return sum(1 for f in path.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES
                   and f.is_file() and not f.name.startswith("."))
    from bench.data._util import npz_header

    h = npz_header(path)
    return int(h["images"][0][0]) if "images" in h and h["images"][0] else None


def _float_array(path: Path) -> bool:
    """Whether an .npz's images are not uint8 (a declared range applies to it)."""
    from bench.data._util import npz_header

    h = npz_header(path)
    dt = next((h[k][1] for k in ("images", "train_images") if k in h), None)
    return dt is not None and np.dtype(dt) != np.uint8


def _check_range(path: Path | None, declared: str | None, what: str) -> None:
    """Float images of an .npz against their declared range, before any work: values outside
    it, or filling under 2% of it (images in [0, 1] declared "[0, 255]" would all be read as
    near black), are a wrong declaration; the cell would otherwise fail, or score black
    images, after the whole run."""
    from bench.data._util import COMMON_RANGES, range_bounds

    if path is None or declared is None or not path.is_file() or not _float_array(path):
        return
    lo, hi = range_bounds(declared)
    with np.load(path) as z:
        for key in ("images", "train_images", "val_images"):
            if key not in z.files or z[key].size == 0:
                continue
            x = z[key]
            if x.dtype.kind == "f" and not np.isfinite(x).all():
                continue  # to_uint8 names NaN and infinities
            mn, mx = float(x.min()), float(x.max())
            slack = (hi - lo) / 510
            outside = mn < lo - slack or mx > hi + slack
            if outside or (mx - mn) < 0.02 * (hi - lo):
                fit = next((r for r in (c.strip('"') for c in COMMON_RANGES)
                            if (b := range_bounds(r))[0] - slack <= mn and mx <= b[1] + slack
                            and r != declared), None)
                why = "outside" if outside else f"filling {(mx - mn) / (hi - lo):.1%} of"
                raise BenchError(f"{what}: {path.name} `{key}` holds values from {mn:.4g} to "
                                 f"{mx:.4g}, {why} the declared range {declared}"
                                 + (f"; declare --range \"{fit}\" (range=\"{fit}\")." if fit else
                                    ": declare the range the values are in."))


def _real_entry(real: Any, real_val: Any, root: Path, declared: str | None, layout: str,
                image_size: int | None) -> tuple[dict[str, Any], bool]:
    """The dataset entry of the real images, and whether it has a held-out split."""
    p, v = _as_path(real, "real"), _as_path(real_val, "real_val") if real_val is not None else None
    if p is None:
        p = _write_npz(*_arrays_from(real, "real"), root)
    if real_val is not None and v is None:
        v = _write_npz(*_arrays_from(real_val, "real_val"), root)
    if p.is_dir():
        if v is not None and not v.is_dir():
            raise BenchError("real is a folder and real_val is not: give both as folders, or both "
                             "as .npz files / arrays.")
        entry: dict[str, Any] = {"source": "image_folder", "root": str(p), "val": str(v or p),
                                 "channels": _channels(p)}
        if image_size is not None:
            entry["image_size"] = image_size
        return entry, v is not None
    if v is not None and v.is_dir():
        raise BenchError("real is an .npz file (or arrays) and real_val a folder: give both as "
                         "folders, or both as .npz files / arrays.")
    if image_size is not None:  # arrays are scored at their own size: say so, not ignore it
        raise BenchError("image_size (--image-size) resizes folder images only; real is an .npz "
                         "file (or arrays): resize the arrays, or drop --image-size.")
    from bench.data._util import npz_header

    own_split = "train_images" in npz_header(p)  # train_images and val_images: its own split
    if own_split and v is not None:
        raise BenchError(f"real: {p} has its own train and val split (train_images, val_images); "
                         "drop real_val.")
    entry = {"source": "npz", **({"path": str(p)} if own_split else {"train": str(p), "val": str(v or p)})}
    if layout != "auto":
        entry["layout"] = layout
    if declared is not None and (_float_array(p) or (v is not None and _float_array(v))):
        entry["range"] = declared
    return entry, own_split or v is not None


def _fake_entry(fake: Any, root: Path, declared: str | None, layout: str
                ) -> tuple[dict[str, Any], int | None]:
    """The model entry of the generated images (a generator object is carried in it) and how
    many there are (None: a generator)."""
    p = _as_path(fake, "fake")
    if p is None and _is_generator(fake) and not isinstance(fake, tuple | np.ndarray) \
            and not _is_torch_dataset(fake) and not _is_tensor(fake):
        return ({"source": OBJECT_SOURCE, "ref": uuid.uuid4().hex, "generator": fake,
                 **({"range": declared} if declared else {})}, None)
    if p is None:
        p = _write_npz(*_arrays_from(fake, "fake"), root)
    entry: dict[str, Any] = {"source": "samples", "path": str(p)}
    if p.is_file():
        if layout != "auto":
            entry["layout"] = layout
        if declared is not None and _float_array(p):
            entry["range"] = declared
    return entry, _count(p)


def _is_tensor(x: Any) -> bool:
    import torch

    return isinstance(x, torch.Tensor)


def _metric_entries(metrics: Sequence[str] | Mapping[str, Mapping[str, Any] | None],
                    features: str | Mapping[str, Any] | None, num_samples: int | None
                    ) -> dict[str, dict[str, Any]]:
    """The suite's `metrics:` section: each metric with `features` where it takes a feature
    extractor and `num_samples` where it takes a count of generated images (unless set)."""
    from bench.features.base import FeatureSpec
    from bench.metrics import METRICS

    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    items = (list(metrics.items()) if isinstance(metrics, Mapping)
             else [(m, None) for m in metrics])
    if not items:
        raise BenchError("no metrics given; e.g. metrics=[\"fid\", \"kid\"].")
    spec = {"name": features} if isinstance(features, str) else dict(features or {})
    out: dict[str, dict[str, Any]] = {}
    for name, opts in items:
        entry = dict(opts or {})
        plugin = entry.get("source", name)
        if plugin not in METRICS:
            raise BenchError(METRICS.explain(plugin))
        fields = METRICS.get(plugin).Options.model_fields
        f = fields.get("features")
        if spec and f is not None and f.annotation is FeatureSpec and "features" not in entry:
            entry["features"] = spec
        n = fields.get("num_samples")
        if (num_samples is not None and n is not None and n.default is None
                and "num_samples" not in entry):
            entry["num_samples"] = num_samples
        out[name] = entry
    return out


def evaluate(real: Any, fake: Any, metrics: Sequence[str] | Mapping[str, Mapping[str, Any] | None]
             = ("fid",), features: str | Mapping[str, Any] | None = "inception", *,
             real_val: Any = None, range: str | None = None, layout: str = "auto",
             num_samples: int | None = None, image_size: int | None = None, seed: int = 0,
             device: str = "auto", name: str = "fake", log: bool = False,
             tracking_uri: str | None = None, experiment: str = "bench-evaluate",
             cache_dir: str | os.PathLike | None = None, progress: bool = True,
             verbose: bool = False) -> Evaluation:
    """Score generated images (`fake`) against real ones with `metrics`.

    real, fake: a folder of images (class sub-folders, or flat: no labels), an .npz
        (`images`, optional `labels`), an array or tensor (N, H, W[, C]) or (N, C, H, W),
        an `(images, labels)` tuple or a torch Dataset; `fake` also a generator (an object
        with `sample(n, labels, seed)` or such a function), sampled `num_samples` times.
    metrics: names (`["fid", "kid"]`, or "fid,kid"), or {entry: {source: ..., options}}.
    features: the feature extractor of every metric that takes one: a name ("inception",
        the standard FID network; "timm") or its options ({"name": "timm", "model": ...}).
    real_val: held-out real images, for the metrics that need them (data_copying, the
        classifier protocol); without it every real image is the reference.
    range: value range of float arrays ("[0, 1]", "[-1, 1]", "[0, 255]"); layout: "nchw" or
        "nhwc" for 4-d arrays whose layout is ambiguous.
    num_samples: generated images per metric (default: every image of `fake`; for a
        generator, as many as the real images).
    progress: bars with an estimate of the time left, for steps over a few seconds, on a
        terminal only (never in logs or CI); False: none.
    log: keep the runs in MLflow (`tracking_uri`, else $MLFLOW_TRACKING_URI, else
        sqlite:///mlflow.db; experiment `experiment`, model name `name`); default: the
        runs stay in this process's memory. The bench cache (cache_dir, else $BENCH_CACHE_DIR or .bench_cache)
        keeps real features across calls either way.

    Raises BenchError for a mistake in the inputs (before any work), EvaluationFailed when a
    metric's cell fails.
    """
    from bench.data._util import parse_range

    try:
        declared = parse_range(range)
    except ValueError as e:
        raise BenchError(str(e)) from None
    if layout not in ("auto", "nchw", "nhwc"):
        raise BenchError(f"layout '{layout}': use auto, nchw or nhwc.")
    root = _cache_root(cache_dir)
    dataset, held_out = _real_entry(real, real_val, root, declared, layout, image_size)
    model, count = _fake_entry(fake, root, declared, layout)
    entries = _metric_entries(metrics, features, num_samples if num_samples is not None else count)
    suite = {"name": "evaluate", "experiment": experiment, "seed": seed, "device": device,
             "datasets": {"real": dataset}, "models": {name: model}, "metrics": entries}
    held = _held_out_row(suite, name, entries) if held_out else None
    for what, entry, key in (("real", dataset, "train"), ("real", dataset, "path"),
                             ("real_val", dataset, "val"), ("fake", model, "path")):
        if isinstance(entry.get(key), str) and entry.get("range"):
            _check_range(Path(entry[key]), entry["range"], what)
    parsed = _parse(suite, name)
    if not held_out:
        for key, spec in parsed.metrics.items():
            if spec.cls.needs_held_out:
                raise BenchError(f"metric '{key}' compares with held-out real images, and "
                                 "every real image is the reference here: pass real_val=... "
                                 "(`bench score --real-val PATH`), real images not in `real`.")
    run = _execute(parsed, tracking_uri=tracking_uri if (log or tracking_uri) else None,
                   keep=bool(log or tracking_uri), force=False, cache_dir=cache_dir,
                   progress=progress, verbose=verbose, boards=bool(log or tracking_uri))
    failed = [o for o in run.report.outcomes if o.status == "failed"]
    if failed:
        from bench.run.runner import user_message

        raise EvaluationFailed("\n".join(f"metric '{o.cell.metric.key}' failed: "
                                         f"{user_message(o.error)}" for o in failed))
    records = [r for r in run.records if r.model == name]
    results: dict[str, Result] = {}
    by_metric = {r.metric: r for r in records}
    for key in entries:
        rec = by_metric.get(key)
        if rec is None:
            continue
        for vname in _ordered(rec):
            m = rec.values[vname]
            if vname in results and results[vname].value == m.x:
                continue  # the same value from another metric (the near-copies check): once
            full = vname if vname not in results else f"{key}.{vname}"
            results[full] = Result(key, vname, m.x, _num(m.lo), _num(m.hi), _declaration(rec, vname))
    all_records = run.records
    return Evaluation(results, records, run.uri if run.keep else None,
                      run.report.experiment_id if run.keep else None,
                      run.report.parent_run_id if run.keep else None,
                      {r.metric: r.run_id for r in records} if run.keep else {}, run.log,
                      judge=lambda: _verdict(all_records, name, held, results))


def _held_out_row(suite: dict[str, Any], name: str, entries: dict[str, dict[str, Any]]
                  ) -> str | None:
    """With held-out real images and a metric whose value is judged against them (`→ref`:
    authenticity, data copying, GAN-test), the held-out real images as a second model, as a
    suite's target row: its values are what the generated images are compared with, and the
    board's gates (copies) read them. Only those metrics run on it. Returns its name."""
    from bench.metrics import METRICS

    ref_metrics = [k for k, e in entries.items()
                   if any(v.ref for v in METRICS.get(e.get("source", k)).values.values())]
    if not ref_metrics:
        return None
    held = "held_out" if name != "held_out" else "held_out_real"
    suite["models"][held] = {"source": "reference", "kind": "real", "split": "val"}
    suite["cells"] = [{"models": [name], "datasets": "all", "metrics": "all"},
                      {"models": [held], "datasets": "all", "metrics": ref_metrics}]
    return held


def _verdict(records: list[CellRecord], name: str, held: str | None,
             results: dict[str, Result]) -> tuple[list[Flag], dict[str, Target]]:
    """The model's flags (its cells' own, and the gates the board reads against the held-out
    row), gates first, and what each target value is compared with: the leaderboard's rules
    (bench.report.leaderboard), on this call's records."""
    from bench.record.cell_record import frame
    from bench.report.leaderboard import build_leaderboard

    tables = build_leaderboard(frame(records))
    flags = sorted((f for t in tables for f in t.flags.get(name, [])), key=lambda f: not f.gate)
    targets: dict[str, Target] = {}
    for full, r in results.items():
        for t in tables:
            src = t.target_source.get(r.name)
            if src is None or name not in t.targets.index or r.name not in t.targets.columns:
                continue
            x = float(t.targets.at[name, r.name])
            if not math.isnan(x):
                targets[full] = Target(x, "held-out real" if src == "ref" else src)
    return flags, targets


def _num(v: float | None) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _declaration(rec: CellRecord, name: str) -> Value:
    from bench.record.values import lookup

    return lookup(rec.declarations, name)


def _ordered(rec: CellRecord) -> list[str]:
    """A record's values without interval companions: its primary first, then by name."""
    from bench.record.values import is_interval

    names = sorted(k for k in rec.values if not is_interval(k))
    return sorted(names, key=lambda k: k != rec.primary)


# ---------------------------------------------------------------- running a suite
@dataclass
class SuiteRun:
    """What `run_suite` returns: the runner's report (outcomes, leaderboard, summary), the
    records of its cells, where they are (`memory`: this process only, gone), its console lines."""

    report: SuiteReport
    records: list[CellRecord]
    uri: str
    keep: bool
    log: str = ""

    @property
    def ok(self) -> bool:
        return self.report.ok

    @property
    def leaderboard(self) -> str:
        return self.report.leaderboard

    def frame(self) -> Any:
        """The records as the table reports read (bench.record.cell_record.frame)."""
        from bench.record.cell_record import frame

        return frame(self.records)

    def values(self) -> dict[str, dict[str, Measured]]:
        """{cell label: {value: its number, interval and bound}} (bench.record.values.Measured)."""
        labels = {o.run_id: o.cell.label for o in self.report.outcomes}
        return {labels.get(r.run_id, r.run_id): dict(r.values) for r in self.records}

    def __str__(self) -> str:
        """The leaderboard (with the verdicts and their reasons under it) and the cell counts."""
        return f"{self.report.leaderboard}\n{self.report.summary().splitlines()[0]}"

    def __repr__(self) -> str:
        r = self.report
        where = self.uri if self.keep else "in memory, gone"
        return (f"<SuiteRun '{r.suite.name}': {r.count('finished')} finished, {r.count('cached')} "
                f"cached, {r.count('failed')} failed; {len(self.records)} records; {where}>")


def run_suite(suite: Mapping[str, Any] | str | os.PathLike, *, tracking_uri: str | None = None,
              log: bool = True, force: bool = False, cache_dir: str | os.PathLike | None = None,
              progress: bool = False, verbose: bool = True, check_resources: bool = True) -> SuiteRun:
    """Validate and run a suite given as a dict, a YAML string or a YAML file's path, as
    `bench run` does, and return its report and cell records. Relative paths in a dict or
    string resolve against the working directory. `log=False`: the runs stay in this process's
    memory (bench.record.memory; the markdown board, no HTML page or figures)."""
    from bench.config.suite import load_suite, parse_suite

    if isinstance(suite, Mapping):
        import yaml

        parsed = parse_suite(yaml.safe_dump(dict(suite), sort_keys=False), "<suite dict>",
                             check_resources, folder=Path.cwd())
    elif isinstance(suite, str) and ("\n" in suite or ":" in suite and not Path(suite).is_file()):
        parsed = parse_suite(suite, "<suite string>", check_resources, folder=Path.cwd())
    else:
        parsed = load_suite(Path(suite), check_resources)
    return _execute(parsed, tracking_uri=tracking_uri if log else None, keep=log, force=force,
                    cache_dir=cache_dir, progress=progress, verbose=verbose)


def _parse(suite: dict[str, Any], name: str) -> Suite:
    """The in-memory suite of `evaluate`, validated from the dict (no YAML in between; its
    generator object, if any, carried in the model entry); its problems are told in the
    caller's words (real, fake, metric 'kid'), not as keys of a suite file nobody wrote."""
    from bench.config.suite import SuiteError, suite_from_dict

    try:
        return suite_from_dict(suite, "<bench.evaluate>", folder=Path.cwd(),
                               plugins={"models": {OBJECT_SOURCE: PythonObject}})
    except SuiteError as e:
        raise BenchError("\n".join(_in_callers_words(p.path, p.message, name)
                                   for p in e.problems)) from None


def _in_callers_words(path: tuple, msg: str, name: str) -> str:
    """One suite problem as `evaluate`'s caller knows the things: real, fake, metric 'kid';
    without the suite's remedies (naming a cell, excluding a pair)."""
    section = path[0] if path else ""
    who = {"datasets": "real", "models": "fake",
           "metrics": f"metric '{path[1]}'" if len(path) > 1 else "metrics"
           }.get(section, ".".join(str(p) for p in path) or "(top level)")
    msg = msg.removeprefix("cannot be used with dataset 'real': ")
    if msg.startswith("cell (") and "): " in msg:  # the metric is named already
        msg = msg.split("): ", 1)[1]
    msg = msg.replace("give it `features: {name: inception}`",  # the suite's option, as called
                      'give it features="inception" (`bench score --features inception`)')
    head, sep, _ = msg.rpartition(", or exclude the pair: `")
    if sep:  # a suite's remedy: the caller has no pairs to exclude
        msg = head + "."
    return f"{who}: {msg}".replace(f"model '{name}'", "fake").replace("dataset 'real'", "real")


def _execute(suite: Suite, tracking_uri: str | None, keep: bool, force: bool,
             cache_dir: str | os.PathLike | None, progress: bool, verbose: bool,
             boards: bool = True) -> SuiteRun:
    """Run a validated suite through the runner, into the MLflow store at `tracking_uri`
    (`keep`) or into this process's memory (bench.record.memory: nothing to create, nothing
    left behind), and read its records back. Touches no environment variable, logger or
    registry of the caller's process."""
    from bench.run.runner import run_suite as run

    log = None
    if keep:
        from bench.record.tracking import resolve_uri

        uri = resolve_uri(tracking_uri, suite.tracking_uri)
    else:
        from bench.record.memory import MemoryLog

        log, uri = MemoryLog(), MemoryLog.uri
        limited = [c.label for c in suite.cells if c.timeout]
        if limited:  # a limit needs a worker process, which cannot reach this process's memory
            raise BenchError(f"cell {limited[0]} has a `timeout`, which runs it in a worker "
                             "process; drop the timeout, or log the runs (log=True).")
    with contextlib.ExitStack() as stack:
        if keep and not verbose:  # MLflow reads it per upload: no progress bars for artifacts
            stack.enter_context(_environment({"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}))
        out = io.StringIO()
        if not verbose:
            stack.enter_context(contextlib.redirect_stdout(out))
        # the run's datasets, generators and store belong to its executor: gone with it
        report = run(suite, tracking_uri=uri, force=force, progress=progress,
                     cache_dir=str(cache_dir) if cache_dir is not None else None,
                     log=log, boards=boards)
        if report.interrupted:
            raise KeyboardInterrupt
        ids = [o.run_id for o in report.outcomes if o.run_id]
        if log is not None:
            records = log.records(ids)
        else:
            from bench.record.tracking import Tracker

            tracker = Tracker(uri, experiment_id=report.experiment_id)
            records = tracker.records(run_ids=ids, failed=True) if ids else []
        return SuiteRun(report, records, uri, keep, out.getvalue())


@contextlib.contextmanager
def _environment(values: dict[str, str | None]) -> Iterator[None]:
    before = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, old in before.items():
            if old is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = old


__all__ = ["Evaluation", "EvaluationFailed", "Result", "SuiteRun", "evaluate", "run_suite"]
