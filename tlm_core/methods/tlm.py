"""`tlm`: the tensor language model generates `budget` valid programs per subgraph, all measured.

Generation is `tlm_core.model.generate.generate` (constrained decoding, valid by construction) with the
checkpoint in $TLM_CHECKPOINT, else the shipped model for the target's hardware (`model.shipped`:
data/model, or data/model-<mcpu> where one was trained for that CPU). The best measured program per
subgraph is the method's result.
"""

from __future__ import annotations

import os
from pathlib import Path

from tlm_core.methods import Method, register
from tlm_core.ui import log, progress


def checkpoint(hardware=None) -> Path:
    """$TLM_CHECKPOINT, else the shipped model for `hardware` (default: this host)."""
    from tlm_core.model.checkpoint import shipped

    return Path(os.environ.get("TLM_CHECKPOINT") or shipped(hardware))


def model_available() -> tuple[bool, str]:
    folder = checkpoint()
    if not (folder / "config.json").exists():
        return False, f"no trained model at {folder}"
    return True, ""


def load_model(target, method: str):
    """(folder, model) of the checkpoint for the target's CPU; says so when it was trained on another."""
    from tlm_core.model.checkpoint import load, trained_elsewhere

    folder = checkpoint(target.hardware)
    if elsewhere := trained_elsewhere(folder, target.hardware):
        log(f"{method}: the model {folder} was {elsewhere}")
    return folder, load(folder)[0]


def _tune(tasks, target, budget, measurer, workload, seed):
    from tlm_core.model.generate import task_seed
    from tlm_core.train.demonstrations import generated_candidates

    folder, model = load_model(target, "tlm")
    cands, invalid, gen_s = [], 0, 0.0
    for task in progress(tasks, "tlm: generate", unit="task"):
        made, res = generated_candidates(model, workload, task, target, budget, task_seed(seed, task.hash))
        invalid += res.invalid
        gen_s += res.seconds
        for err in res.errors[:2]:
            log(f"tlm: invalid candidate of {task.name}: {err}")
        cands += made
    return cands, {"checkpoint": str(folder), "invalid": invalid, "generation_seconds": round(gen_s, 2)}


METHOD = register(Method("tlm", "TLM: the tensor language model (GPT-2) generates budget valid programs per subgraph "
                "(constrained decoding), all measured, best kept; checkpoint $TLM_CHECKPOINT or the shipped model for the target's CPU",
                True, model_available, _tune))
