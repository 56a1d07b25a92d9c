"""Dry run of benchmarks/device_checks.sh against the lent GPU machine's package set, here.

The lent machine's image has torch, timm, pandas, scikit-learn and the rest of IMAGE below,
but no MLflow or pydantic and no network. This makes a fresh venv that sees only those of
this project's installed packages that the image also has (linked from .venv, so nothing is
downloaded), installs the wheels prepare_device.sh fetched from that folder alone
(``pip --no-index``, as on the machine), and runs the checks' CPU smoke test with it. A
missing import shows up here as it would there. It cannot check the Python version (this
venv's is the local one, the machine's is 3.12): for that, prepare_device.sh downloads
for 3.12 with ``--only-binary``, so a wheel without a 3.12 build fails there, here.

    PY_VERSION=3.11 DEST=/tmp/whl311 bash benchmarks/prepare_device.sh
    python benchmarks/device_dry_run.py --wheels /tmp/whl311     # 20+ minutes on 2 shared CPUs
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import sysconfig
import tempfile
from importlib import metadata
from pathlib import Path

# the Python packages of the lent machine's image (as listed for it in 2026-11), normalised
IMAGE = set("""
absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs
botorch build certifi charset-normalizer chex click cloudpickle cmake colorama contourpy
coverage cycler cython einops etils filelock flatbuffers fonttools frozenlist fsspec grpcio
h11 h5py hf-xet httpcore httpx huggingface-hub humanize hypothesis idna imageio iniconfig
jinja2 joblib kiwisolver lazy-loader lightning lightning-utilities llvmlite lxml markdown
markdown-it-py markupsafe matplotlib mdurl ml-dtypes mpmath msgpack multidict mypy-extensions
narwhals networkx ninja numba numpy nvidia-ml-py onnx opencv-python-headless packaging pandas
pathspec patsy pillow pip pluggy portalocker prometheus-client propcache protobuf psutil
pyarrow pybind11 py-cpuinfo pygments pyparsing pyproject-hooks pytest pytest-timeout
pytest-xdist python-dateutil pyyaml regex requests rich safetensors scikit-image scikit-learn
scipy seaborn sentencepiece setuptools shellingham simplejson six sortedcontainers
statsmodels sympy tabulate tensorboard tensorboard-data-server threadpoolctl tifffile
tiktoken timm tokenizers toolz torch torchaudio torchmetrics torchvision tqdm transformers
triton typer typing-extensions typing-inspect urllib3 werkzeug wheel wrapt xarray xxhash yarl
zipp tzdata pytz
""".split())
ROOT = Path(__file__).resolve().parent.parent


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def image_view(dest: Path) -> int:
    """Link into ``dest`` every installed distribution the image also has (with its files)."""
    count = 0
    for dist in metadata.distributions():
        name = norm(dist.metadata["Name"])
        if name not in IMAGE and not name.startswith("nvidia-"):
            continue
        tops = {Path(str(f)).parts[0] for f in dist.files or []}
        for top in tops:
            src = Path(str(dist.locate_file(top)))
            if top.endswith(".pth") or top in ("..", "__pycache__") or not src.exists():
                continue
            link = dest / top
            if not link.exists():
                link.symlink_to(src)
        count += 1
    return count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheels", type=Path, required=True, help="prepare_device.sh's DEST")
    ap.add_argument("--keep", type=Path, help="build the venv here and keep it")
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="device_dry_run_"))
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    view = root / "image"
    view.mkdir(exist_ok=True)
    n = image_view(view)
    # after the venv's own site-packages, so that what pip installs there comes first
    (site / "zz_image.pth").write_text(f"{view}\n")
    print(f"venv {venv}: {n} distributions of the image linked from {sysconfig.get_paths()['purelib']}")
    probe = "import importlib.util as u; print([m for m in ('mlflow', 'pydantic', 'sqlalchemy', 'alembic') if u.find_spec(m)])"
    print("before the wheels, importable of mlflow/pydantic/sqlalchemy/alembic:",
          subprocess.run([str(py), "-c", probe], capture_output=True, text=True).stdout.strip())
    env = dict(os.environ, PYTHON=str(py), WHEELS=str(args.wheels), QUICK="1", DEVICE="cpu",
               OUT=str(root / "out"))
    env.pop("PYTHONPATH", None)
    rc = subprocess.run(["bash", str(ROOT / "benchmarks" / "device_checks.sh")], env=env).returncode
    print(f"device_checks.sh exit {rc}; outputs in {root / 'out'}")
    sys.exit(rc)


if __name__ == "__main__":
    main()
