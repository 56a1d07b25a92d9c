"""Speed of the one classifier training loop, and what cache sharing saves in a suite.

    python benchmarks/classifier_throughput.py                 # everything, CPU or CUDA
    python benchmarks/classifier_throughput.py --quick         # smaller sizes, smoke test
    python benchmarks/classifier_throughput.py --threads 1     # pin torch intra-op threads
    python benchmarks/classifier_throughput.py --only fast --threads 1   # section 5 alone

Prints:
1. training images/second of `train_classifier` (small_cnn on 1x8x8, the CIFAR ResNet-20
   on 3x32x32 synthetic images); on CUDA with bf16 autocast and channels_last, as the
   loop does there;
2. on CUDA (or with --gan-train-size on any device): wall time of GAN-train on a
   50,000-image 32x32 10-class synthetic set with the CIFAR ResNet (train + evaluate);
3. time to train a real classifier on digits to its plateau: the fewest epochs whose
   accuracy on a held-out 10% slice of the *training* split (seeded, stratified) is within
   --plateau-tol of the best over the epoch grid. The val split, on which every metric
   reports, is not looked at (bench.classifiers.selection);
4. cost sharing: a suite of K=3 reference models x (gan_train, gan_test, gan_train_curve)
   through the real runner: wall time of the first model's cells (which pay for the real
   classifier and the real curve) and of each further model's cells;
5. the fast default at 32x32 (airbench, bench.classifiers.airbench) against the CIFAR
   ResNet-20 and timm's ResNet-18, each with its own recipe (airbench: batch 1,024, SGD;
   the others: batch 128, AdamW): training images/second and the seconds a 50,000-image
   training takes at a fixed epoch budget (--fast-epochs, 10) and at each recipe's default
   (airbench 10, the others 30). On CUDA it trains on 50,000 synthetic images; on the CPU
   on a few hundred to a thousand and extrapolates (the printout says which). Then the
   accuracy on the digits upsampled to 3x32x32 (8x8 grey -> bilinear -> RGB) after
   --digits-epochs epochs, so the recipe is shown to learn (the ResNet-18 there only on
   CUDA or with --digits-resnet18: minutes per epoch on one CPU core).

Every figure is one timed run after a warm-up training (first-call oneDNN/CUDA
initialisation excluded). Load from other processes distorts CPU timings: the load
average is printed at start and end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import subprocess
import tempfile
import textwrap
import time
from collections import defaultdict
from pathlib import Path

import torch

from bench.classifiers.selection import epochs_to_plateau
from bench.classifiers.train import ClassifierConfig, evaluate, train_classifier
from bench.data.digits import Digits


def _machine(device: torch.device) -> str:
    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name"):
                cpu = line.split(":", 1)[1].strip()
    gpu = torch.cuda.get_device_name(0) if device.type == "cuda" else "none"
    return (f"nproc={os.cpu_count()}  cpu={cpu}  torch={torch.__version__} "
            f"(threads={torch.get_num_threads()})  device={device}  gpu={gpu}")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _synthetic(n: int, shape: tuple[int, int, int], classes: int, seed: int
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images with a class-dependent mean, so the classifier has something to learn."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=g)
    base = torch.randint(0, 256, (classes, *shape), generator=g).float()
    noise = torch.randn((n, *shape), generator=g) * 60
    return (base[y] * 0.5 + 64 + noise).clamp(0, 255).to(torch.uint8), y


def _train(cfg: ClassifierConfig, x: torch.Tensor, y: torch.Tensor, classes: int,
           device: torch.device):
    _sync(device)
    t0 = time.perf_counter()
    clf = train_classifier(cfg, x, y, classes, device, seed=0, progress=False)
    _sync(device)
    return clf, time.perf_counter() - t0


def throughput(device: torch.device, quick: bool) -> None:
    print("\n## 1. training throughput (images/second, optimizer steps included)")
    cuda = device.type == "cuda"
    cases = [
        ("small_cnn", (1, 8, 8), 20_000 if cuda else 5_000, 512 if cuda else 128),
        ("resnet20", (3, 32, 32), 50_000 if cuda else (1_000 if quick else 4_000), 512 if cuda else 128),
    ]
    for name, shape, n, bs in cases:
        x, y = _synthetic(n, shape, 10, 0)
        epochs = 2 if quick else 3
        cfg = ClassifierConfig(name=name, epochs=epochs, batch_size=bs)
        _train(cfg.model_copy(update={"epochs": 1}), x[: bs * 4], y[: bs * 4], 10, device)  # warm-up
        _, sec = _train(cfg, x, y, 10, device)
        print(f"  {name:10s} {shape}  N={n} bs={bs} epochs={epochs}: {sec:7.2f}s  "
              f"{epochs * n / sec:10,.0f} img/s")


def gan_train_wall(device: torch.device, n: int, epochs: int) -> None:
    print(f"\n## 2. GAN-train wall time: resnet20 on {n:,} synthetic 3x32x32 images, "
          f"{epochs} epochs, + evaluation on 10,000")
    x, y = _synthetic(n, (3, 32, 32), 10, 1)
    vx, vy = _synthetic(10_000, (3, 32, 32), 10, 2)
    cfg = ClassifierConfig(name="resnet20", epochs=epochs, batch_size=512 if device.type == "cuda" else 128)
    _train(cfg.model_copy(update={"epochs": 1}), x[:2048], y[:2048], 10, device)  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    clf = train_classifier(cfg, x, y, 10, device, seed=0, progress=False)
    acc = evaluate(clf, vx, vy, device).accuracy
    _sync(device)
    sec = time.perf_counter() - t0
    print(f"  wall {sec:.1f}s  ({epochs * n / sec:,.0f} train img/s), synthetic val acc {acc:.3f}")


def plateau(device: torch.device, quick: bool, tol: float) -> None:
    print(f"\n## 3. real classifier on digits: epochs to plateau (within {tol} of the best "
          "accuracy on a held-out 10% of the train split; val is not used)")
    ds = Digits().load()
    grid = [1, 2, 4, 6, 8, 10, 15, 20] if quick else [1, 2, 3, 4, 6, 8, 10, 15, 20, 30, 40]
    _train(ClassifierConfig(epochs=1), ds.train_x[:256], ds.train_y[:256], 10, device)  # warm-up
    ep, trials = epochs_to_plateau(
        ClassifierConfig(), ds.train_x, ds.train_y, 10, device, grid, tol=tol, fraction=0.1,
        seed=0, on_trial=lambda t: print(f"  epochs={t.epochs:3d}  {t.seconds:6.2f}s  "
                                         f"held-out train acc {t.accuracy:.4f}", flush=True))
    chosen = next(t for t in trials if t.epochs == ep)
    best = max(t.accuracy for t in trials)
    print(f"  plateau: {ep} epochs, {chosen.seconds:.2f}s to train (on 90% of train), held-out "
          f"train acc {chosen.accuracy:.4f} (best {best:.4f})")


SUITE = """\
name: throughput-sharing
seed: 0
device: {device}
datasets:
  digits: {{source: digits}}
