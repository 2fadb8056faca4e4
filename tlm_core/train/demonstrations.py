"""Demonstration data: programs of the training subgraphs measured on this machine.

Round 0 measures random valid programs (Algorithm 1); later rounds measure what the model of the
previous round generates (the iterative loop). Every candidate carries its program (sketch index
and decision tokens) into its record, so a record is a sentence with a latency. Records live in a
content-keyed RecordStore (append-only, resumable); `frame` turns them into a table, and `export`
writes the compact parquet that is committed (the store itself holds full traces: too big for git).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from tlm_core.measure.harness import (
    OK,
    Candidate,
    MeasureConfig,
    Measurer,
    trace_to_json,
)
from tlm_core.target import ResolvedTarget
from tlm_core.tasks import Task, extract_tasks, held_out_hashes
from tlm_core.ui import log, progress

#: Fraction of training subgraphs kept out of SFT: the held-out set of the test of meaning.
VALIDATION_FRACTION = 0.05

#: Demonstration data settings: reference runs of the biggest training subgraphs are naive loops;
#: one builder, so that measuring takes one core and training (which overlaps it) the other.
DEMO_MEASURE = MeasureConfig(reference_timeout_s=180.0, builders=1)


def training_entries(target: ResolvedTarget) -> list[tuple[str, Task]]:
    """(workload, task) of every distinct training subgraph, test subgraphs held out, in zoo order."""
    from tlm_core.workloads.zoo import TRAIN

    held = held_out_hashes(target)
    seen: dict[str, tuple[str, Task]] = {}
    for w in TRAIN:
        for t in extract_tasks(w, target):
            if t.hash not in held and t.hash not in seen:
                seen[t.hash] = (w.name, t)
    return list(seen.values())


def is_validation(task_hash: str) -> bool:
    """A fixed, content-based 5% of training subgraphs never used for SFT (seed-free, stable)."""
    return int(hashlib.sha256(task_hash.encode()).hexdigest()[:8], 16) < VALIDATION_FRACTION * 2**32


def candidate(workload: str, task: Task, method: str, sch, program, **extra) -> Candidate:
    """A measurable candidate of a replayed program, its sentence in the record."""
    from tlm_core.language.sentence import decision_tokens

    info = {"sketch": program.sketch, "decisions": " ".join(decision_tokens(program)), **extra}
    return Candidate(task, trace_to_json(sch.trace), workload, method, json.dumps(info, sort_keys=True))


def random_candidates(workload: str, task: Task, target: ResolvedTarget, n: int, seed: int) -> list[Candidate]:
    """n random valid programs of a task, seeded by (seed, task): the same on every run (resumable)."""
    from tlm_core.language.program import random_chooser, replay
    from tlm_core.space import design_space

    space = design_space(task, target)
    rng = np.random.default_rng([seed, int(task.hash[:12], 16)])
    out: list[Candidate] = []
    for i in range(20 * n):
        if len(out) == n:
            break
        k = i % len(space.sketches)
        sch, program = replay(space, k, random_chooser(rng), target.hardware, seed=int(rng.integers(1, 2**30)))
        if sch is not None:
            out.append(candidate(workload, task, "random", sch, program, round=0,
                                 prompt=prompt_text(task, target, k)))
    return out


def prompt_text(task: Task, target: ResolvedTarget, sketch: int) -> str:
    """The prompt of a program of `task` with sketch `sketch` (subgraph, hardware, sketch tokens)."""
    from tlm_core.language.sentence import prompt
    from tlm_core.space import design_space

    key = (task.hash, target, sketch)
    if key not in _PROMPTS:
        _PROMPTS[key] = " ".join(prompt(task, target.hardware, design_space(task, target), sketch))
    return _PROMPTS[key]


_PROMPTS: dict = {}


def collect_random(target: ResolvedTarget, store: str | Path, per_task: int, seed: int = 0,
                   config: MeasureConfig = DEMO_MEASURE, tasks_per_batch: int = 4) -> dict:
    """Round 0: measure `per_task` random programs of every training subgraph (resumes)."""
    entries = training_entries(target)
    restored = restore(store)
    if restored:
        log(f"restored {restored} measured records into {store} from {EXPORT}")
    counts = {"candidates": 0}
    with Measurer(target, store, config) as m:
        bar = progress(total=len(entries) * per_task, desc="random demonstrations", unit="cand")
        for i in range(0, len(entries), tasks_per_batch):
            cands = [c for w, t in entries[i:i + tasks_per_batch]
                     for c in random_candidates(w, t, target, per_task, seed)]
            m.measure(cands, desc="batch")
            counts["candidates"] += len(cands)
            bar.update(len(cands))
        bar.close()
    return counts


def frame(store_dir: str | Path):
    """The measured records as a table: one row per candidate, failures included."""
    import pandas as pd

    from tlm_core.measure.store import RecordStore

    rows = []
    for r in RecordStore(store_dir):
        if "decisions" not in r:
            continue
        rows.append({"workload": r["workload"], "task_name": r["task_name"], "task_hash": r["task_hash"],
                     "method": r["method"], "round": r.get("round", 0), "sketch": r["sketch"],
                     "prompt": r.get("prompt", ""), "decisions": r["decisions"], "status": r["status"], "error": r["error"][-300:],
                     "latency_s": r["latency_s"], "max_rel_err": r["max_rel_err"], "key": r["key"],
                     "target": json.dumps(r["target"], sort_keys=True), "measured_at": r["measured_at"],
                     "validation": is_validation(r["task_hash"])})
    df = pd.DataFrame(rows)
    missing = df.prompt == "" if len(df) else []
    if len(df) and missing.any():  # records of early round-0 runs did not carry their prompt
        df.loc[missing, "prompt"] = _prompts_of(df[missing])
    return df


def _prompts_of(rows) -> list[str]:
    """Prompts of records that lack one, rebuilt from their task and target."""
    from tlm_core.target import resolve_target

    tasks = {t.hash: t for _, t in training_entries(resolve_target("host"))}
    out = []
    for task_hash, sketch, target_json in zip(rows.task_hash, rows.sketch, rows.target):
        target = _target_of(target_json)
        if task_hash not in tasks:
            raise ValueError(f"record of task {task_hash} without a prompt, and the task is not a training task")
        out.append(prompt_text(tasks[task_hash], target, int(sketch)))
    return out


_TARGETS: dict = {}


def _target_of(hardware_json: str) -> ResolvedTarget:
    """The target a record was measured on (records keep the hardware description)."""
    from tlm_core.target import Hardware

    if hardware_json not in _TARGETS:
        _TARGETS[hardware_json] = ResolvedTarget(Hardware.from_json(hardware_json))
    return _TARGETS[hardware_json]


def best_programs(df, per_task: int = 1):
    """SFT data: the fastest measured programs of each (training, non-validation) subgraph and sketch."""
    ok = df[(df.status == OK) & ~df.validation]
    ok = ok.sort_values("latency_s", kind="stable")
    return ok.groupby(["task_hash", "sketch"], sort=False).head(per_task).reset_index(drop=True)


def load_records(source: str | Path):
    """Measured records from a record-store folder or an exported parquet file."""
    import pandas as pd

    from tlm_core.errors import UserError

    source = Path(source)
    if source.is_dir():
        return frame(source)
    if source.suffix == ".parquet" and source.exists():
        return pd.read_parquet(source)
    raise UserError(f"{source}: not a record-store folder or a .parquet file of measured records")


#: The committed export of the demonstration data (the store itself, with full traces, is not).
EXPORT = Path(__file__).resolve().parents[2] / "data" / "demonstrations" / "records.parquet"


def restore(store_dir: str | Path, source: Path = EXPORT) -> int:
    """Seed an empty store from the committed export, so a fresh clone resumes instead of re-measuring.

    Restored records keep their key and measurement but not their trace (it is rebuilt from task,
    sketch and decisions when needed).
    """
    import pandas as pd

    from tlm_core.measure.store import RecordStore

    store = RecordStore(store_dir)
    if len(store) or not source.exists():
        return 0
    df = pd.read_parquet(source)
    for row in df.to_dict("records"):
        row["target"] = json.loads(row["target"])
        row.pop("validation", None)
        store.add({**row, "trace": None, "restored": True})
    return len(df)


def export(store_dir: str | Path, out: str | Path) -> dict:
    """Write the records as zstd parquet (committed; traces rebuild from task + sketch + decisions)."""
    df = frame(store_dir)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(out, index=False, compression="zstd")
    summary = {"records": len(df), "ok": int((df.status == OK).sum()) if len(df) else 0,
               "tasks": int(df.task_hash.nunique()) if len(df) else 0}
    log(f"exported {summary} to {out}")
    return summary
