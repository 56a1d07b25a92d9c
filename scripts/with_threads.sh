#!/usr/bin/env bash
# `with_threads.sh THREADS COMMAND [ARGS...]`: run COMMAND with THREADS CPU threads per process.
# MLproject's entry points start through it, so that `mlflow run . -P threads=N` works for each.
#
# THREADS is `auto` (or empty): keep what the environment says ($BENCH_THREADS when set, else
# bench's default: every core for one process, cores // workers for a worker pool). A positive
# number sets $BENCH_THREADS (which `bench run` / `bench nightly` apply as `--threads` does) and
# the variables that torch, OpenMP, MKL and OpenBLAS read when they start (for `bench train`
# and the other commands). Anything else exits 2, as a user error.
#
# Exit codes: `mlflow run` reports every failed entry point as exit 1 (its own CLI catches the
# failure), so bench's distinction between 2 (a set-up error) and 1 (a regression or a failed
# cell) would be lost there. Under `mlflow run` (MLFLOW_RUN_ID set) the command's code is
# therefore also written as the tag `bench.exit_code` on that run, and to the file named by
# $BENCH_EXIT_CODE_FILE when set: a CI job reads either (docs/scheduling.md).
set -euo pipefail
if [ "$#" -lt 2 ]; then
  echo "usage: with_threads.sh THREADS COMMAND [ARGS...]" >&2
  exit 2
fi
n="$1"
shift
case "$n" in
  auto | "") ;;
  *[!0-9]* | 0*)
    echo "error: threads: expected 'auto' or a positive number of CPU threads per process, got '$n'" >&2
    exit 2
    ;;
  *) export BENCH_THREADS="$n" OMP_NUM_THREADS="$n" MKL_NUM_THREADS="$n" OPENBLAS_NUM_THREADS="$n" ;;
esac
if [ -z "${MLFLOW_RUN_ID:-}" ] && [ -z "${BENCH_EXIT_CODE_FILE:-}" ]; then
  exec "$@"
fi
rc=0
"$@" || rc=$?
if [ -n "${BENCH_EXIT_CODE_FILE:-}" ]; then
  echo "$rc" > "$BENCH_EXIT_CODE_FILE"
fi
if [ -n "${MLFLOW_RUN_ID:-}" ]; then
  python -c 'import sys; from mlflow import MlflowClient; MlflowClient().set_tag(sys.argv[1], "bench.exit_code", sys.argv[2])' \
    "$MLFLOW_RUN_ID" "$rc" 2>/dev/null || echo "with_threads.sh: could not tag the run with bench.exit_code=$rc" >&2
fi
exit "$rc"
