"""`tlm`: the tensor language model generates `budget` valid programs per subgraph, all measured.

Generation is `tlm_core.generate.generate` (constrained decoding, valid by construction) with the
checkpoint in $TLM_CHECKPOINT, else the shipped model (data/model). The best measured program per
subgraph is the method's result.
"""

from __future__ import annotations

import os
from pathlib import Path

from tlm_core.methods import Method
from tlm_core.ui import log, progress


def checkpoint() -> Path:
    from tlm_core.model import SHIPPED

    return Path(os.environ.get("TLM_CHECKPOINT") or SHIPPED)


def _available() -> tuple[bool, str]:
    folder = checkpoint()
    if not (folder / "config.json").exists():
        return False, f"no trained model at {folder}"
    return True, ""


def _tune(tasks, target, budget, measurer, workload, seed):
    from tlm_core.generate import task_seed
    from tlm_core.model import load
    from tlm_core.train.demonstrations import generated_candidates

    model, _ = load(checkpoint())
    cands, invalid, gen_s = [], 0, 0.0
    for task in progress(tasks, "tlm: generate", unit="task"):
        made, res = generated_candidates(model, workload, task, target, budget, task_seed(seed, task.hash))
        invalid += res.invalid
        gen_s += res.seconds
        for err in res.errors[:2]:
            log(f"tlm: invalid candidate of {task.name}: {err}")
        cands += made
    return cands, {"checkpoint": str(checkpoint()), "invalid": invalid, "generation_seconds": round(gen_s, 2)}


METHOD = Method("tlm", "TLM: the tensor language model (GPT-2) generates budget valid programs per subgraph "
                "(constrained decoding), all measured, best kept; checkpoint $TLM_CHECKPOINT or data/model",
                True, _available, _tune)
