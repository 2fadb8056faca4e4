"""MetaSchedule design spaces of a task: its sketches, postprocessors, and random valid programs."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from tlm_core.ir.target import ResolvedTarget
from tlm_core.ir.tasks import Task


@dataclass(frozen=True)
class DesignSpace:
    """The sketches (traces with sampling instructions) of one task on one target."""

    task: Task
    sketches: tuple  # tvm.s_tir.Schedule per sketch
    postprocs: tuple  # MetaSchedule Postproc objects, all must pass before a build


def design_space(task: Task, target: ResolvedTarget) -> DesignSpace:
    """The post-order-apply design space (MetaSchedule's default rules for the target)."""
    return _design_space(task, task.mod_json, target)


# Cached with the module's text in the key, not by the Task alone: two workloads' tasks may agree in
# name, weight, FLOPs and structural hash (which ignores block names: gpt2's and bert_base's matmul11)
# while their blocks are named apart, and a sketch's trace finds its blocks by name. One object per
# task: the language caches replays by the space's id().
@cache
def _design_space(task: Task, _mod_json: str, target: ResolvedTarget) -> DesignSpace:
    from tvm.s_tir import meta_schedule as ms

    from tlm_core.tvm_env import load_tensor_intrinsics

    load_tensor_intrinsics(target.kind)
    ctx = ms.TuneContext(mod=task.mod, target=target.tvm, space_generator="post-order-apply",
                         task_name=task.name, num_threads=1)
    sketches = tuple(ctx.space_generator.generate_design_space(task.mod))
    return DesignSpace(task, sketches, tuple(ctx.space_generator.postprocs))


def sample_random(space: DesignSpace, n: int, seed: int = 1, max_tries: int | None = None) -> list:
    """Up to n random valid programs: a sketch replayed with fresh decisions, postprocessed.

    Returns the scheduled `Schedule`s whose trace (with postprocessing) is the candidate.
    Samples that a postprocessor rejects are drawn again (MetaSchedule's own sampling does the same).
    """
    from tvm.s_tir import Schedule, Trace

    out = []
    tries = max_tries or 20 * n
    for i in range(tries):
        if len(out) == n:
            break
        sketch = space.sketches[i % len(space.sketches)]
        sch = Schedule(space.task.mod, seed=seed * 1_000_003 + i + 1)  # seeds must be >= 1
        Trace(sketch.trace.insts, {}).apply_to_schedule(sch, remove_postproc=True)
        if all(p.apply(sch) for p in space.postprocs):
            out.append(sch)
    return out