models:
  real: {{source: reference, kind: real}}
  noise: {{source: reference, kind: noise}}
  dropped: {{source: reference, kind: mode_drop}}
metrics:
  gan_train:
    classifier: {{epochs: {epochs}}}
  gan_test:
    classifier: {{epochs: {epochs}}}
  gan_train_curve:
    classifier: {{epochs: {epochs}}}
"""


def cost_sharing(device: torch.device, epochs: int) -> None:
    from bench.config.suite import load_suite
    from bench.run.runner import run_suite

    print(f"\n## 4. cost sharing: K=3 models x (gan_train, gan_test, gan_train_curve), "
          f"digits, {epochs} epochs")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "suite.yaml"
        path.write_text(textwrap.dedent(SUITE.format(device=device.type, epochs=epochs)))
        t0 = time.perf_counter()
        with open(os.devnull, "w") as null, contextlib.redirect_stderr(null), \
                contextlib.redirect_stdout(null):  # the runner's own log; summarised below
            report = run_suite(load_suite(path), tracking_uri=f"sqlite:///{tmp}/mlflow.db",
                               progress=False, cache_dir=f"{tmp}/cache")
        total = time.perf_counter() - t0
    per_model: dict[str, float] = defaultdict(float)
    for o in report.outcomes:
        per_model[o.cell.model.key] += o.seconds
        why = f"  {o.error.strip().splitlines()[-1]}" if o.error else ""
        print(f"  {o.cell.model.key:8s} {o.cell.metric.key:16s} {o.seconds:6.2f}s  {o.status}{why}")
    if not report.ok:
        raise SystemExit("cost sharing: some cells failed (see above); the figures are not valid")
    first, *rest = list(per_model.items())
    print(f"  first model ({first[0]}): {first[1]:.2f}s of cells; further models: "
          + ", ".join(f"{k} {v:.2f}s" for k, v in rest)
          + f"; suite wall {total:.1f}s (MLflow logging included)")


def _digits_rgb32() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The digits as uint8 3x32x32: 8x8 grey upsampled bilinearly, copied into R, G and B."""
    import torch.nn.functional as F

    ds = Digits().load()

    def up(x: torch.Tensor) -> torch.Tensor:
        big = F.interpolate(x.float(), size=32, mode="bilinear", align_corners=False)
        return big.round().clamp(0, 255).to(torch.uint8).repeat(1, 3, 1, 1)

    return up(ds.train_x), ds.train_y, up(ds.val_x), ds.val_y


FAST = ["airbench", "resnet20", "resnet18"]


