"""Output checks on every generated stream, before any metric sees it.

Two levels, one record per generator object (`checks_of`):

- float output, before the conversion to uint8 (`OutputChecks.floats`, fed by
  bench.models.torch_generator in `sample`): non-finite values raise a BenchError at once,
  one line, so the cell fails before any metric value exists; the values are counted
  against every known `output_range` to flag a declared range that does not fit.
- uint8 images (`StreamChecks`, fed by bench.infra.store where a model's stream is drawn, the one
  place every metric's generated images come from, so reference and samples generators are
  checked too): saturation and (near-)constant output.

`generator_output(out, n, labels, who)` comes first: what a generator's `forward` or `sample`
returned, as a tensor of exactly the n images asked for. A numpy array works like a tensor; an
`(images, labels)` pair works when its labels are the ones asked for; anything else, and
another number of images than asked, is one BenchError line saying what to return (before,
a tuple failed deep inside with `'tuple' object has no attribute 'detach'`, and 33 images
for 32 with a message about the images' shape).

`output_flags(generator)` is what the worker calls after a cell's metric ran. The flags of a
persisted stream are written beside it (`<stream>.flags.json`, `write_flags`) and come back
when the stream is loaded from the disk cache in a fresh process (`read_flags`); a stream
cached without them has its uint8-level checks recomputed on load.

Thresholds (module constants, documented where defined):

- output_range: a known range R "holds" the output when at most RANGE_OUTSIDE (1%) of the
  values lie beyond R by more than RANGE_TOL (1%) of R's width (tolerance for overshoot
  and float error, while one value in a hundred clipped already changes the images). The
  declared range is flagged when it does not hold the output, or when a narrower known range
  holds it and the values span at least RANGE_FILL (half) of that narrower range (a tanh
  output declared [0, 255]: 2 of 256 grey levels). The suggestion is the narrowest known
  range that holds the output and is filled that way.
- saturated: more than max(SATURATED, halfway between the real training images' share and
  1) of the pixel values at 0 or 255. Relative to the real images because some datasets
  are mostly background (digits: 58% of pixel values are 0, MNIST about 80%): a model as
  saturated as its data is not broken.
- constant: more than CONSTANT_SHARE (99%) of the pixels have a standard deviation across
  the images below CONSTANT_STD (1 grey level): every image is (nearly) the same.
"""

from __future__ import annotations

import json
import math
import weakref
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.core.errors import BenchError
from bench.infra.cache import atomic_write
from bench.record.flags import Flag, merge

RANGES: dict[str, tuple[float, float]] = {"[-1, 1]": (-1.0, 1.0), "[0, 1]": (0.0, 1.0),
                                          "[0, 255]": (0.0, 255.0)}
RANGE_TOL = 0.01  # of a range's width beyond either end: still inside it
RANGE_OUTSIDE = 0.01  # more values than this share beyond the tolerance: the range does not hold them
RANGE_FILL = 0.5  # a narrower range is suggested when the values span this share of its width
SATURATED = 0.5  # share of pixel values at 0 or 255 (at least; see real_saturation)
CONSTANT_STD = 1.0  # grey levels: a pixel "does not vary" across images below this std
CONSTANT_SHARE = 0.99  # share of such pixels that makes the output constant
REAL_IMAGES = 10_000  # real training images the saturation reference is measured on
SUB = 128  # images per pass of the per-pixel statistics (bounds the temporary memory)
ATTR = "_bench_output_checks"
FLAG_KINDS = ("output_range", "saturated", "constant")
FORMAT = 1  # of the .flags.json sidecar


# ---------------------------------------------------------------- what was returned
def _described(x: Any) -> str:
    shape = getattr(x, "shape", None)
    return f"{type(x).__name__} {tuple(shape)}" if shape is not None else type(x).__name__


def _label_indices(x: Any) -> torch.Tensor | None:
    """Labels a generator handed back, as int64 indices on the CPU (one-hot rows too)."""
    try:
        y = torch.as_tensor(np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x))
    except (TypeError, ValueError, RuntimeError):
        return None
    if y.ndim == 2:  # one-hot (or scores): the class of each row
        y = y.argmax(1)
    if y.ndim != 1 or (y.is_floating_point() and not torch.equal(y, y.round())):
        return None
    return y.long()


