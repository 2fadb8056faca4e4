"""The sitting: every number of a table run measured side by side, with one Measurer into one record
store. Each method's candidates (TLM's generated programs, the baseline's fastest programs from its
search log, Roller-style's ranked ones), measured together; per cell, the winner per subgraph by
that timing; the winners re-timed, interleaved; then the tables written. A module of its own because
this is the only part of the driver that measures: everything it hands on is latencies.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import asdict
from pathlib import Path

from benchmarks.reproduce import metrics
from benchmarks.reproduce.render import write
from benchmarks.reproduce.searchlog import (
    log_dir,
    log_info,
    log_machines,
    search,
    search_pace,
    table_log,
    trials_in_order,
)
from benchmarks.reproduce.selection import subgraphs
from benchmarks.tables import TableSpec
from tlm_core.errors import UserError
from tlm_core.eval.metrics import best_ok_per_task
from tlm_core.model.checkpoint import trained_elsewhere
from tlm_core.paths import REPO_ROOT, cache_dir
from tlm_core.ui import log, progress

REMEASURE = 3  # the baseline's fastest programs (by its own timings) measured again per cell
CURVE = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000, 2000, 5000, 10000)  # trials checkpoints (claims)
RETIME = 3  # every cell's winning program per subgraph is timed this many times again; the cell takes the median


def run_tables(specs: list[TableSpec], scale_name: str, outs: dict, target, seed: int = 0,
               resume: bool = False, challenger=None, rpc=None, shared_log: bool = False) -> list[dict]:
    """Measure one or more tables in one sitting: one Measurer and one record store, so that every
    number of every table is measured side by side; a subgraph shared by two tables is generated and
    measured once (content keys).

    `challenger`: a second checkpoint (or a list of them) whose TLM rows are measured in the same
    sitting (its finalists re-timed interleaved with the shipped model's), tabulated into
    `<out>-challenger/` (the second into `<out>-challenger-2/`, ...). Two models compared across
    sittings differ by the machine's drift as much as by their programs.
    The baseline's programs come from the target CPU's own search log where it has one (`search
    --own-cpu`; `shared_log` reads the shared one all the same), else from the shared log.
    """
    from tlm_core.measure.harness import Candidate, MeasureConfig, Measurer
    from tlm_core.methods import extra_json
    from tlm_core.provenance import code_state

    started = time.perf_counter()
    code_state()  # the commit this run starts from is the one its provenance names
    plans = []
    for spec in specs:
        scale = spec.scales[scale_name]
        # The baseline's log first: a missing or broken shipped log is a user error before anything is measured.
        cpu = None if scale.search_live else table_log(spec, target, shared_log)
        if scale.search_live:
            for b in sorted(scale.trials):
                search(spec, b, target, seed, rpc)
        info = log_info(spec, cpu)
        if info["trials"] == 0:
            raise UserError(f"no search log of {spec.baseline} at {log_dir(spec, cpu)}; run `python -m "
                            f"benchmarks.reproduce search {spec.name} --trials 64` (or use --scale full)")
        elsewhere = None if scale.search_live else log_machines(info, target.hardware)
        if elsewhere:
            log(f"{spec.name}: the {spec.baseline} log was {elsewhere}")
        log(f"{spec.name}: the {spec.baseline} programs come from {log_dir(spec, cpu)}")
        plans.append({"spec": spec, "scale": scale, "entries": subgraphs(spec, scale.subgraphs), "info": info,
                      "elsewhere": elsewhere, "tried": trials_in_order(spec, cpu),
                      "log": str(log_dir(spec, cpu).relative_to(REPO_ROOT))})
    union = list({t.hash: (w, t) for p in plans for w, t in p["entries"]}.values())
    store = cache_dir() / "reproduce" / f"{'-'.join(s.name for s in specs)}-{scale_name}" / "store"
    if store.exists() and not resume:
        shutil.rmtree(store)  # the numbers of a run come from one sitting: measured side by side

    with Measurer(target, store, MeasureConfig()) as m:
        # 1. TLM: the greedy program, then samples.
        times = sorted({k for p in plans for k in p["scale"].tlm_times})
        others = [challenger] if isinstance(challenger, (str, Path)) else list(challenger or [])
        models = {"": checkpoint(target)} | {"-challenger" + (f"-{i}" if i > 1 else ""): Path(c)
                                             for i, c in enumerate(others, 1)}
        for ckpt in models.values():
            if elsewhere := trained_elsewhere(ckpt, target.hardware):
                log(f"the model {ckpt} was {elsewhere}")
        gens = {name: _tlm_candidates(union, target, times, seed, ckpt) for name, ckpt in models.items()}
        # 1b. tlm-ranked (beyond the paper): one ranked pool per subgraph and model, its rows picked from it.
        ranked_times = sorted({k for p in plans for k in p["scale"].ranked_times})
        for name, ckpt in models.items():
            gens[name].update(_ranked_candidates(union, target, ranked_times, seed, ckpt) if ranked_times else {})
        # 2. Each baseline's best programs at each column's trials (and the claims' checkpoints).
        for p in plans:
            spec, tried = p["spec"], p["tried"]
            # The claims' time to B trials: per subgraph, its trials at the pace of the segment that
            # searched them (a subgraph with a small space has fewer than asked); the mean is reported.
            p["seconds_per_trial"] = sum(s["seconds"] for s in p["info"]["segments"]) / sum(map(len, tried.values()))
            p["pace"] = search_pace(p["info"], {h: len(v) for h, v in tried.items()})
            p["points"] = sorted({b for b in (*p["scale"].trials, *CURVE) if b <= p["info"]["trials"]})
            p["base"] = {b: [Candidate(t, trace, w, spec.baseline, extra_json(
                                 trials=b, search_rank=r, search_mean_s=None if sec == math.inf else sec))
                             for w, t in p["entries"]
                             for r, (trace, sec) in enumerate(top(tried.get(t.hash, []), b,
                                                                  REMEASURE if b in p["scale"].trials else 1))]
                         for b in p["points"]}
        # 3. Roller-style, for the equal-time claim.
        budget = max(p["scale"].roller_budget for p in plans)
        roller, roller_s = _roller_candidates(union, target, budget, seed) if budget else ({}, {})
        # All of a subgraph's candidates together: its unscheduled reference (naive loops, up to a
        # minute for the biggest subgraphs) then runs once, not once per method.
        everything: dict[str, list] = {t.hash: [*(c for g in gens.values() for c in g["tlm"][t.hash]),
                                                *(c for g in gens.values() for cs in g.get("ranked", {}).get(
                                                    t.hash, {}).values() for c in cs),
                                                *roller.get(t.hash, [])] for _, t in union}
        for p in plans:
            for cands in p["base"].values():
                for c in cands:
                    everything[c.task.hash].append(c)
        m.measure([c for cs in everything.values() for c in cs], desc="measure (tlm, baselines, roller)")
        records = {r["key"]: r for r in m.store}
        # 4. The finalists: each cell's winning program per subgraph, selected by the timing above, is
        # valued by RETIME fresh timings (Measurer.retime: the best of many single timings is biased
        # low, and more so for the method with more candidates).
        finalists = [w for p in plans for g in gens.values() for cands in _cell_candidates(p, g, roller).values()
                     for w in winners(cands, records, m.key).values()]
        finalists.sort(key=lambda c: c.task.hash)  # a subgraph's finalists side by side
        retimed = {m.key(c): recs for c, recs in zip(finalists, m.retime(finalists, RETIME, "re-time the finalists"))}
        key = m.key

    ctx = {"records": records, "retimed": retimed, "key": key, "roller": roller, "roller_s": roller_s,
           "target": target, "seed": seed, "started": started}
    return [_tabulate(p, outs[p["spec"].name].with_name(outs[p["spec"].name].name + name),
                      {**ctx, **g, "checkpoint": models[name]})
            for name, g in gens.items() for p in plans]


def _tabulate(plan: dict, out: Path, ctx: dict) -> dict:
    """One table's cells, per-subgraph bests and claims from the run's records; written to `out`."""
    from tlm_core.measure.harness import OK
    from tlm_core.provenance import checkpoint_identity, provenance

    spec, scale, entries, info, points = plan["spec"], plan["scale"], plan["entries"], plan["info"], plan["points"]
    tasks = [t for _, t in entries]
    records, key = ctx["records"], ctx["key"]

    selected: dict[tuple[str, str], float] = {}  # (label, task hash) -> the selecting timing
    retime_failed: list[str] = []

    def best(cands, label: str) -> dict[str, float]:
        """Per subgraph: the median of the re-timings of the program the first timing selected."""
        b: dict[str, float] = {}
        for h, c in winners(cands, records, key).items():
            selected[(label, h)] = records[key(c)]["latency_s"]
            ok = sorted(r["latency_s"] for r in ctx["retimed"][key(c)] if r and r["status"] == OK)
            if not ok:  # it ran once and not again (a timeout under load): its one timing, and say so
                retime_failed.append(f"{label}:{c.task.name}")
            b[h] = ok[len(ok) // 2] if ok else selected[(label, h)]
        return b

    def seconds(cands, gen: dict) -> float:
        """Generation seconds of the tasks + build and run seconds of the candidates (one at a time)."""
        meas = sum((records[key(c)].get("build_s") or 0) + (records[key(c)].get("run_s") or 0) for c in cands)
        return round(sum(gen.get(t.hash, 0.0) for t in tasks) + meas, 1)

    cands = _cell_candidates(plan, ctx, ctx["roller"])
    methods = {label: best(cs, label) for label, cs in cands.items()}  # label -> {task hash: seconds}
    rows = []
    for k in scale.tlm_times:
        gen = {h: by_k[k] for h, by_k in ctx["gen_s"].items()}
        rows.append({"label": f"tlm@{k}", "measurements": k, "compile_seconds": seconds(cands[f"tlm@{k}"], gen),
                     "generation_seconds": round(sum(gen[t.hash] for t in tasks), 1)})
    for k in scale.ranked_times:  # compile time: generation + ranking of the pool, then its k measurements
        rows.append({"label": f"tlm-ranked@{k}", "measurements": k,
                     "compile_seconds": seconds(cands[f"tlm-ranked@{k}"], ctx["ranked_s"]),
                     "generation_seconds": round(sum(ctx["ranked_s"][t.hash] for t in tasks), 1)})
    roller = None
    if scale.roller_budget:
        label = f"roller@{scale.roller_budget}"
        roller = {"budget": scale.roller_budget, "best": methods[label],
                  "seconds": seconds(cands[label], ctx["roller_s"])}

    def ms(v):
        return None if v is None else round(v * 1e3, 6)

    per_sub = [{"table": spec.name, "scale": scale.name, "label": label, "workload": w, "subgraph": t.name,
                "hash": t.hash, "weight": t.weight, "best_ms": ms(b.get(t.hash)),
                "selected_ms": ms(selected.get((label, t.hash)))}
               for label, b in methods.items() for w, t in entries]
    cells = metrics.cells(spec, scale, tasks, methods, points, info, plan.get("elsewhere"))
    claims = metrics.claims(spec, scale, tasks, methods, [r for r in rows if r["label"].startswith("tlm@")],
                            points, plan, roller)
    prov = provenance(ctx["target"], scale=scale.name, table=spec.name, seed=ctx["seed"], scale_settings=asdict(scale),
                      subgraphs=len(tasks), baseline_log=info, tlm_invalid=ctx["invalid"],
                      tlm_ranked_invalid=ctx.get("ranked_invalid"), ranker=ctx.get("ranker"),
                      wall_seconds_of_the_sitting=round(time.perf_counter() - ctx["started"], 1),
                      checkpoint=checkpoint_identity(ctx["checkpoint"]), tlm_rows=rows, retime_rounds=RETIME,
                      retime_failed=retime_failed, baseline_log_machine=plan.get("elsewhere") or "this machine",
                      baseline_log_folder=plan["log"],
                      model_machine=trained_elsewhere(ctx["checkpoint"], ctx["target"].hardware) or "this machine")
    out.mkdir(parents=True, exist_ok=True)
    write(out, spec, cells, per_sub, claims, prov)
    return {"table": spec.name, "scale": scale.name, "out": str(out), "cells": cells, "claims": claims,
            "wall_seconds": prov["wall_seconds_of_the_sitting"]}


def _cell_candidates(plan: dict, gen: dict, roller: dict) -> dict[str, list]:
    """Label (tlm@k, tlm-ranked@k, baseline@B, roller@k) -> the candidates its cell chooses from, all subgraphs.
    `gen`: one model's candidates ("tlm": per task its list; "ranked": per task and k its picks)."""
    tasks, scale, spec = [t for _, t in plan["entries"]], plan["scale"], plan["spec"]
    out = {f"tlm@{k}": [c for t in tasks for c in gen["tlm"][t.hash][:k]] for k in scale.tlm_times}
    out.update({f"tlm-ranked@{k}": [c for t in tasks for c in gen["ranked"][t.hash][k]] for k in scale.ranked_times})
    out.update({f"{spec.baseline}@{b}": plan["base"][b] for b in plan["points"]})
    if scale.roller_budget:
        out[f"roller@{scale.roller_budget}"] = [c for t in tasks for c in roller[t.hash][:scale.roller_budget]]
    return out


def winners(cands, records: dict, key) -> dict:
    """Per task hash: the candidate whose (selecting) timing is the lowest; subgraphs without one absent."""
    return best_ok_per_task(cands, record=lambda c: records.get(key(c)), task=lambda c: c.task.hash)


def _roller_candidates(entries, target, budget: int, seed: int):
    """Per task hash: Roller-style's `budget` programs (ranked by its model); its seconds per task."""
    from tlm_core.methods import roller

    lists, secs = {}, {}
    for w, t in progress(entries, "roller: rank", unit="subgraph"):
        start = time.perf_counter()
        lists[t.hash] = roller.candidates(w, t, target, budget, seed)
        secs[t.hash] = time.perf_counter() - start
    return lists, secs


def checkpoint(target):
    """The model the TLM rows use: $TLM_CHECKPOINT, else the shipped model for the target's CPU."""
    from tlm_core.methods.tlm import checkpoint as of_target

    return of_target(target.hardware)


def _tlm_candidates(entries, target, times: list[int], seed: int, checkpoint: Path):
    """Per task hash: [greedy, then max(times)-1 samples] distinct candidates; per task hash and k, the
    seconds to generate TLM@k's programs (greedy + k-1 samples, each k timed by its own generation run
    with the same seed); the invalid count over all runs (0 by construction)."""
    from tlm_core.model.checkpoint import load
    from tlm_core.model.generate import task_seed
    from tlm_core.train.demonstrations import generated_candidates

    model, _ = load(checkpoint)
    kmax = max(times)
    lists, seconds, invalid = {}, {}, 0
    for w, t in progress(entries, f"tlm ({checkpoint.name}): generate", unit="subgraph"):
        s = task_seed(seed, t.hash)
        greedy, r1 = generated_candidates(model, w, t, target, 1, s, temperature=0.0)
        cands, by_k, invalid = list(greedy), {1: r1.seconds}, invalid + r1.invalid
        for k in sorted(set(times) - {1}):
            sampled, r = generated_candidates(model, w, t, target, k - 1, s)
            by_k[k] = r1.seconds + r.seconds
            invalid += r.invalid
            if k == kmax:  # the programs of the largest run are the list; smaller runs only time generation
                seen = {c.trace for c in cands}
                cands += [c for c in sampled if c.trace not in seen]
        lists[t.hash], seconds[t.hash] = cands, by_k
    return {"tlm": lists, "gen_s": seconds, "invalid": invalid}


def _ranked_candidates(entries, target, times: list[int], seed: int, checkpoint: Path) -> dict:
    """tlm-ranked's candidates: per subgraph one pool of pool_size(max(times)) programs generated by the
    model and scored by the shipped ranker, and per k its picks (`tlm_ranked.pick`, as `tlm tune
    --method tlm-ranked --budget k` picks from the same pool); per task hash the pool's generation and
    ranking seconds (every row's own, before measuring); the invalid count; the ranker's identity."""
    from tlm_core.methods.tlm_ranked import pick, pool_size, ranked_pool
    from tlm_core.model.checkpoint import load
    from tlm_core.rank.ranker import load_shipped

    model, _ = load(checkpoint)
    ranker = load_shipped()
    size = pool_size(max(times))
    lists, seconds, invalid = {}, {}, 0
    for w, t in progress(entries, f"tlm-ranked ({checkpoint.name}): generate {size} and rank", unit="subgraph"):
        pool = ranked_pool(model, ranker, w, t, target, size, seed)
        lists[t.hash] = {k: pick(pool, t, k, seed) for k in times}
        seconds[t.hash] = pool.seconds
        invalid += pool.invalid
    return {"ranked": lists, "ranked_s": seconds, "ranked_invalid": invalid, "ranker": ranker.identity()}


def top(trials: list[tuple[str, float]], b: int, k: int) -> list[tuple[str, float]]:
    """The k fastest distinct programs among the first b trials (by the search's own timings)."""
    out, seen = [], set()
    for trace, s in sorted(trials[:b], key=lambda x: x[1]):
        if trace not in seen:
            seen.add(trace)
            out.append((trace, s))
        if len(out) == k:
            break
    return out
