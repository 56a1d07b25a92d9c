"""CPU thread budget: processes that share a machine split its cores instead of each
taking all of them.

torch (and OpenMP, MKL, OpenBLAS under numpy / scikit-learn) start one intra-op thread per
core in every process. Two worker processes on 2 cores then run 4 spinning threads, and
small-batch training slows down by 10x or more (a 6 s cell took 86 s). A local worker pool
gives each worker `cores // workers` threads (at least 1); the in-process executor keeps
the process's own setting (torch's default: every core). `BENCH_THREADS`, or the local
executor's `threads` option (`bench run --threads N`, suite `executor: {threads: N}`),
overrides both, for torch and for the BLAS / OpenMP pools already loaded (threadpoolctl).
Each cell records what it ran with as the run tag `bench.threads`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

ENV = "BENCH_THREADS"
# what the native thread pools read when they start: set before torch / numpy load where
# possible, and inherited by any process started afterwards
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def cores() -> int:
    """CPUs this process may run on (its affinity mask, e.g. a Slurm or container limit)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def from_env() -> int | None:
    """`BENCH_THREADS` as a positive int, None when unset or empty."""
    from bench.core.settings import settings

    return settings().threads  # a bad value: one BenchError naming BENCH_THREADS


def budget(workers: int, override: int | None = None) -> int:
    """Threads per process for `workers` processes on this machine: `override`, else
    `BENCH_THREADS`, else cores // workers (at least 1)."""
    if override is not None:
        return override
    env = from_env()
    if env is not None:
        return env
    return max(1, cores() // max(1, workers))


def thread_env(n: int) -> dict[str, str]:
    """Environment variables that give a new process `n` threads per pool."""
    return {var: str(n) for var in THREAD_VARS} | {ENV: str(n)}


def apply(n: int) -> None:
    """Give this process (and the processes it starts) `n` intra-op threads."""
    os.environ.update(thread_env(n))
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n)
    # OpenBLAS / MKL / OpenMP pools numpy and scipy already loaded ignore the variables:
    # FID's LAPACK calls on 2 threads beside another process took 85x the CPU of 1 thread
    threadpool_limits(limits=n)


def current() -> int:
    """torch's intra-op threads in this process (what the `bench.threads` tag records)."""
    import torch

    return torch.get_num_threads()


@contextmanager
def environment(n: int | None) -> Iterator[None]:
    """The thread variables say `n` while the block runs, for the processes started in it
    (a spawned worker reads them before it imports anything); restored afterwards."""
    if n is None:
        yield
        return
    before = {k: os.environ.get(k) for k in (*THREAD_VARS, ENV)}
    os.environ.update(thread_env(n))
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextmanager
def applied(n: int | None) -> Iterator[None]:
    """This process runs with `n` intra-op threads inside the block (None: unchanged)."""
    if n is None:
        yield
        return
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    # numpy's and scipy's loaded BLAS pools too (see `apply`), restored on leaving
    with environment(n), threadpool_limits(limits=n):
        torch.set_num_threads(n)
        try:
            yield
        finally:
            torch.set_num_threads(before)