def generator_output(out: Any, n: int, labels: torch.Tensor | None, who: str) -> torch.Tensor:
    """What `who` (a generator's forward or sample) returned for `n` images, as a tensor:
    a tensor as it is, a numpy array of numbers as a tensor, a list of n image arrays stacked,
    an `(images, labels)` pair whose labels are `labels` (those it was asked for) as its
    images. Anything else, or another
    number of images than `n`, raises one BenchError line saying what to return."""
    want = f"return the images alone: a torch tensor or numpy array of {n} images (N, C, H, W)"
    if isinstance(out, tuple | list):
        ys = _label_indices(out[1]) if len(out) == 2 and labels is not None else None
        asked = labels.detach().cpu().long() if labels is not None else None
        if ys is not None and asked is not None and ys.shape == asked.shape and torch.equal(ys, asked):
            out = out[0]
        elif len(out) == n and all(getattr(x, "ndim", 0) >= 2 for x in out):  # one image each
            out = torch.stack([x.detach().cpu() if isinstance(x, torch.Tensor)
                               else torch.from_numpy(np.ascontiguousarray(x)) for x in out])
        else:
            parts = ", ".join(_described(x) for x in out[:4]) + (", ..." if len(out) > 4 else "")
            pair = (" (an (images, labels) pair is taken only when its labels are the ones it "
                    "was given)") if len(out) == 2 and labels is not None else ""
            raise BenchError(f"{who} returned a {type(out).__name__} of {len(out)} ({parts}); "
                             f"{want}{pair}.")
    if isinstance(out, np.ndarray):
        if not (np.issubdtype(out.dtype, np.number) or out.dtype == np.bool_):
            raise BenchError(f"{who} returned a numpy array of {out.dtype}; {want} of numbers.")
        out = torch.from_numpy(np.ascontiguousarray(out))
    if not isinstance(out, torch.Tensor):
        raise BenchError(f"{who} returned a {_described(out)}; {want}.")
    got = int(out.shape[0]) if out.ndim else 0
    if got != n:
        raise BenchError(f"{who} returned {got} images where {n} were asked for; it must return "
                         f"exactly one image per latent and label: ({n}, C, H, W).")
    return out


# ---------------------------------------------------------------- float output
class OutputChecks:
    """What a generator's float output looked like so far, and the flags of the streams
    drawn from it (`note`)."""

    def __init__(self, model: str | None = None):
        self.model = model  # named in messages when known
        self.images = 0  # float images checked
        self.values = 0
        self.lo = math.inf
        self.hi = -math.inf
        self.outside = dict.fromkeys(RANGES, 0)  # values beyond each known range (+ tolerance)
        self.declared: str | None = None
        self.stream_flags: list[Flag] = []

    def floats(self, x: torch.Tensor, output_range: str) -> None:
        """Check one batch of the module's output (N, ...), before conversion: raise on a
        non-finite value, count the values against every known range (one device sync)."""
        x = x.detach().float()
        if not x.numel():
            return
        n = int(x.shape[0]) if x.ndim else 1
        flat = x.reshape(n, -1)
        bad = ~torch.isfinite(flat).all(1)
        parts = [bad.sum(), bad.int().argmax(), flat.min(), flat.max()]
        for lo, hi in RANGES.values():
            tol = RANGE_TOL * (hi - lo)
            parts.append(((flat < lo - tol) | (flat > hi + tol)).sum())
        stats = torch.stack([p.double() for p in parts]).tolist()
        nbad, first = int(stats[0]), int(stats[1])
        if nbad:
            who = f"model '{self.model}'" if self.model else "the generator"
            raise BenchError(
                f"{who} returned non-finite values (NaN or inf) in {nbad} of the "
                f"{self.images + n} images checked (first bad image: index "
                f"{self.images + first}); no metric can use them. Check the module's "
                "forward (an overflow, a log or division by 0, half precision) and its weights, "
                "and that `output_range` matches its last layer.")
        self.declared = output_range
        self.images += n
        self.values += flat.numel()
        self.lo, self.hi = min(self.lo, stats[2]), max(self.hi, stats[3])
        for name, k in zip(RANGES, stats[4:], strict=True):
            self.outside[name] += int(k)

    def range_flags(self) -> list[Flag]:
        """`output_range` when the declared range does not fit what the module returned."""
        if not self.values or self.declared not in RANGES:
            return []
        decl = self.declared
        share = {r: self.outside[r] / self.values for r in RANGES}
        span = self.hi - self.lo

        def width(r: str) -> float:
            return RANGES[r][1] - RANGES[r][0]

        fits = [r for r in RANGES if share[r] <= RANGE_OUTSIDE]
        good = sorted((r for r in fits if span >= RANGE_FILL * width(r)), key=width)
        seen = f"observed {self.lo:.4g} .. {self.hi:.4g} over {self.images} images"
        hint = (f"it looks like \"{good[0]}\": set `output_range: \"{good[0]}\"`" if good else
                "no known range holds it: check the scale of the module's output (a missing "
                "tanh or sigmoid, a factor)")
        if decl not in fits:
            return [Flag("output_range",
                         f"{share[decl]:.1%} of the output values lie outside the declared "
                         f"output_range {decl} ({seen}) and are clipped; {hint}")]
        if good and good[0] != decl and width(good[0]) < width(decl):
            levels = 255 * span / width(decl)
            return [Flag("output_range",
                         f"the output spans only {span / width(decl):.1%} of the declared "
                         f"output_range {decl} ({seen}, about {levels:.0f} of 255 grey levels); "
                         f"{hint}")]
        return []

    def note(self, flags: Iterable[Flag]) -> None:
        """Keep the flags of a stream drawn from this generator (all streams: any flags it)."""
        self.stream_flags = merge(self.stream_flags, list(flags))

    def flags(self) -> list[Flag]:
        return merge(self.stream_flags, self.range_flags())


