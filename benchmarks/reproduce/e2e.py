"""End to end (Figures 10 and 13, and `methods`: every method of the registry at one small budget):
per workload and method, tune its subgraphs, compile the whole model and bench it beside PyTorch.
A module of its own because it shares no measuring with the tables: each (workload, method) has its
own record store, and e2e.csv is its only output besides provenance.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from benchmarks.reproduce.sitting import checkpoint
from tlm_core.ui import log


def run_e2e(spec, scale: str, out: Path, target, seed: int = 0, resume: bool = False) -> dict:
    """Per workload and method: tune its subgraphs, compile the whole model, bench it against PyTorch.

    e2e.csv is rewritten after every (workload, method), so a stopped run loses at most the one in
    progress; with `resume` the finished ones are kept and the one in progress continues from its store.
    """
    import pandas as pd

    from tlm_core.ir.workloads import get_workload
    from tlm_core.methods import get_method
    from tlm_core.provenance import checkpoint_identity, code_state, provenance

    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    code_state()  # the commit this run starts from is the one its provenance names
    csv = out / "e2e.csv"
    done = pd.read_csv(csv).to_dict("records") if resume and csv.exists() else []
    done_keys = {(r["workload"], r["method"].split("-")[0]) for r in done if r.get("status") == "ok"}
    rows = [r for r in done if (r["workload"], r["method"].split("-")[0]) in done_keys]
    def sidecar(finished: bool) -> dict:
        # Written with every row, so a stopped run's rows have their provenance too (finished: false).
        prov = provenance(target, scale=scale, figure=spec.name, seed=seed, workloads=list(spec.workloads[scale]),
                          methods=[[m, b] for m, b in spec.methods],
                          wall_seconds=round(time.perf_counter() - started, 1), resumed=bool(done),
                          finished=finished, checkpoint=checkpoint_identity(checkpoint(target)))
        (out / "provenance.json").write_text(json.dumps(prov, indent=1, default=str))
        return prov

    for name in spec.workloads[scale]:
        source = get_workload(name)
        for method, budgets in spec.methods:
            if (name, method) in done_keys:
                continue
            row = {"figure": spec.name, "scale": scale, "workload": name, "method": method,
                   "budget": budgets.get(scale)}
            ok, why = get_method(method).available()
            if not ok:
                rows.append({**row, "status": why if why.startswith("unavailable") else f"unavailable: {why}"})
            else:
                log(f"{spec.name}: {name} with {method}" + (f" (budget {row['budget']})" if row["budget"] else ""))
                rows += _e2e_rows(row, source, method, out, target, seed, resume)
            pd.DataFrame(rows).convert_dtypes().to_csv(csv, index=False)  # budgets stay integers on resume
            sidecar(finished=False)
    prov = sidecar(finished=True)
    return {"figure": spec.name, "scale": scale, "out": str(out), "rows": rows, "wall_seconds": prov["wall_seconds"]}


def _e2e_rows(row: dict, source, method: str, out: Path, target, seed: int, resume: bool) -> list[dict]:
    """The rows of one (workload, method): PyTorch gives two (eager, inductor), a tuning method one."""
    from tlm_core.eval import e2e
    from tlm_core.methods import get_method

    if method == "pytorch":
        res = e2e.bench(source, target, method="pytorch")
        ind = res.get("inductor", {})
        return [{**row, "method": "pytorch-eager", "status": "ok", "latency_ms": res["eager_latency_ms"],
                 "max_abs_err": 0.0},
                {**row, "method": "pytorch-inductor", "status": "ok" if "latency_ms" in ind else
                 f"failed: {ind.get('error')}", "latency_ms": ind.get("latency_ms"),
                 "compile_seconds": ind.get("compile_seconds"), "max_abs_err": ind.get("max_abs_err")}]
    if not get_method(method).tunes_subgraphs:
        return [{**row, "status": f"unavailable: no end-to-end bench for {method} in this driver"}]
    db = out / "stores" / f"{source.name}-{method}-{row['budget']}"
    if db.exists() and not resume:
        shutil.rmtree(db)
    tuned = e2e.tune_workload(source, method, row["budget"], db, target, seed=seed)
    res = e2e.bench(source, target, db_dir=db)
    return [{**row, "status": "ok", "latency_ms": res["latency_ms"], "max_abs_err": res["max_abs_err"],
             "compile_seconds": tuned["compile_seconds"], "tasks": tuned["tasks"],
             "measured": tuned["measured"], "failed": tuned["failed"],
             "weighted_latency_ms": tuned["weighted_latency_ms"],
             "untuned_subgraphs": len(res["untuned_subgraphs"])}]
