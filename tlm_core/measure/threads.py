"""Threads of the TVM runtime's CPU pool: one per core of the target, set before any pool exists.

TVM sizes a process's pool once, when it first runs a parallel kernel, from TVM_NUM_THREADS (or
OMP_NUM_THREADS), else hardware_concurrency() / 2 on x86: it assumes two hyper-threads per core, so
on a 2-vCPU host every kernel ran on ONE thread while PyTorch used two (resnet50 TLM@64 on the
Intel host: 84.4 ms on one thread, 56.2 ms on two, the same programs). `runtime.config_threadpool`
can shrink a pool, never grow it past the size it was made with. So the count goes into the
environment before the first kernel: of this process (bench, profile) and of the worker processes
(our measurement runner, MetaSchedule's LocalRunner), which inherit it when they start.
"""

from __future__ import annotations

import os

ENV = "TVM_NUM_THREADS"


def runtime_threads(n: int) -> int:
    """Make every TVM pool created from now on, in this process or a child started later, run `n` threads."""
    n = max(1, int(n))
    os.environ[ENV] = str(n)
    return n


def pool_threads() -> int:
    """Threads of this process's TVM pool (creates it, with the count set now, if none exists yet)."""
    import tvm

    return int(tvm.get_global_func("runtime.NumThreads")())


def use_threads(n: int) -> int:
    """This process's TVM pool on `n` threads; returns the count it has (less than `n` when a pool made
    earlier, with fewer, cannot grow)."""
    import tvm

    runtime_threads(n)
    tvm.get_global_func("runtime.config_threadpool")(1, max(1, n))  # 1: every core (big cores, all on x86)
    return pool_threads()