# The records of generators that take no attribute (__slots__), by id, for as long as the
# generator lives: a weak reference whose callback drops the entry, so the id is never
# another object's meanwhile. One that cannot be weakly referenced either is held.
_NO_ATTR: dict[int, tuple[Callable[[], Any], OutputChecks]] = {}


def _forget(key: int) -> Callable[[Any], object]:
    return lambda _ref: _NO_ATTR.pop(key, None)


def _held(generator: Any) -> Callable[[], Any]:
    return lambda: generator


def checks_of(generator: Any) -> OutputChecks:
    """The output record of a generator object (created on first use)."""
    c = getattr(generator, ATTR, None)
    if isinstance(c, OutputChecks):
        return c
    held = _NO_ATTR.get(id(generator))
    if held is not None and held[0]() is generator:
        return held[1]
    c = OutputChecks()
    try:
        setattr(generator, ATTR, c)
    except (AttributeError, TypeError):
        key = id(generator)
        try:
            ref: Callable[[], Any] = weakref.ref(generator, _forget(key))
        except TypeError:  # no __weakref__ slot: held, so its id is never reused
            ref = _held(generator)
        _NO_ATTR[key] = (ref, c)
    return c


def output_flags(generator: Any) -> list[Flag]:
    """The output flags of a generator: of its float output so far and of every stream of
    it the store drew or loaded (what the worker adds to a cell's record)."""
    return checks_of(generator).flags()


# ---------------------------------------------------------------- uint8 images
_REAL: dict[str, float] = {}


def real_saturation(dataset: Any) -> float:
    """Share of pixel values at 0 or 255 in (the first REAL_IMAGES of) the real training
    images, once per dataset digest; 0 for an object without them."""
    x = getattr(dataset, "train_x", None)
    if not isinstance(x, torch.Tensor) or x.dtype != torch.uint8 or not len(x):
        return 0.0
    key = str(getattr(dataset, "digest", id(dataset)))
    if key not in _REAL:
        m = min(len(x), REAL_IMAGES)
        ends = sum(int(((b == 0) | (b == 255)).sum()) for b in x[:m].split(1024))
        _REAL[key] = ends / (m * x[0].numel())
    return _REAL[key]


