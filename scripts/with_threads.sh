#!/usr/bin/env bash
# `with_threads.sh THREADS COMMAND [ARGS...]`: run COMMAND with THREADS CPU threads per process.
# MLproject's entry points start through it, so that `mlflow run . -P threads=N` works for each.
#
# THREADS is `auto` (or empty): keep what the environment says ($BENCH_THREADS when set, else
# bench's default: every core for one process, cores // workers for a worker pool). A positive
# number sets $BENCH_THREADS (which `bench run` / `bench nightly` apply as `--threads` does) and
# the variables that torch, OpenMP, MKL and OpenBLAS read when they start (for `bench train`
# and the other commands). Anything else exits 2, as a user error.
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
exec "$@"
