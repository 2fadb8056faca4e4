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
    return DesignSpace(task, *_sketches(task.hash, task.mod_json, task.name, target))


# Cached by the module's text, not by the Task: two workloads' tasks may share name, weight, FLOPs and
# structural hash (which ignores block names) while their blocks are named apart (gpt2's and
# bert_base's matmul11), and a sketch's trace finds its blocks by name.
@cache
def _sketches(_hash: str, mod_json: str, name: str, target: ResolvedTarget) -> tuple[tuple, tuple]:
    from tvm.s_tir import meta_schedule as ms

    from tlm_core.ir.tasks import _load_mod
    from tlm_core.tvm_env import load_tensor_intrinsics

    load_tensor_intrinsics(target.kind)
    mod = _load_mod(_hash, mod_json)
    ctx = ms.TuneContext(mod=mod, target=target.tvm, space_generator="post-order-apply", task_name=name,
                         num_threads=1)
    return tuple(ctx.space_generator.generate_design_space(mod)), tuple(ctx.space_generator.postprocs)


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
