"""End to end (Figures 10 and 13, and `methods`: every method of the registry at one small budget):
per workload and method, tune its subgraphs, compile the whole model and bench it beside PyTorch.
A module of its own because it shares no measuring with the tables: each (workload, method) has its
own record store; e2e.csv and its summary table.md are its outputs, beside provenance.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from benchmarks.reproduce.sitting import checkpoint
from tlm_core.errors import UserError
from tlm_core.measure.store import seal
from tlm_core.ui import log

#: Runs of a subgraph's candidates are stopped once they take over this many times its best call so far
#: (MeasureConfig.prune_slower): only the best of each subgraph goes into the compiled model, and timings
#: here vary by up to ~1.5x run to run, so a program stopped at 4x cannot be the one chosen. Rows record
#: how many were stopped (`slower`).
PRUNE_SLOWER = 4.0


def run_e2e(spec, scale: str, out: Path, target, seed: int = 0, resume: bool = False,
            only: list[str] | None = None, redo: bool = False, flush_caches: bool = False) -> dict:
    """Per workload and method: tune its subgraphs, compile the whole model, bench it against PyTorch.

    e2e.csv is rewritten after every (workload, method), so a stopped run loses at most the one in
    progress; with `resume` the finished ones are kept and the one in progress continues from its store.
    `only`: run the entries of these of the spec's workloads alone (the rows of the others are kept, and
    the table still lists every workload of the spec, those not run as "not run"). `redo`: with `resume`,
    run those workloads' entries again although measured (their stores kept: only what changed is
    measured), e.g. after a pipeline change of their tasks; the rows they replace go to superseded.csv.
    `flush_caches`: the tuning methods choose each subgraph's program by timings with the caches flushed
    (`MeasureConfig(flush_caches=True)`): inside a model a kernel's weights come from memory. An output
    folder holds one protocol: resuming it with the other is a UserError.
    """
    import pandas as pd

    from tlm_core.ir.workloads import get_workload
    from tlm_core.methods import get_method
    from tlm_core.provenance import checkpoint_identity, code_state, provenance

    if redo and not only:
        raise UserError("--redo runs the entries of the --workloads named again: name them")
    if only:
        unknown = [w for w in only if w not in spec.workloads[scale]]
        if unknown:
            raise UserError(f"--workloads: {', '.join(unknown)} not in {spec.name} at scale {scale}; "
                            f"choose from {', '.join(spec.workloads[scale])}")
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    code_state()  # the commit this run starts from is the one its provenance names
    csv = out / "e2e.csv"
    done = pd.read_csv(csv).to_dict("records") if resume and csv.exists() else []
    # Kept on resume: measured rows, and rows of a method still unavailable here; a failed row runs again.
    kept: dict[tuple, list[dict]] = {}
    for r in done:
        method = _key(r)[1]
        if r.get("status") == "ok" or (str(r.get("status")).startswith("unavailable")
                                       and not get_method(method).available()[0]):
            kept.setdefault(_key(r), []).append(r)
    # A resumed run keeps the provenance of the runs before it (their commits and times measured the
    # rows they left), newest last.
    earlier = []
    if done and (out / "provenance.json").exists():
        before = json.loads((out / "provenance.json").read_text())
        if bool(before.get("flush_caches")) != flush_caches:
            raise UserError(f"{out}: its rows chose programs by {'cold' if before.get('flush_caches') else 'warm'}"
                            f"-cache timings; {'drop' if before.get('flush_caches') else 'add'} --flush-caches, "
                            "or give another --out")
        earlier = [*before.pop("earlier_runs", []), before]

    def sidecar(finished: bool) -> dict:
        # Written with every row, so a stopped run's rows have their provenance too (finished: false).
        prov = provenance(target, scale=scale, figure=spec.name, seed=seed, workloads=list(spec.workloads[scale]),
                          methods=[[m, b] for m, b in spec.methods],
                          wall_seconds=round(time.perf_counter() - started, 1), resumed=bool(done),
                          finished=finished, **({"only": list(only), "redo": redo} if only else {}),
                          checkpoint=checkpoint_identity(checkpoint(target)),
                          **({"flush_caches": True} if flush_caches else {}),
                          **({"earlier_runs": earlier} if earlier else {}))
        (out / "provenance.json").write_text(json.dumps(prov, indent=1, default=str))
        return prov

    # The spec's entries, run in passes of rising budget (PyTorch and TensorRT with the first), every
    # workload in a pass before the next: a sitting stopped early has the whole table at the small
    # budget, not a few workloads at every budget. The CSV keeps the spec's order.
    entries = [row for name in spec.workloads[scale] for method, budgets in spec.methods
               if (row := {"figure": spec.name, "scale": scale, "workload": name, "method": method,
                           "budget": budgets.get(scale)})["budget"] is not None
               or not get_method(method).tunes_subgraphs]  # a tuning method without a budget here: not run
    first = min((r["budget"] for r in entries if r["budget"] is not None), default=0)
    done_rows: dict[int, list[dict]] = {}
    sources: dict = {}

    def in_spec_order() -> list[dict]:
        return [r for i in sorted(done_rows) for r in done_rows[i]]

    # Rows measured before this resume take their places first: a table written mid-run shows them
    # (PyTorch's rows of a workload whose TLM row is re-run were missing from it until reached).
    for i, row in enumerate(entries):
        if _key(row) in kept:
            done_rows[i] = kept.pop(_key(row))
    if redo:  # the rows replaced are kept beside, not lost
        old = [r for i in sorted(done_rows) if entries[i]["workload"] in only for r in done_rows.pop(i)]
        if old:
            sup = out / "superseded.csv"
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            pd.DataFrame([{**r, "superseded_at": stamp} for r in old]).convert_dtypes().to_csv(
                sup, mode="a", header=not sup.exists(), index=False)  # budgets stay integers
    for i in sorted(range(len(entries)), key=lambda i: first if entries[i]["budget"] is None else entries[i]["budget"]):
        row, method, name = entries[i], entries[i]["method"], entries[i]["workload"]
        if i in done_rows or (only and name not in only):  # measured before this resume, or not asked for
            continue
        ok, why = get_method(method).available()
        if not ok:
            done_rows[i] = [{**row, "status": why if why.startswith("unavailable") else f"unavailable: {why}"}]
        else:
            log(f"{spec.name}: {name} with {method}" + (f" (budget {row['budget']})" if row["budget"] else ""))
            try:
                source = sources.get(name) or sources.setdefault(name, get_workload(name))
                done_rows[i] = _e2e_rows(row, source, method, out, target, seed, resume, flush_caches)
            except Exception as e:  # noqa: BLE001 (one model that fails to tune or build must not stop the sitting)
                # Recorded, not lost: the row says why, and `--resume` runs it again (its store kept).
                why = f"failed: {type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
                log(f"{spec.name}: {name} with {method}: {why}")
                done_rows[i] = [{**row, "status": why[:300]}]
        # budgets stay integers on resume
        pd.DataFrame(in_spec_order() + [r for e in kept.values() for r in e]).convert_dtypes().to_csv(csv, index=False)
        (out / "table.md").write_text(summary_markdown(in_spec_order(), sidecar(finished=False)))
    rows = in_spec_order()
    rows += [r for entry in kept.values() for r in entry]  # entries the spec no longer has: never dropped
    pd.DataFrame(rows).convert_dtypes().to_csv(csv, index=False)
    prov = sidecar(finished=len(done_rows) == len(entries))  # with `only`, when the others were done before
    (out / "table.md").write_text(summary_markdown(rows, prov))
    return {"figure": spec.name, "scale": scale, "out": str(out), "rows": rows, "wall_seconds": prov["wall_seconds"]}


def _key(row: dict) -> tuple:
    """A row's (workload, method of the spec, budget): PyTorch's two rows are one entry of the spec, and
    one method may be run at several budgets."""
    import pandas as pd

    method = "pytorch" if str(row["method"]).startswith("pytorch-") else row["method"]
    budget = row.get("budget")
    return row["workload"], method, None if budget is None or pd.isna(budget) else int(budget)


def _e2e_rows(row: dict, source, method: str, out: Path, target, seed: int, resume: bool,
              flush_caches: bool = False) -> list[dict]:
    """The rows of one (workload, method): PyTorch gives two (eager, inductor), a tuning method one."""
    from tlm_core.eval import e2e
    from tlm_core.ir.tasks import pipeline_of
    from tlm_core.measure.harness import MeasureConfig
    from tlm_core.methods import get_method

    if method == "pytorch":
        res = e2e.bench(source, target, method="pytorch")
        ind = res.get("inductor", {})
        return [{**row, "method": "pytorch-eager", "status": "ok", "latency_ms": res["eager_latency_ms"],
                 "max_abs_err": 0.0, "max_rel_err": 0.0},
                {**row, "method": "pytorch-inductor", "status": "ok" if "latency_ms" in ind else
                 f"failed: {ind.get('error')}", "latency_ms": ind.get("latency_ms"),
                 "compile_seconds": ind.get("compile_seconds"), "max_abs_err": ind.get("max_abs_err"),
                 "max_rel_err": ind.get("max_rel_err")}]
    if not get_method(method).tunes_subgraphs:
        return [{**row, "status": f"unavailable: no end-to-end bench for {method} in this driver"}]
    db = out / "stores" / f"{source.name}-{method}-{row['budget']}"
    if db.exists() and not resume:
        shutil.rmtree(db)
    tuned = e2e.tune_workload(source, method, row["budget"], db, target, seed=seed,
                              config=MeasureConfig(flush_caches=flush_caches, prune_slower=PRUNE_SLOWER))
    res = e2e.bench(source, target, db_dir=db)
    seal(db)  # finished: its records (and a search database) gzip-compressed, a tenth of the size
    return [{**row, "status": "ok", "latency_ms": res["latency_ms"], "eager_paired_ms": res.get("eager_paired_ms"),
             "max_abs_err": res["max_abs_err"],
             "max_rel_err": res["max_rel_err"], "tvm_threads": res["tvm_threads"],
             "compile_seconds": tuned["compile_seconds"], "compile_calls": tuned["compile_calls"],
             "compile_seconds_partial": tuned["compile_seconds_partial"], "tasks": tuned["tasks"],
             "measured": tuned["measured"], "failed": tuned["failed"], "slower": tuned.get("slower", 0),
             "weighted_latency_ms": tuned["weighted_latency_ms"],
             "untuned_subgraphs": len(res["untuned_subgraphs"]), "pipeline": pipeline_of(source),
             "paired_protocol": res.get("paired_protocol")}]


def retabulate_e2e(run: Path) -> dict:
    """Rewrite an end-to-end run's table.md from its e2e.csv (after the summary changed), nothing
    re-measured; provenance.json keeps the measurement's commits and records this one."""
    import pandas as pd

    from tlm_core.provenance import provenance

    if not (run / "e2e.csv").exists() or not (run / "provenance.json").exists():
        raise UserError(f"{run} is not an end-to-end run (no e2e.csv and provenance.json there)")
    prov = json.loads((run / "provenance.json").read_text())
    now = provenance(None)
    prov["retabulated"] = {"git_commit": now["git_commit"], "date": now["date"]}
    rows = pd.read_csv(run / "e2e.csv").to_dict("records")
    (run / "provenance.json").write_text(json.dumps(prov, indent=1, default=str))
    (run / "table.md").write_text(summary_markdown(rows, prov))
    return {"figure": prov.get("figure"), "out": str(run), "rows": len(rows)}


