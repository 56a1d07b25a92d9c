#!/usr/bin/env bash
# The GPU checks in one short run, for a session that is lent an accelerator: the GPU tests,
# the fast classifier's throughput (GAN-train on 50,000 32x32 images: goal under 10 s on an
# H100) and one model's whole protocol at N = 50,000 (goal under 60 s excluding sampling;
# peak RSS and peak GPU memory). Output goes to stdout and, with $OUT set, to $OUT/*.txt.
#
#   bash benchmarks/device_checks.sh            # on the GPU machine (about 5-8 minutes)
#   QUICK=1 DEVICE=cpu bash benchmarks/device_checks.sh   # smoke test of the script itself
#
# On a lent machine with no network (Python 3.12 with torch, timm, pandas, scikit-learn, but
# no MLflow or pydantic): run benchmarks/prepare_device.sh here first, which downloads the
# missing wheels into .whl/, and carry .whl; this script then installs them offline, only
# what the interpreter lacks. The work tree's bench is used through PYTHONPATH (nothing is
# installed from it); MLflow's store, bench's cache and temporary files go to a temp folder.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
if ! $PY -c "import mlflow, pydantic, sqlalchemy, alembic" 2>/dev/null; then
  WHEELS=${WHEELS:-.whl}
  [ -d "$WHEELS" ] || { echo "no MLflow/pydantic here and no .whl/: run benchmarks/prepare_device.sh"; exit 1; }
  $PY -m pip install -q --no-index --find-links "$WHEELS" --no-cache-dir --disable-pip-version-check \
    mlflow-skinny mlflow-tracing sqlalchemy alembic pydantic || exit 1
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
scratch=$(mktemp -d)
export TMPDIR=$scratch MLFLOW_TRACKING_URI=sqlite:///$scratch/mlflow.db BENCH_CACHE_DIR=$scratch/cache
export GIT_PYTHON_REFRESH=quiet HF_HUB_OFFLINE=1 MPLBACKEND=Agg
quick=(); n=50000
if [ "${QUICK:-0}" = 1 ]; then quick=(--quick); n=2048; fi
run() {  # name, command...: time it, keep its output, go on when it fails
  local name=$1; shift
  echo "== $name: $*"
  local t0=$SECONDS
  "$@" 2>&1 | tee "$OUT/$name.txt"
  echo "== $name: exit ${PIPESTATUS[0]} after $((SECONDS - t0)) s" | tee -a "$OUT/$name.txt"
}
$PY -c "import torch; print(torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name(0))"
[ "$DEVICE" = cpu ] || run gpu_tests $PY -m pytest -q -p no:cacheprovider -m gpu tests
run classifier_fast $PY benchmarks/classifier_throughput.py --device "$DEVICE" --only fast "${quick[@]}"
run suite_cost $PY benchmarks/suite_cost.py --device "$DEVICE" --n "$n" --only after
echo "results in $OUT"