class StreamChecks:
    """Saturation and (near-)constancy of uint8 images (N, C, H, W), fed chunk by chunk:
    a count of end values and per-pixel mean / variance merged across chunks (Chan et al.),
    so memory is one image's worth of float64 whatever the stream's length."""

    def __init__(self, dataset: Any = None):
        self.real = real_saturation(dataset) if dataset is not None else 0.0
        self.n = 0
        self.values = 0
        self.ends = 0
        self.mean: torch.Tensor | None = None
        self.m2: torch.Tensor | None = None

    def feed(self, x: torch.Tensor) -> None:
        x = x.detach().cpu()
        self.values += x.numel()
        self.ends += int(((x == 0) | (x == 255)).sum())
        for b in x.reshape(len(x), -1).split(SUB):
            var, mean = torch.var_mean(b.float(), 0, correction=0)
            k, mean, m2 = len(b), mean.double(), var.double() * len(b)
            if self.mean is None or self.m2 is None:
                self.n, self.mean, self.m2 = k, mean, m2
                continue
            d = mean - self.mean
            tot = self.n + k
            self.mean = self.mean + d * (k / tot)
            self.m2 = self.m2 + m2 + d * d * (self.n * k / tot)
            self.n = tot

    def watch(self, rows: Iterator[tuple[int, torch.Tensor]]) -> Iterator[tuple[int, torch.Tensor]]:
        """Pass (start, images) rows through, feeding each."""
        for start, x in rows:
            self.feed(x)
            yield start, x

    def flags(self) -> list[Flag]:
        out = []
        limit = max(SATURATED, (1 + self.real) / 2)
        if self.values and self.ends / self.values > limit:
            out.append(Flag("saturated", f"{self.ends / self.values:.1%} of the pixel values are "
                            f"0 or 255 (real training images: {self.real:.1%}; flagged above "
                            f"{limit:.1%}) over {self.n} images: the output is pinned to the ends "
                            "of its range; check `output_range` and the module's last layer"))
        if self.n >= 2 and self.m2 is not None:
            std = (self.m2 / self.n).sqrt()
            flat = float((std < CONSTANT_STD).double().mean())
            if flat > CONSTANT_SHARE:
                out.append(Flag("constant", f"{flat:.1%} of the pixels vary by less than "
                                f"{CONSTANT_STD:g} grey level (std) across {self.n} images "
                                f"(largest per-pixel std {float(std.max()):.2f}): the images are "
                                "(nearly) all the same, whatever the latent and the label"))
        return out

    def finish(self, generators: Iterable[Any], earlier: list[Flag] | None = None) -> list[Flag]:
        """The flags of a stream just sampled: its uint8 checks, the float checks of the
        generator(s) that drew it, and the float-level flags of rows sampled before (a stream
        extended from the disk cache by a fresh process)."""
        floats = [f for g in generators for f in checks_of(g).range_flags()]
        kept = [f for f in earlier or [] if f.kind not in ("saturated", "constant")]
        return merge(self.flags(), floats, kept)


def check_images(images: torch.Tensor, dataset: Any = None, chunk: int = 1024) -> list[Flag]:
    """The uint8-level flags of a whole set of images, read chunk by chunk."""
    s = StreamChecks(dataset)
    for i in range(0, len(images), chunk):
        s.feed(images[i : i + chunk])
    return s.flags()


def note(generators: Iterable[Any], flags: list[Flag] | None) -> None:
    """Give a stream's flags to the generator object(s) it was drawn for."""
    for g in generators:
        checks_of(g).note(flags or [])


# ---------------------------------------------------------------- beside a cached stream
def flags_path(stream: Path) -> Path:
    return stream.with_name(stream.stem + ".flags.json")


def write_flags(stream: Path, flags: list[Flag]) -> None:
    """The flags of a persisted stream, beside it, written atomically."""
    text = json.dumps({"format": FORMAT, "flags": [f.to_json() for f in flags]}, sort_keys=True)
    atomic_write(flags_path(stream), lambda tmp: Path(tmp).write_text(text))


def read_flags(stream: Path) -> list[Flag] | None:
    """The flags written beside a persisted stream; None when missing or unreadable (the
    uint8-level checks are then recomputed from the images)."""
    try:
        d = json.loads(flags_path(stream).read_text())
        if d.get("format") != FORMAT:
            return None
        return [Flag.from_json(f) for f in d["flags"]]
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