def summary_markdown(rows: list[dict], prov: dict) -> str:
    """Per workload: PyTorch eager and inductor beside each tuned method and budget (latency, speedup
    over eager and inductor, largest error), then how many workloads each beats eager and inductor on.
    A failed or unavailable entry is shown as such and counts as not beating anything."""
    import pandas as pd

    df = pd.DataFrame(rows)
    # The spec's workloads (a stopped run lists those it has not reached), then any other rows'.
    workloads = list(dict.fromkeys([*prov.get("workloads", []), *df.workload]))
    # The spec's tuned entries (from provenance: a stopped run shows those not run yet), then any other rows'
    planned = [(m, int(b[prov["scale"]])) for m, b in prov.get("methods", []) if (b or {}).get(prov.get("scale"))]
    tuned = [k for k in dict.fromkeys([*planned, *(_key(r)[1:] for r in rows)]) if k[0] not in ("pytorch", "tensorrt")]

    def get(w, method, budget=None):
        hit = [r for r in rows if r["workload"] == w and r["method"] == method
               and (budget is None or _key(r)[2] == budget)]
        return hit[0] if hit else None

    def ms(r):
        return None if r is None or r.get("status") != "ok" or pd.isna(r.get("latency_ms")) else float(r["latency_ms"])

    head = ["workload", "eager ms", "inductor ms"] + [f"{m}@{b} ms (x eager, x inductor)" for m, b in tuned] + \
        ["max abs err vs eager", "max rel err"]
    lines = [f"**{prov['figure']}** — scale `{prov['scale']}`, {prov['cpu']} "
             f"({(prov.get('target') or {}).get('mcpu', '?')}), {prov['target'].get('num_cores')} cores, "
             f"commit {str(prov.get('git_commit'))[:7]}, {str(prov.get('date'))[:10]}",
             "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    wins = {k: [0, 0] for k in tuned}
    ran = dict.fromkeys(tuned, 0)  # workloads with an entry (measured or failed) of the method
    for w in workloads:
        eager, ind = ms(get(w, "pytorch-eager")), ms(get(w, "pytorch-inductor"))
        cells = [w, _fmt(eager, get(w, "pytorch-eager")), _fmt(ind, get(w, "pytorch-inductor"))]
        errs, rels = [], []
        for m, b in tuned:
            r = get(w, m, b)
            ran[(m, b)] += r is not None
            lat = ms(r)
            if lat is None:
                cells.append(_fmt(None, r))
                continue
            errs.append(r.get("max_abs_err"))
            rels.append(r.get("max_rel_err"))
            wins[(m, b)][0] += eager is not None and lat < eager
            wins[(m, b)][1] += ind is not None and lat < ind
            ratio = [f"{x / lat:.2f}x" if x else "-" for x in (eager, ind)]
            cells.append(f"{lat:.2f} ({ratio[0]}, {ratio[1]})")
        for found in (errs, rels):  # rows of a run before the relative check have none: "-"
            found = [float(e) for e in found if e is not None and not pd.isna(e)]
            cells.append(f"{max(found):.1e}" if found else "-")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for (m, b), (e, i) in wins.items():
        lines.append(f"- {m}@{b} is faster than PyTorch eager on {e} of {len(workloads)} workloads and than "
                     f"inductor on {i} of {len(workloads)}"
                     + (f" ({len(workloads) - ran[(m, b)]} not run yet)" if ran[(m, b)] < len(workloads) else ""))
    lines += _paired_lines(rows, tuned)
    lines += _correctness_lines(rows, tuned)
    lines += _caveat_lines(rows, tuned)
    if not prov.get("finished", True):
        lines.append("- a stopped run (provenance `finished: false`): `--resume` runs what is missing")
    lines.append("- speedups are PyTorch's latency over the tuned model's (above 1: the tuned model is faster)")
    return "\n".join(lines) + "\n"


def _paired_lines(rows: list[dict], tuned: list) -> list[str]:
    """Per tuned entry, its speedups over PyTorch eager timed alternately with it in one process
    (`eager_paired_ms`): the table's eager column was timed minutes or days apart from the row, and
    this host's speed drifts more than the margins at stake."""
    import pandas as pd

    from tlm_core.eval.e2e import PAIRED_PROTOCOL

    lines = []
    for m, b in tuned:
        paired = [(r["workload"], float(r["eager_paired_ms"]) / float(r["latency_ms"])) for r in rows
                  if _key(r)[1:] == (m, b) and r.get("status") == "ok"
                  and r.get("eager_paired_ms") is not None and not pd.isna(r.get("eager_paired_ms"))]
        # Rows benched before paired protocol 2 timed the switch from PyTorch into the tuned model
        # (tlm_core/eval/e2e.py: _paired_median_seconds), which slowed the tuned model: marked.
        old = {r["workload"] for r in rows if _key(r)[1:] == (m, b) and r.get("status") == "ok"
               and _protocol(r) < PAIRED_PROTOCOL}
        if paired:
            lines.append(f"- {m}@{b} over eager timed alternately with it in one process: "
                         + ", ".join(f"{w} {x:.2f}x" + ("*" if w in old else "") for w, x in paired)
                         + f" (faster on {sum(x > 1 for _, x in paired)} of {len(paired)})"
                         + ("; * timed by paired protocol 1, which timed the switch from PyTorch into the tuned "
                            "model and slowed it: `--redo` benches it again" if old & {w for w, _ in paired} else ""))
    return lines


def _protocol(row: dict) -> int:
    """The paired-timing protocol a row was benched by (rows before the column: 1)."""
    import pandas as pd

    v = row.get("paired_protocol")
    return 1 if v is None or pd.isna(v) else int(v)


def _correctness_lines(rows: list[dict], tuned: list) -> list[str]:
    """The error bound every tuned model met, relative to the output's largest |eager| value: float32
    sums taken in another order differ by a few ulps, which for outputs near 100 exceeds any small
    absolute bound, so the absolute worst is given with the output's size and inductor's own worst."""
    import pandas as pd

    def val(r, k):
        v = r.get(k)
        return None if v is None or pd.isna(v) else float(v)

    ok = [r for r in rows if r.get("status") == "ok" and _key(r)[1:] in tuned and val(r, "max_rel_err") is not None]
    if not ok:
        return []
    worst_rel = max(ok, key=lambda r: val(r, "max_rel_err"))
    worst_abs = max(ok, key=lambda r: val(r, "max_abs_err") or 0.0)
    within = sum(val(r, "max_rel_err") <= 1e-4 for r in ok)
    a, rel = val(worst_abs, "max_abs_err") or 0.0, val(worst_abs, "max_rel_err")
    size = f", outputs up to {a / rel:.3g}" if rel else ""
    inductor = [val(r, "max_abs_err") for r in rows if r.get("method") == "pytorch-inductor"
                and r.get("status") == "ok" and val(r, "max_abs_err") is not None]
    return [f"- {within} of {len(ok)} tuned models within 1e-4 of eager relative to the output's largest value "
            f"(worst {val(worst_rel, 'max_rel_err'):.1e}, {worst_rel['workload']}); largest absolute error "
            f"{a:.1e} ({worst_abs['workload']}{size})"
            + (f"; inductor's largest {max(inductor):.1e}" if inductor else "")]


def _caveat_lines(rows: list[dict], tuned: list) -> list[str]:
    """What a row's number does not show: subgraphs the method left with no ok record, which the
    compiled model runs as TVM's unscheduled loops (a latency dominated by them measures that, not
    the method's programs), and compile times that leave out work from before the compile-time clock."""
    import pandas as pd

    def num(r, k):
        v = r.get(k)
        return 0 if v is None or pd.isna(v) else int(v)

    mine = [r for r in rows if r.get("status") == "ok" and _key(r)[1:] in tuned]
    unscheduled = [f"{r['workload']} {r['method']}@{int(r['budget'])} {num(r, 'untuned_subgraphs')} of {num(r, 'tasks')}"
                   for r in mine if num(r, "untuned_subgraphs")]
    partial = [f"{r['workload']} {r['method']}@{int(r['budget'])}" for r in mine
               if r.get("compile_seconds_partial") is True or str(r.get("compile_seconds_partial")) == "True"]
    lines = []
    if unscheduled:
        lines.append("- subgraphs run as TVM's unscheduled loops (every candidate failed or ran past the time "
                     "limit, so no record): " + ", ".join(unscheduled))
    if partial:
        lines.append("- compile seconds a lower bound (`compile_seconds_partial`: the store held work from "
                     "before the compile-time clock): " + ", ".join(partial))
    return lines


def _fmt(latency, row) -> str:
    if latency is not None:
        return f"{latency:.2f}"
    return "not run" if row is None else str(row.get("status"))
