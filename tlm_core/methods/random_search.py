"""`random`: `budget` random valid programs per subgraph (Algorithm 1 of the paper), measured.

Each decision is drawn uniformly from its valid domain through `replay` (sketches taken in turn),
programs a postprocessor rejects are drawn again; seeded by (seed, task): the same on every run.
"""

from __future__ import annotations

from tlm_core.methods import Method, register
from tlm_core.ui import progress


def _available() -> tuple[bool, str]:
    return True, ""


def _tune(tasks, target, budget, measurer, workload, seed):
    from tlm_core.train.demonstrations import random_candidates

    cands = []
    for task in progress(tasks, "random: sample", unit="task"):
        cands += random_candidates(workload, task, target, budget, seed)
    return cands, {"sampler": "uniform over each decision's valid domain (replay + random_chooser)"}


METHOD = register(Method("random", "random search: budget uniformly random valid programs per subgraph "
                "(each decision uniform over its valid domain), measured", True, _available, _tune))
