"""Demonstrations from a tuning method: what a search finds, recorded as training data for SFT.

It lives above the methods (it runs one) and below the CLI (`tlm train collect --method`), so the
command module only parses arguments."""

from __future__ import annotations

from tlm_core.errors import UserError
from tlm_core.measure.store import RecordStore
from tlm_core.methods import get_method
from tlm_core.train import demonstrations
from tlm_core.ui import log, progress


def collect_with(name: str, target, store: str, budget: int, seed: int, pipeline: int,
                 workloads: tuple[str, ...], max_tasks: int = 0) -> dict:
    """Demonstrations from a tuning method: `budget` trials of `name` (e.g. MetaSchedule's search) on
    every training subgraph, one training workload at a time, into the demonstration store. Their
    fastest programs teach the model what a search finds (the paper's demonstrations came from 10K
    measurements per subgraph; its loop here measures a handful). Test subgraphs stay held out
    (`training_entries`); a subgraph that has this method's records is not searched again (resumable,
    and a longer --workloads list goes on from a shorter one's run); only records whose program is a
    sentence of the language are demonstrations.
    max_tasks: only each workload's N heaviest training subgraphs (0 = all)."""
    method = get_method(name)
    if not method.tunes_subgraphs:
        raise UserError(f"--method {name} does not tune subgraphs; use random or a searching method "
                        "(see `tlm methods`)")
    len(RecordStore(store))  # a store that cannot be read fails now, not after minutes of task extraction
    restored = demonstrations.restore(store)
    if restored:
        log(f"restored {restored} measured records into {store} from {demonstrations.EXPORT}")
    by_workload: dict[str, list] = {}
    for w, t in demonstrations.training_entries(target, pipeline, workloads):
        by_workload.setdefault(w, []).append(t)  # each workload's heaviest first, as extracted
    if max_tasks:
        by_workload = {w: ts[:max_tasks] for w, ts in by_workload.items()}
    done = {r.get("task_hash") for r in RecordStore(store) if r.get("method") == name}
    out = {"method": name, "subgraphs": sum(map(len, by_workload.values())), "candidates": 0, "ok": 0,
           "failed": 0, "already_searched": 0}
    for w, tasks in progress(list(by_workload.items()), desc=f"{name} demonstrations", unit="workload"):
        todo = [t for t in tasks if t.hash not in done]
        out["already_searched"] += len(tasks) - len(todo)
        if not todo:
            continue
        res = method.tune(todo, target, budget, store, w, config=demonstrations.DEMO_MEASURE, seed=seed)
        out["candidates"] += res.candidates
        out["ok"] += res.measured
        out["failed"] += res.failed
    df = demonstrations.frame(store)
    mine = df[(df.method == name) & df.task_hash.isin({t.hash for ts in by_workload.values() for t in ts})] \
        if len(df) else df
    out["demonstrations"] = int((mine.status == demonstrations.OK).sum()) if len(mine) else 0
    return out
