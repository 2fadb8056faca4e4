"""Random sentences (Algorithm 1: every decision uniformly from its valid domain) and round trips.

Both fan out over worker processes (one per core) that take jobs of one task (or a chunk of one)
as they come free, each process keeping the design spaces it has made.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from tlm_core.ir.target import ResolvedTarget
from tlm_core.ir.tasks import Task


@dataclass(frozen=True)
class Job:
    """`count` sentences of one task, sketches taken in turn from the `start`-th."""

    workload: str
    task: Task
    count: int
    start: int
    target: ResolvedTarget
    seed: tuple[int, ...]


def spread(total: int, parts: int) -> list[int]:
    """`total` split into `parts` counts as even as can be, the first ones larger by one."""
    return [total // parts + (i < total % parts) for i in range(parts)]


def plan(entries: list[tuple[str, Task]], n: int, target: ResolvedTarget, seed: int, workers: int) -> list[Job]:
    """n sentences spread evenly over the tasks, in jobs of one task (big tasks cut in chunks).

    Jobs go to whichever worker is free, so tasks of unequal cost (a resnet convolution takes
    several times a matmul's time per sentence) balance over the cores, where dealing tasks to
    workers up front can leave one core idle at the end (no gain measured on 49 tasks; the case is
    few tasks of unequal cost). A chunk of about an eighth of a worker's
    share keeps the last job short; each task's design space is made once per worker that gets it.
    Seeds depend on (seed, task, chunk) only: the output is the same whichever worker runs what.
    """
    chunk = max(256, -(-n // (8 * max(1, workers))))
    jobs = []
    for i, ((workload, task), count) in enumerate(zip(entries, spread(n, len(entries)))):
        for c, start in enumerate(range(0, count, chunk)):
            jobs.append(Job(workload, task, min(chunk, count - start), start, target, (seed, i, c)))
    return jobs


def random_programs(task: Task, target: ResolvedTarget, n: int, seed: int) -> list:
    """Up to n distinct random valid (Schedule, Program) of a task, sketches taken in turn.

    Seeded by (seed, task): the same programs on every run, whatever other tasks are sampled, so
    measuring them again finds them in the record store. Rejected samples are drawn again.
    """
    from tlm_core.ir.space import design_space
    from tlm_core.language.program import random_chooser, replay

    space = design_space(task, target)
    rng = np.random.default_rng([seed, int(task.hash[:12], 16)])
    out, seen = [], set()
    for i in range(20 * n):
        if len(out) == n:
            break
        sch, program = replay(space, i % len(space.sketches), random_chooser(rng), target.hardware,
                              seed=int(rng.integers(1, 2**30)))
        if sch is not None and program not in seen:
            seen.add(program)
            out.append((sch, program))
    return out


def sample_job(job: Job) -> tuple[list[dict], int]:
    """Rows of random valid sentences, and how many samples the postprocessors rejected."""
    import gc

    # Hundreds of thousands of row dicts would trigger ever longer full garbage collections
    # (200K bert_tiny sentences, one run each on the quiet machine: 784/s with GC on, 857/s off);
    # rows hold no reference cycles.
    gc.disable()
    try:
        return _sample_rows(job)
    finally:
        gc.enable()


def _sample_rows(job: Job) -> tuple[list[dict], int]:
    from tlm_core.ir.space import design_space
    from tlm_core.language.program import random_chooser, replay
    from tlm_core.language.sentence import decision_tokens, prompt

    rng = np.random.default_rng(job.seed)
    hw = job.target.hardware
    task = job.task
    space = design_space(task, job.target)
    prompts = [" ".join(prompt(task, hw, space, k)) for k in range(len(space.sketches))]
    rows, rejected, tries = [], 0, 0
    while len(rows) < job.count and tries < 20 * job.count:
        k = (job.start + tries) % len(space.sketches)
        tries += 1
        sch, program = replay(space, k, random_chooser(rng), hw, seed=int(rng.integers(1, 2**30)))
        if sch is None:
            rejected += 1
            continue
        dec = decision_tokens(program)
        rows.append({"workload": job.workload, "task_name": task.name, "task_hash": task.hash,
                     "weight": task.weight, "sketch": k, "prompt": prompts[k], "decisions": " ".join(dec),
                     "prompt_tokens": prompts[k].count(" ") + 1, "decision_tokens": len(dec)})
    return rows, rejected


def roundtrip_job(job: Job) -> dict:
    """Sample, encode, decode, re-apply, compare: counts of identical programs."""
    import tvm_ffi

    from tlm_core.ir.space import design_space
    from tlm_core.language.program import (
        InvalidDecision,
        apply_program,
        random_chooser,
        replay,
    )
    from tlm_core.language.sentence import decode, encode, prompt

    rng = np.random.default_rng(job.seed)
    hw = job.target.hardware
    task = job.task
    out = {"programs": 0, "identical": 0, "different": 0, "rejected_by_postproc": 0, "failures": []}
    space = design_space(task, job.target)
    for i in range(job.start, job.start + job.count):
        k = i % len(space.sketches)
        sch, program = replay(space, k, random_chooser(rng), hw, seed=int(rng.integers(1, 2**30)))
        if sch is None:
            out["rejected_by_postproc"] += 1
            continue
        tokens = encode(program, prompt(task, hw, space, k))
        out["programs"] += 1
        try:
            again = decode(" ".join(tokens).split())
            sch2 = apply_program(space, again, hw)
            same = again == program and tvm_ffi.structural_equal(sch.mod, sch2.mod)
        except (ValueError, InvalidDecision) as err:
            same = False
            out["failures"].append(f"{task.name}: {err}")
        out["identical" if same else "different"] += 1
        if not same and len(out["failures"]) < 5:
            out["failures"].append(f"{task.name}: sketch {k}: decoded program differs")
    return out


def run_jobs(fn, jobs: list[Job], workers: int, desc: str):
    """Run jobs in worker processes (in-process for one worker), with a progress bar."""
    from tlm_core.ui import progress

    if workers <= 1 or len(jobs) <= 1:
        return [fn(j) for j in progress(jobs, desc, unit="job")]
    # spawn: TVM's thread pools do not survive fork.
    import gc
    import multiprocessing

    gc.disable()  # unpickling the workers' rows makes many objects and no cycles: see sample_job
    try:
        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=multiprocessing.get_context("spawn")) as pool:
            return list(progress(pool.map(fn, jobs), desc, total=len(jobs), unit="job"))
    finally:
        gc.enable()


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1

