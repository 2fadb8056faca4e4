"""`random`: `budget` random valid programs per subgraph (Algorithm 1 of the paper), measured.

Each decision is drawn uniformly from its valid domain through `replay` (sketches taken in turn),
programs a postprocessor rejects are drawn again; seeded by (seed, task): the same on every run.
"""

from __future__ import annotations

import numpy as np

from tlm_core.methods import Method
from tlm_core.ui import progress


def _available() -> tuple[bool, str]:
    return True, ""


def random_programs(task, target, n: int, seed: int) -> list:
    """Up to n distinct (Schedule, Program) random valid programs of a task."""
    from tlm_core.language.program import random_chooser, replay
    from tlm_core.space import design_space

    space = design_space(task, target)
    rng = np.random.default_rng([seed, int(task.hash[:12], 16)])
    out, seen = [], set()
    for i in range(20 * n):
        if len(out) == n:
            break
        k = i % len(space.sketches)
        sch, program = replay(space, k, random_chooser(rng), target.hardware, seed=int(rng.integers(1, 2**30)))
        if sch is not None and program not in seen:
            seen.add(program)
            out.append((sch, program))
    return out


def _tune(tasks, target, budget, measurer, workload, seed):
    from tlm_core.train.demonstrations import candidate

    cands = []
    for task in progress(tasks, "random: sample", unit="task"):
        cands += [candidate(workload, task, "random", sch, p) for sch, p in random_programs(task, target, budget, seed)]
    return cands, {"sampler": "uniform over each decision's valid domain (replay + random_chooser)"}


METHOD = Method("random", "random search: budget uniformly random valid programs per subgraph "
                "(each decision uniform over its valid domain), measured", True, _available, _tune)
