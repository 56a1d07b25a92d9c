#!/usr/bin/env bash
# Prepare benchmarks/device_checks.sh for a GPU machine that has no network: download, here,
# the wheels its Python lacks into .whl/ (ignored by git), for the lent machine's Python 3.12
# on x86-64 Linux. That machine's image already holds torch, torchvision, timm, numpy, pandas,
# scipy, scikit-learn, matplotlib, pyyaml, tqdm, tabulate, pillow, filelock, pytest and
# requests, but not MLflow or pydantic. device_checks.sh installs from .whl/ offline
# (pip --no-index --find-links), and pip takes from there only what the image lacks.
#
#   bash benchmarks/prepare_device.sh        # here, with network: fills .whl/ (about 22 MiB)
#   PY_VERSION=3.11 DEST=/tmp/whl311 bash benchmarks/prepare_device.sh   # for a local dry run
#
# then the device call carries .whl (see docs/performance.md, "GPU checks in one call").
# What is downloaded: the MLflow client with its SQLite store (mlflow-skinny, SQLAlchemy,
# alembic) and pydantic, at the versions constraints.txt pins where it pins them, with
# their dependencies, less the large packages the image already has (never torch).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
DEST=${DEST:-.whl}
PY_VERSION=${PY_VERSION:-3.12}
pin() { grep -E "^$1==" constraints.txt | head -1 || true; }  # "name==x.y" or nothing
mlflow_pin=$(pin mlflow); mlflow_version=${mlflow_pin#mlflow==}
pydantic_pin=$(pin pydantic)
want=(
  "mlflow-skinny${mlflow_version:+==$mlflow_version}"
  "mlflow-tracing${mlflow_version:+==$mlflow_version}"
  sqlalchemy alembic
  "${pydantic_pin:-pydantic}"
)
rm -rf "$DEST"; mkdir -p "$DEST"
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 \
         manylinux1_x86_64 any; do platforms+=(--platform "$p"); done
"$PY" -m pip download -q --only-binary=:all: --python-version "$PY_VERSION" --implementation cp \
  "${platforms[@]}" -d "$DEST" "${want[@]}"
# the image has these (and newer than their floors): don't carry them
have='numpy|pandas|scipy|scikit_learn|matplotlib|torch|torchvision|timm|pillow|pyarrow|protobuf|'\
'pyyaml|PyYAML|requests|urllib3|certifi|idna|charset_normalizer|click|cloudpickle|packaging|'\
'typing_extensions|jinja2|markupsafe|six|python_dateutil|pytz|tzdata|anyio|h11|attrs|'\
'grpcio|filelock|tqdm|tabulate|pytest'
for f in "$DEST"/*.whl; do
  name=$(basename "$f" | cut -d- -f1)
  if [[ "$name" =~ ^($have)$ ]]; then rm -f "$f"; fi
done
ls "$DEST"
du -sh "$DEST"