def fast_default(device: torch.device, quick: bool, epochs: int, digits_epochs: int,
                 digits_resnet18: bool) -> None:
    from bench.classifiers import CLASSIFIERS
    from bench.classifiers.airbench import RECIPE as AIRBENCH
    from bench.classifiers.base import GENERIC_RECIPE as GENERIC

    cuda = device.type == "cuda"
    print(f"\n## 5. fast default at 3x32x32: {', '.join(FAST)}, each with its own recipe")
    sizes = {"airbench": 50_000, "resnet20": 50_000, "resnet18": 50_000} if cuda else \
        {"airbench": 1024, "resnet20": 1024, "resnet18": 256}
    if quick and not cuda:
        sizes = {k: v // 4 for k, v in sizes.items()}
    where = "measured over 1 epoch" if cuda else "extrapolated from 1 epoch on the N images"
    rate = {}
    for name in FAST:
        n = sizes[name]
        x, y = _synthetic(n, (3, 32, 32), 10, 0)
        cfg = ClassifierConfig(name=name, epochs=1)
        s = cfg.settings((3, 32, 32))
        warm = min(n, 256)
        _train(cfg.model_copy(update={"batch_size": min(s.batch_size, warm)}), x[:warm], y[:warm],
               10, device)  # warm-up (oneDNN / cuDNN kernels)
        _, sec = _train(cfg, x, y, 10, device)
        rate[name] = n / sec
        default = CLASSIFIERS.get(name).recipe["epochs"]
        print(f"  {name:9s} N={n:6,d} bs={min(s.batch_size, n):4d} {s.optimizer:5s}: {sec:7.2f}s "
              f"{rate[name]:9,.0f} img/s | 50k x {epochs} ep: {epochs * 50_000 / rate[name]:8,.0f}s"
              f" | 50k x {default} ep (its default): {default * 50_000 / rate[name]:8,.0f}s", flush=True)
    print(f"  (seconds per 50,000-image training: {where})")
    for other in FAST[1:]:
        fixed = rate["airbench"] / rate[other]  # = other's seconds / airbench's at equal epochs
        defaults = fixed * GENERIC["epochs"] / AIRBENCH["epochs"]
        print(f"  speed-up of airbench over {other} ({other}'s seconds / airbench's): "
              f"{fixed:.2f}x at {epochs} epochs each, {defaults:.2f}x at the default epochs "
              f"({AIRBENCH['epochs']} vs {GENERIC['epochs']})")

    tx, ty, vx, vy = _digits_rgb32()
    names = FAST if cuda or digits_resnet18 else FAST[:2]
    print(f"\n   digits upsampled to 3x32x32 ({len(ty)} train, {len(vy)} val images), "
          f"{digits_epochs} epochs each, default recipes (airbench: tta 2)")
    accs = {}
    for name in names:
        cfg = ClassifierConfig(name=name, epochs=digits_epochs)
        clf, sec = _train(cfg, tx, ty, 10, device)
        accs[name] = evaluate(clf, vx, vy, device).accuracy
        print(f"  {name:9s} train {sec:6.1f}s  val acc {accs[name]:.4f}", flush=True)
    if "resnet18" not in names:
        print("  resnet18  skipped on the CPU (pass --digits-resnet18)")
    print("  accuracy ratio airbench / " + ", ".join(
        f"{k}: {accs['airbench'] / v:.3f}" for k, v in accs.items() if k != "airbench"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (smoke test)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--gan-train-size", type=int, default=None,
                        help="images of the GAN-train timing (default: 50,000 on CUDA, skipped on CPU)")
    parser.add_argument("--gan-train-epochs", type=int, default=30)
    parser.add_argument("--plateau-tol", type=float, default=0.005)
    parser.add_argument("--suite-epochs", type=int, default=20)
    parser.add_argument("--only", choices=["all", "fast"], default="all",
                        help="fast: section 5 alone (the fast default at 32x32)")
    parser.add_argument("--fast-epochs", type=int, default=10,
                        help="section 5: the fixed epoch budget of the 50,000-image figures")
    parser.add_argument("--digits-epochs", type=int, default=10,
                        help="section 5: epochs of the upsampled-digits accuracy")
    parser.add_argument("--digits-resnet18", action="store_true",
                        help="section 5: train resnet18 on the upsampled digits on the CPU too")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    name = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    print(_machine(device))
    print(f"loadavg at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    if args.only == "fast":
        fast_default(device, args.quick, args.fast_epochs, args.digits_epochs, args.digits_resnet18)
        print(f"\nloadavg at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        return
    throughput(device, args.quick)
    n = args.gan_train_size if args.gan_train_size is not None else (50_000 if device.type == "cuda" else 0)
    if n:
        gan_train_wall(device, n, args.gan_train_epochs)
    else:
        print("\n## 2. GAN-train on 50,000 32x32 images: skipped on CPU (pass --gan-train-size)")
    plateau(device, args.quick, args.plateau_tol)
    cost_sharing(device, args.suite_epochs)
    fast_default(device, args.quick, args.fast_epochs, args.digits_epochs, args.digits_resnet18)
    print(f"\nloadavg at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
