"""Reproduce the paper's Tables 2 and 3, Figures 10 and 13 and its two claims: one driver, loops over the
specs of `benchmarks.tables`.

    python -m benchmarks.reproduce table2|table3|tables|claims|figure10|figure13|methods --scale smoke|default|full
    python -m benchmarks.reproduce search table2 --trials 1000   # extend the baseline's search log (resumable)
    python -m benchmarks.reproduce search table2 --trials 1000 --rpc HOST:PORT:KEY   # trials on RPC servers
    python -m benchmarks.reproduce select                        # re-draw data/tables/subgraphs.json
    python -m benchmarks.reproduce compare RUN_DIR...            # finished runs side by side (no measuring)
    python -m benchmarks.reproduce retabulate RUN_DIR...         # rewrite table.csv/md from subgraphs.csv

A table run (`tables`: both in one sitting) measures everything with one Measurer into one fresh record
store (.cache/reproduce/), side by side:
  1. TLM: per subgraph, the greedy program and then `max(tlm_times) - 1` samples of the shipped model
     (or $TLM_CHECKPOINT); TLM@k is the best of the first k distinct programs of that list. The samples
     come in turn over the sketches (`generate`), so the first k spread over the sketches as a run
     for k would; grouped by sketch, TLM@k < 64 missed the last sketches (the matmuls' fastest).
  2. The baseline (Ansor-style or MetaSchedule): its search log holds every trial in the order tried;
     the baseline at B trials is the best of the first B trials per subgraph. Its 3 fastest programs
     there (by the search's own timings) are measured again here, and the best of those is the cell's.
     At smoke/default scale the log comes from data/baselines/ (searched earlier by `search`, on the
     machine its search.json names: on another CPU the table says so); a column whose trials the log
     lacks is shown as missing.
  3. Roller-style's top `roller_budget` programs per subgraph, for the equal-compile-time claim.
  4. The finalists: the program each cell's method chose per subgraph (by the timings above) is timed
     RETIME more times, interleaved with the other finalists of its subgraph; the median is the cell's
     value (the minimum of many single timings is biased low, most for the method with most programs).
Outputs in ROOT/<table>/<scale>/ (ROOT: --out, default results/): table.csv (one row per cell),
subgraphs.csv (best latency per subgraph, method and budget), claims.json, table.md, provenance.json.
An end-to-end run (figure10, figure13, and `methods`: every method of the registry at one small budget)
tunes, compiles and benches each workload with each method: ROOT/<figure>/<scale>/e2e.csv and
provenance.json. `python -m figures.plot` draws them all.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.tables import FIGURES, TABLES, TableSpec, select
from tlm_core.errors import UserError
from tlm_core.model.checkpoint import trained_elsewhere
from tlm_core.paths import REPO_ROOT, cache_dir, data_dir
from tlm_core.ui import emit_json, log, progress

SUBGRAPHS = "tables/subgraphs.json"
REMEASURE = 3  # the baseline's fastest programs (by its own timings) measured again per cell
CURVE = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000, 2000, 5000, 10000)  # trials checkpoints (claims)
RETIME = 3  # every cell's winning program per subgraph is timed this many times again; the cell takes the median


# -- subgraphs ---------------------------------------------------------------------------------------
def cmd_select(args) -> None:
    """Extract the test workloads' tasks and write the seeded selection (largest table's size)."""
    from tlm_core.ir.target import resolve_target
    from tlm_core.ir.tasks import extract_tasks
    from tlm_core.ir.workloads.zoo import TEST
    from tlm_core.provenance import provenance

    target = resolve_target(args.target)
    entries = [(w.name, t) for w in progress(TEST, "extract test workloads") for t in extract_tasks(w, target)]
    n = max(s.subgraphs for s in TABLES.values())
    chosen = select(entries, n)
    doc = {"rule": "benchmarks/tables.py (module docstring)", "provenance": provenance(target),
           "subgraphs": [{"workload": w, **t.summary(), "mod": t.mod_json} for w, t in chosen]}
    out = data_dir() / SUBGRAPHS
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1))
    log(f"wrote {len(chosen)} subgraphs to {out}")


def subgraphs(spec: TableSpec, n: int | None = None) -> list[tuple[str, object]]:
    """(workload, Task) of a table, in selection order (the first n when n is given)."""
    from tlm_core.ir.tasks import Task

    path = data_dir() / SUBGRAPHS
    if not path.exists():
        raise UserError(f"{path} is missing; run `python -m benchmarks.reproduce select`")
    rows = json.loads(path.read_text())["subgraphs"][: spec.subgraphs]
    rows = rows[:n] if n else rows
    return [(r["workload"], Task(r["name"], r["weight"], r["flops"], r["hash"], r["mod"])) for r in rows]


# -- the baseline's search log ----------------------------------------------------------------------
def log_dir(spec: TableSpec) -> Path:
    return data_dir() / "baselines" / f"{spec.name}-{spec.baseline}"


def log_info(spec: TableSpec) -> dict:
    path = log_dir(spec) / "search.json"
    return json.loads(path.read_text()) if path.exists() else {"trials": 0, "segments": []}


#: MetaSchedule's JSONDatabase appends its records to RECORDS in the log's folder, a working copy (not
#: committed); the log shipped in data/ is SHIPPED, that file gzip-compressed (~47x smaller: Table 3's
#: log at 1K trials per subgraph is 73 MB of JSON, 1.6 MB compressed), written at each segment's end.
#: Readers read SHIPPED only, so they see exactly the trials search.json's segments account for.
RECORDS, SHIPPED = "database_tuning_record.json", "database_tuning_record.json.gz"


def log_records(folder: Path) -> list[str]:
    """The shipped log's records, one JSON line each, in the order tried ([] when there is none)."""
    path = folder / SHIPPED
    if not path.exists():
        return []
    with gzip.open(path, "rt") as f:
        return [line for line in f.read().splitlines() if line.strip()]


def _working_log(folder: Path) -> None:
    """Make RECORDS the shipped log or a continuation of it (trials of a search killed mid-subgraph).

    A fresh clone, or a shipped log that went on elsewhere (pulled), replaces a working copy it
    extends. A working copy ahead of the shipped log (its search was killed before its segment was
    written) is shipped as it is: those trials were measured, though no segment times them. One that
    disagrees with the shipped log is a user error rather than a silent loss of either's trials.
    """
    shipped, work = folder / SHIPPED, folder / RECORDS
    if not shipped.exists():
        if work.exists():
            _ship_log(folder)
        return
    with gzip.open(shipped, "rb") as f:
        ours = f.read()
    theirs = work.read_bytes() if work.exists() else b""
    if theirs.startswith(ours):
        if len(theirs) > len(ours):
            _ship_log(folder)
        return
    if not ours.startswith(theirs):
        raise UserError(f"{work} is not a continuation of {shipped} (each holds trials the other lacks); "
                        f"move {work.name} away to go on from the shipped log")
    tmp = work.with_suffix(".tmp")
    tmp.write_bytes(ours)
    tmp.replace(work)


def _ship_log(folder: Path) -> None:
    """Compress the working copy into the shipped log: deterministic (no timestamp), replaced atomically."""
    tmp = folder / (SHIPPED + ".tmp")
    with (folder / RECORDS).open("rb") as src, tmp.open("wb") as raw, \
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as out:
        shutil.copyfileobj(src, out, 1 << 20)
    tmp.replace(folder / SHIPPED)


def log_machines(info: dict, hardware) -> str | None:
    """None when every segment of the log was searched on this `hardware`, else where its trials were, in words.

    A log searched on another CPU still gives programs to re-measure here, but its choice of them (by
    that machine's timings) and its search seconds (the claims' baseline time) are that machine's. A log
    searched partly here and partly elsewhere (Table 2's and 3's, to 1K) is both: each part says which
    trials.
    """
    from tlm_core.ir.target import describe, other_than

    parts: dict[str, dict] = {}  # machine in words -> what it searched
    for seg in info["segments"]:
        other = other_than([seg.get("provenance", {}).get("target")], hardware)
        part = parts.setdefault(other[0] if other else "this machine", {"first": 0, "more": 0, "of": set()})
        if "hash" in seg:  # one subgraph's segment: the trials it committed
            part["more"] += seg.get("trials", 0)
            part["of"].add(seg["hash"])
        else:  # a segment that searched every subgraph at once, to its `trials`
            part["first"] = max(part["first"], seg.get("trials", 0))
    if set(parts) <= {"this machine"}:
        return None

    def what(part: dict) -> str:
        return " and ".join(([f"the first {part['first']} trials of every subgraph"] if part["first"] else [])
                            + ([f"{part['more']:,} trials of {len(part['of'])} subgraphs"] if part["of"] else []))
    other, here = sorted(m for m in parts if m != "this machine"), describe(json.loads(hardware.to_json()))
    if "this machine" not in parts:
        return (f"searched on {', '.join(other)}; this machine is {here}: the log's programs are "
                "re-measured here, but which ones (chosen by that machine's timings) and the search seconds (the "
                "claims' baseline time) are that machine's")
    return (f"searched partly on {', '.join(f'{m} ({what(parts[m])})' for m in other)}, the rest on this machine, "
            f"{here} ({what(parts['this machine'])}); every program is re-measured here, but which ones "
            "the log offers were chosen by the timings of the machine that searched them, and each part's search "
            "seconds (the claims' baseline time) are its machine's")


#: MetaSchedule keeps searching a subgraph whose space it has exhausted (an element-wise subgraph with
#: one distinct program is asked for 63 more, a population of 2048 at a time, and commits nothing): a
#: search that commits no trial for this long (from its start or its last commit) is stopped, timed to
#: its last committed trial, and the subgraph marked exhausted.
STALL_SECONDS = 300


def log_counts(folder: Path) -> dict[str, int]:
    """Subgraph hash -> trials its log holds (records of workloads the log has not seen count 0)."""
    from tvm.s_tir import meta_schedule as ms

    from tlm_core.ir.tasks import structural_hash

    records = log_records(folder)
    if not records:
        return {}
    hashes = [structural_hash(ms.database.Workload.from_json(json.loads(line)).mod)
              for line in (folder / "database_workload.json").read_text().splitlines() if line.strip()]
    counts: dict[str, int] = {}
    for line in records:
        h = hashes[json.loads(line)[0]]
        counts[h] = counts.get(h, 0) + 1
    return counts


def reached(info: dict, counts: dict[str, int]) -> tuple[dict[str, int], set[str]]:
    """Per subgraph: the trials its searches were asked for and reached, and the exhausted ones.

    Logs searched all subgraphs at once before per-subgraph entries existed: every subgraph reached the
    log's trials, and one holding fewer ended short because MetaSchedule found no new program for it.
    """
    if "reached" in info:
        return dict(info["reached"]), set(info.get("exhausted", []))
    n = info.get("trials", 0)
    return ({h: n for h in counts}, {h for h, c in counts.items() if c < n}) if n else ({}, set())


def search(spec: TableSpec, trials: int, target, seed: int = 0, rpc=None) -> dict:
    """Extend the table's baseline log to `trials` per subgraph, one subgraph at a time.

    MetaSchedule continues from the log (its database), so the search resumes wherever it stopped: a
    subgraph's records are appended as they are measured, and each subgraph's segment (trials, wall
    seconds, machine) is written when it ends, also when stopped (Ctrl-C, SIGTERM: the log stays valid,
    and the next `search` goes on from the trials it holds). A subgraph whose space ran out is not
    searched again. The log's `trials` is what every subgraph reached: the tables' columns up to it.
    With `rpc` (a metaschedule.Tracker) the trials run on the tracker's servers, several at a time.
    Each subgraph's search is a forked child: call this from a process whose OpenMP pool has not
    started (the CLI's), as a fork of a running libgomp pool crashes in the child's XGBoost.
    """
    import multiprocessing
    import os
    import signal

    from tlm_core.provenance import provenance

    folder = log_dir(spec)
    folder.mkdir(parents=True, exist_ok=True)
    _working_log(folder)
    records = folder / RECORDS
    entries = subgraphs(spec)
    tasks, workload_of = [t for _, t in entries], {t.hash: w for w, t in entries}
    hashes = [t.hash for t in tasks]
    info = log_info(spec)
    counts = log_counts(folder)
    done, exhausted = reached(info, counts)
    todo = [t for t in tasks if done.get(t.hash, 0) < trials and t.hash not in exhausted
            and counts.get(t.hash, 0) < trials]
    for t in tasks:  # an exhausted space reaches any number of trials (and a full one its own)
        if t not in todo:
            done[t.hash] = max(done.get(t.hash, 0), trials)
    if not todo:
        return _write_log_info(spec, info, hashes, done, exhausted)
    asked = {t.hash: trials - counts.get(t.hash, 0) for t in todo}
    runner = rpc.describe(rpc.servers()) if rpc else "local"
    log(f"{spec.baseline}: searching {sum(asked.values())} more trials on {len(todo)} of {len(tasks)} subgraphs "
        f"(to {trials} each, one at a time, resumable) into {folder}")

    def stop(*_):
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGTERM, stop)  # a stopped search still writes its segment
    try:
        with progress(desc=f"{spec.baseline}: search (trials committed)", total=sum(asked.values()),
                      unit="trial") as bar:
            for i, t in enumerate(todo):
                offset = sum(asked[u.hash] for u in todo[:i])
                lines = sum(1 for _ in records.open()) if records.exists() else 0
                start = last = time.time()
                # A child process in its own process group: a stalled search is stopped with its worker pools.
                child = multiprocessing.get_context("fork").Process(
                    target=_search_child,
                    args=(spec.baseline, [t], target, asked[t.hash], str(folder), seed + len(info["segments"]), rpc))
                child.start()
                how, n = "completed", 0
                try:
                    while child.is_alive():
                        child.join(10)
                        now = (sum(1 for _ in records.open()) if records.exists() else 0) - lines
                        if now > n:
                            n, last = now, time.time()
                            bar.n = offset + n
                            bar.refresh()
                        if time.time() - last > STALL_SECONDS:
                            os.killpg(child.pid, signal.SIGKILL)
                            child.join()
                            how = f"stopped: no trial committed for {STALL_SECONDS} s; timed to its last trial"
                except KeyboardInterrupt:
                    os.killpg(child.pid, signal.SIGKILL)
                    child.join()
                    how = "interrupted; timed to its last committed trial"
                if how == "completed" and child.exitcode != 0:
                    raise UserError(f"the {spec.baseline} search of {t.name} failed (exit {child.exitcode}); "
                                    "see the messages above")
                new = (sum(1 for _ in records.open()) if records.exists() else 0) - lines
                end = time.time() if how == "completed" else (records.stat().st_mtime if new else start)
                if how.startswith("stopped") or (how == "completed" and new < asked[t.hash]):
                    exhausted.add(t.hash)  # MetaSchedule found no new program: its space ran out
                if not how.startswith("interrupted"):
                    done[t.hash] = trials
                if records.exists():
                    _ship_log(folder)  # before search.json: it never counts trials the shipped log lacks
                info = _add_segment(spec, info, workload_of[t.hash], t, trials, asked[t.hash], new,
                                    round(end - start, 1), provenance(target, seed=seed), how, runner)
                info = _write_log_info(spec, info, hashes, done, exhausted)
                if how.startswith("interrupted"):
                    raise KeyboardInterrupt
    finally:
        signal.signal(signal.SIGTERM, previous)
    return info


def search_pace(info: dict, counts: dict[str, int]) -> dict[str, list[tuple[int, float]]]:
    """Per subgraph, its trials in the order searched as (trials, seconds per trial) pieces.

    A segment of one subgraph has its own pace; a segment that searched all subgraphs at once (the logs
    before per-subgraph search) shares its seconds over the trials it committed, which are those the
    per-subgraph segments did not. A log continued on another machine is timed piece by piece.
    """
    own = [s for s in info["segments"] if "hash" in s]
    shared = [s for s in info["segments"] if "hash" not in s]
    later = {h: sum(s["trials"] for s in own if s["hash"] == h) for h in counts}
    first = {h: max(n - later[h], 0) for h, n in counts.items()}
    shared_pace = sum(s["seconds"] for s in shared) / max(sum(first.values()), 1)
    return {h: [(first[h], shared_pace)] + [(s["trials"], s["seconds"] / s["trials"])
                                           for s in own if s["hash"] == h and s["trials"]] for h in counts}


def seconds_to(pace: list[tuple[int, float]], trials: int) -> float:
    """Wall seconds a subgraph's search took to its first `trials` trials."""
    total, left = 0.0, trials
    for n, per in pace:
        total += min(left, n) * per
        left -= min(left, n)
    return total


def _search_child(name, tasks, target, budget, folder, seed, rpc=None) -> None:
    import os

    from tlm_core.methods import metaschedule

    os.setpgrp()
    metaschedule.search(name, metaschedule.CONFIGS[name], tasks, target, budget, folder, seed, rpc)


def _add_segment(spec: TableSpec, info: dict, workload: str, task, trials: int, asked: int, new: int, seconds: float,
                 prov: dict, how: str, runner: str = "local") -> dict:
    """A finished (or stopped) search of one subgraph: its wall time per trial is the claims' baseline time."""
    import os

    from tlm_core.methods import metaschedule

    cfg = metaschedule.CONFIGS[spec.baseline]
    # The load average at its end says whether it ran alone (about 2 on 2 cores: the search's own
    # builder and runner) or beside other work, which inflates its seconds per trial.
    seg = {"workload": workload, "subgraph": task.name, "hash": task.hash, "to": trials, "asked": asked, "trials": new,
           "seconds": seconds, "how": how, "runner": runner, "load_average": [round(x, 2) for x in os.getloadavg()],
           "search": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__}, "provenance": prov}
    return {**info, "segments": [*info["segments"], seg]}


def _write_log_info(spec: TableSpec, info: dict, hashes: list[str], done: dict[str, int], exhausted: set[str]) -> dict:
    """search.json: segments, per subgraph (`hashes`, the table's) the trials reached, and the log's trials."""
    info = {"method": spec.baseline, "trials": min(done.get(h, 0) for h in hashes), "subgraphs": len(hashes),
            "reached": {h: done.get(h, 0) for h in hashes}, "exhausted": sorted(exhausted & set(hashes)),
            "segments": info["segments"]}
    (log_dir(spec) / "search.json").write_text(json.dumps(info, indent=1))
    return info


def trials_in_order(spec: TableSpec) -> dict[str, list[tuple[str, float]]]:
    """Task hash -> [(trace JSON, mean seconds by the search's runner)] in the order tried."""
    from tvm.s_tir import meta_schedule as ms

    from tlm_core.ir.tasks import structural_hash
    from tlm_core.measure.harness import trace_to_json

    folder = log_dir(spec)
    workloads = [ms.database.Workload.from_json(json.loads(line))
                 for line in (folder / "database_workload.json").read_text().splitlines() if line.strip()]
    out: dict[str, list] = {}
    for line in log_records(folder):
        index, obj = json.loads(line)
        w = workloads[index]
        rec = ms.database.TuningRecord.from_json(obj, w)
        secs = [float(x) for x in rec.run_secs] if rec.run_secs is not None else []
        mean = sum(secs) / len(secs) if secs else math.inf
        out.setdefault(structural_hash(w.mod), []).append((trace_to_json(rec.trace), mean))
    return out


# -- the tables -------------------------------------------------------------------------------------
def run_tables(specs: list[TableSpec], scale_name: str, outs: dict, target, seed: int = 0,
               resume: bool = False, challenger: Path | None = None, rpc=None) -> list[dict]:
    """Measure one or more tables in one sitting: one Measurer and one record store, so that every
    number of every table is measured side by side; a subgraph shared by two tables is generated and
    measured once (content keys).

    `challenger`: a second checkpoint whose TLM rows are measured in the same sitting (its finalists
    re-timed interleaved with the shipped model's), tabulated into `<out>-challenger/`. Two models
    compared across sittings differ by the machine's drift as much as by their programs.
    """
    from tlm_core.measure.harness import Candidate, MeasureConfig, Measurer
    from tlm_core.methods import extra_json
    from tlm_core.provenance import code_state

    started = time.perf_counter()
    code_state()  # the commit this run starts from is the one its provenance names
    plans = []
    for spec in specs:
        scale = spec.scales[scale_name]
        # The baseline's log first: a missing shipped log is a user error before anything is measured.
        if scale.search_live:
            for b in sorted(scale.trials):
                search(spec, b, target, seed, rpc)
        info = log_info(spec)
        if info["trials"] == 0:
            raise UserError(f"no search log of {spec.baseline} at {log_dir(spec)}; run `python -m "
                            f"benchmarks.reproduce search {spec.name} --trials 64` (or use --scale full)")
        elsewhere = None if scale.search_live else log_machines(info, target.hardware)
        if elsewhere:
            log(f"{spec.name}: the {spec.baseline} log was {elsewhere}")
        plans.append({"spec": spec, "scale": scale, "entries": subgraphs(spec, scale.subgraphs), "info": info,
                      "elsewhere": elsewhere})
    union = list({t.hash: (w, t) for p in plans for w, t in p["entries"]}.values())
    store = cache_dir() / "reproduce" / f"{'-'.join(s.name for s in specs)}-{scale_name}" / "store"
    if store.exists() and not resume:
        shutil.rmtree(store)  # the numbers of a run come from one sitting: measured side by side

    with Measurer(target, store, MeasureConfig()) as m:
        # 1. TLM: the greedy program, then samples.
        times = sorted({k for p in plans for k in p["scale"].tlm_times})
        models = {"": _checkpoint(target)} | ({"challenger": Path(challenger)} if challenger else {})
        for ckpt in models.values():
            if elsewhere := trained_elsewhere(ckpt, target.hardware):
                log(f"the model {ckpt} was {elsewhere}")
        gens = {name: _tlm_candidates(union, target, times, seed, ckpt) for name, ckpt in models.items()}
        # 2. Each baseline's best programs at each column's trials (and the claims' checkpoints).
        for p in plans:
            spec, tried = p["spec"], trials_in_order(p["spec"])
            # The claims' time to B trials: per subgraph, its trials at the pace of the segment that
            # searched them (a subgraph with a small space has fewer than asked); the mean is reported.
            p["seconds_per_trial"] = sum(s["seconds"] for s in p["info"]["segments"]) / sum(map(len, tried.values()))
            p["pace"] = search_pace(p["info"], {h: len(v) for h, v in tried.items()})
            p["points"] = sorted({b for b in (*p["scale"].trials, *CURVE) if b <= p["info"]["trials"]})
            p["base"] = {b: [Candidate(t, trace, w, spec.baseline, extra_json(
                                 trials=b, search_rank=r, search_mean_s=None if sec == math.inf else sec))
                             for w, t in p["entries"]
                             for r, (trace, sec) in enumerate(_top(tried.get(t.hash, []), b,
                                                                   REMEASURE if b in p["scale"].trials else 1))]
                         for b in p["points"]}
        # 3. Roller-style, for the equal-time claim.
        budget = max(p["scale"].roller_budget for p in plans)
        roller, roller_s = _roller_candidates(union, target, budget, seed) if budget else ({}, {})
        # All of a subgraph's candidates together: its unscheduled reference (naive loops, up to a
        # minute for the biggest subgraphs) then runs once, not once per method.
        everything: dict[str, list] = {t.hash: [*(c for g in gens.values() for c in g[0][t.hash]),
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
        finalists = [w for p in plans for g in gens.values() for cands in _cell_candidates(p, g[0], roller).values()
                     for w in _winners(cands, records, m.key).values()]
        finalists.sort(key=lambda c: c.task.hash)  # a subgraph's finalists side by side
        retimed = {m.key(c): recs for c, recs in zip(finalists, m.retime(finalists, RETIME, "re-time the finalists"))}
        key = m.key

    ctx = {"records": records, "retimed": retimed, "key": key, "roller": roller, "roller_s": roller_s,
           "target": target, "seed": seed, "started": started}
    out_of = {"": lambda d: d, "challenger": lambda d: d.with_name(d.name + "-challenger")}
    return [_tabulate(p, out_of[name](outs[p["spec"].name]),
                      {**ctx, "tlm": tlm, "gen_s": gen_s, "invalid": invalid, "checkpoint": models[name]})
            for name, (tlm, gen_s, invalid) in gens.items() for p in plans]


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
        for h, c in _winners(cands, records, key).items():
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

    cands = _cell_candidates(plan, ctx["tlm"], ctx["roller"])
    methods = {label: best(cs, label) for label, cs in cands.items()}  # label -> {task hash: seconds}
    rows = []
    for k in scale.tlm_times:
        gen = {h: by_k[k] for h, by_k in ctx["gen_s"].items()}
        rows.append({"label": f"tlm@{k}", "measurements": k, "compile_seconds": seconds(cands[f"tlm@{k}"], gen),
                     "generation_seconds": round(sum(gen[t.hash] for t in tasks), 1)})
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
    cells = _cells(spec, scale, tasks, methods, points, info, plan.get("elsewhere"))
    claims = _claims(spec, scale, tasks, methods, rows, points, plan, roller)
    prov = provenance(ctx["target"], scale=scale.name, table=spec.name, seed=ctx["seed"], scale_settings=asdict(scale),
                      subgraphs=len(tasks), baseline_log=info, tlm_invalid=ctx["invalid"],
                      wall_seconds_of_the_sitting=round(time.perf_counter() - ctx["started"], 1),
                      checkpoint=checkpoint_identity(ctx["checkpoint"]), tlm_rows=rows, retime_rounds=RETIME,
                      retime_failed=retime_failed, baseline_log_machine=plan.get("elsewhere") or "this machine",
                      model_machine=trained_elsewhere(ctx["checkpoint"], ctx["target"].hardware) or "this machine")
    out.mkdir(parents=True, exist_ok=True)
    _write(out, spec, cells, per_sub, claims, prov)
    return {"table": spec.name, "scale": scale.name, "out": str(out), "cells": cells, "claims": claims,
            "wall_seconds": prov["wall_seconds_of_the_sitting"]}


def _cells(spec, scale, tasks, methods: dict, points, info: dict, elsewhere: str | None = None) -> list[dict]:
    """The table's cells: each TLM row (and the baseline's largest) over each column."""
    cols = [(spec.baseline, b) for b in scale.trials] + [("tlm", max(scale.tlm_times))]
    row_labels = [f"tlm@{k}" for k in scale.tlm_times] + [f"{spec.baseline}@{max(points)}"]
    cells = []
    for rl in row_labels:
        for cm, cb in cols:
            cl = f"{cm}@{cb}"
            paper_row = rl.split("@")[1] if rl.startswith("tlm@") else "baseline"
            cell = {"row": rl, "method": rl.split("@")[0], "measurements": int(rl.split("@")[1]),
                    "baseline": cm, "baseline_trials": cb, "column": cl,
                    "paper": spec.paper.get((paper_row, cb)) if cm == spec.baseline else None}
            if cl not in methods:
                there = sum(n >= cb for n in info.get("reached", {}).values())
                cell.update(overall_speedup=None, status=f"missing: the {spec.baseline} log has {info['trials']} "
                            f"trials on every subgraph, {cb} on {there} of {info.get('subgraphs', len(tasks))} "
                            f"(`python -m benchmarks.reproduce search {spec.name} --trials {cb}` goes on from it, "
                            "resumable; or --scale full)")
            else:
                cell.update(_speedup(tasks, methods[rl], methods[cl]))
                cell["status"] = "ok" if not (cell["failures_method"] or cell["failures_baseline"]) else "failures"
            cell["baseline_source"] = (("searched in this run" if scale.search_live else
                                        "shipped search log, best programs re-measured in this run"
                                        + (f" (log {elsewhere.split(';')[0]})" if elsewhere else ""))
                                       if cm == spec.baseline else "measured in this run")
            cells.append(cell)
    return cells


def _cell_candidates(plan: dict, tlm: dict, roller: dict) -> dict[str, list]:
    """Label (tlm@k, baseline@B, roller@k) -> the candidates its cell chooses from, all subgraphs."""
    tasks, scale, spec = [t for _, t in plan["entries"]], plan["scale"], plan["spec"]
    out = {f"tlm@{k}": [c for t in tasks for c in tlm[t.hash][:k]] for k in scale.tlm_times}
    out.update({f"{spec.baseline}@{b}": plan["base"][b] for b in plan["points"]})
    if scale.roller_budget:
        out[f"roller@{scale.roller_budget}"] = [c for t in tasks for c in roller[t.hash][:scale.roller_budget]]
    return out


def _winners(cands, records: dict, key) -> dict:
    """Per task hash: the candidate whose (selecting) timing is the lowest; subgraphs without one absent."""
    from tlm_core.measure.harness import OK

    win: dict = {}
    for c in cands:
        r = records.get(key(c))
        if r and r["status"] == OK and (c.task.hash not in win or r["latency_s"] < records[key(win[c.task.hash])]["latency_s"]):
            win[c.task.hash] = c
    return win


def _roller_candidates(entries, target, budget: int, seed: int):
    """Per task hash: Roller-style's `budget` programs (ranked by its model); its seconds per task."""
    from tlm_core.methods import roller

    lists, secs = {}, {}
    for w, t in progress(entries, "roller: rank", unit="subgraph"):
        start = time.perf_counter()
        lists[t.hash] = roller.candidates(w, t, target, budget, seed)
        secs[t.hash] = time.perf_counter() - start
    return lists, secs


def _checkpoint(target):
    """The model the TLM rows use: $TLM_CHECKPOINT, else the shipped model for the target's CPU."""
    from tlm_core.methods.tlm import checkpoint

    return checkpoint(target.hardware)


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
    return lists, seconds, invalid


def _top(trials: list[tuple[str, float]], b: int, k: int) -> list[tuple[str, float]]:
    """The k fastest distinct programs among the first b trials (by the search's own timings)."""
    out, seen = [], set()
    for trace, s in sorted(trials[:b], key=lambda x: x[1]):
        if trace not in seen:
            seen.add(trace)
            out.append((trace, s))
        if len(out) == k:
            break
    return out


def _speedup(tasks, method: dict, baseline: dict) -> dict:
    """Overall speedup over the subgraphs both have a program for; failures counted and named."""
    fm = [t.name for t in tasks if t.hash not in method]
    fb = [t.name for t in tasks if t.hash not in baseline]
    both = [t for t in tasks if t.hash in method and t.hash in baseline]
    num = sum(t.weight * baseline[t.hash] for t in both)
    den = sum(t.weight * method[t.hash] for t in both)
    # The paper's number (total weighted latency, above) is dominated by the heaviest subgraphs: at
    # default scale three BERT matmuls hold ~90% of Table 2's baseline time, and one noisy timing
    # of one of them moved a cell by 0.4 between sittings. The geometric mean of per-subgraph speedups counts each
    # subgraph once; `top3_share` says how concentrated the weighted number is.
    logs = [math.log(baseline[t.hash] / method[t.hash]) for t in both]
    shares = sorted((t.weight * baseline[t.hash] / num for t in both), reverse=True) if num else []
    return {"overall_speedup": round(num / den, 4) if den else None,
            "geomean_speedup": round(math.exp(sum(logs) / len(logs)), 4) if logs else None,
            "wins": sum(x > 0 for x in logs), "top3_share": round(sum(shares[:3]), 3) if shares else None,
            "subgraphs_compared": len(both), "failures_method": len(fm), "failures_baseline": len(fb),
            "failed_subgraphs": ";".join([f"method:{n}" for n in fm] + [f"baseline:{n}" for n in fb])}


def _weighted(tasks, lat: dict) -> float | None:
    if any(t.hash not in lat for t in tasks):
        return None
    return sum(t.weight * lat[t.hash] for t in tasks)


def _claims(spec, scale, tasks, methods, rows, points, plan, roller) -> dict:
    """The 61x (time to equal performance) and 2.25x (performance at equal time) claims of this run."""
    out: dict = {"table": spec.name, "scale": scale.name, "baseline": spec.baseline}
    k = 10 if 10 in scale.tlm_times else max(scale.tlm_times)
    tlm_row = next(r for r in rows if r["measurements"] == k)
    target_lat = _weighted(tasks, methods[f"tlm@{k}"])
    reached = None
    for b in points:
        lat = _weighted(tasks, methods[f"{spec.baseline}@{b}"])
        if lat is not None and target_lat is not None and lat <= target_lat:
            reached = b
            break

    def search_seconds(b: int) -> float:
        return sum(seconds_to(plan["pace"].get(t.hash, []), b) for t in tasks)

    out["compile_time_speedup_at_equal_performance"] = {
        "tlm_measurements": k, "tlm_compile_seconds": tlm_row["compile_seconds"],
        "tlm_weighted_latency_ms": None if target_lat is None else round(target_lat * 1e3, 4),
        "baseline_trials_to_reach": reached,
        "baseline_compile_seconds": None if reached is None else round(search_seconds(reached), 1),
        "value": None if reached is None else round(search_seconds(reached) / tlm_row["compile_seconds"], 2),
        "lower_bound": None if reached is not None else round(search_seconds(max(points)) / tlm_row["compile_seconds"], 2),
        "baseline_seconds_per_trial": round(plan["seconds_per_trial"], 3),
        "baseline_search_conditions": sorted({seg["provenance"].get("machine_load", "alone")
                                              for seg in plan["info"]["segments"]}),
        "baseline_searched_on": plan.get("elsewhere") or "this machine",
        "note": ("baseline time = per subgraph, its trials up to that many x the wall seconds per committed trial "
                 "(search, builds, runs) of the log's segment that searched them; "
                 "TLM time = the seconds to generate its k programs per subgraph + their build and run seconds, "
                 "one after the other (no parallel builds: conservative for TLM). "
                 + ("" if reached else f"The baseline did not reach TLM@{k} within {max(points)} trials: "
                    "lower_bound is the ratio at that many trials.")),
        "paper": 61.0}
    if roller is not None:
        within = [r for r in rows if r["compile_seconds"] <= roller["seconds"]]
        near = max(within, key=lambda r: r["measurements"]) if within else min(rows, key=lambda r: r["measurements"])
        sp = _speedup(tasks, methods[near["label"]], roller["best"])
        out["performance_vs_roller_at_equal_time"] = {
            "roller_budget": roller["budget"], "roller_compile_seconds": roller["seconds"],
            "tlm_measurements": near["measurements"], "tlm_compile_seconds": near["compile_seconds"],
            "value": sp["overall_speedup"], "failures_tlm": sp["failures_method"],
            "failures_roller": sp["failures_baseline"], "paper": 2.25,
            "tlm_within_roller_time": bool(within),
            "note": "overall speedup over Roller-style of the largest TLM row whose compile time is at most "
                    "Roller-style's (if none is, TLM's smallest row, and tlm_within_roller_time is false); "
                    "Roller-style time = its ranking seconds + build and run seconds of its programs, as TLM's"}
    return out


def write_claims(root: Path, scale: str) -> dict:
    """ROOT/claims.json: the claims of every table measured at `scale` (Table 2's, against Ansor-style
    search, on top, as the paper's 61x and 2.25x are), read from the tables' own claims.json."""
    by_table = {}
    for name in TABLES:
        path = root / name / scale / "claims.json"
        if path.exists():
            by_table[name] = json.loads(path.read_text())
    if not by_table:
        return {}
    head = by_table.get("table2") or next(iter(by_table.values()))
    doc = {"scale": scale, "source": f"{head['table']} ({head['baseline']})",
           "compile_time_speedup_at_equal_performance": head["compile_time_speedup_at_equal_performance"],
           "performance_vs_roller_at_equal_time": head.get("performance_vs_roller_at_equal_time"),
           "by_table": by_table}
    (root / "claims.json").write_text(json.dumps(doc, indent=1))
    return doc


def _write(out: Path, spec, cells, per_sub, claims, prov) -> None:
    import pandas as pd

    pd.DataFrame(cells).to_csv(out / "table.csv", index=False)
    pd.DataFrame(per_sub).to_csv(out / "subgraphs.csv", index=False)
    (out / "claims.json").write_text(json.dumps(claims, indent=1))
    (out / "provenance.json").write_text(json.dumps(prov, indent=1, default=str))
    (out / "table.md").write_text(markdown(spec, cells, prov))


def _trials(b: int) -> str:
    return f"{b // 1000}K" if b >= 1000 and b % 1000 == 0 else str(b)


def markdown(spec, cells, prov) -> str:
    """The table in the paper's shape, this run's value with the paper's in brackets."""
    cols = list(dict.fromkeys(c["column"] for c in cells))
    rows = list(dict.fromkeys(c["row"] for c in cells))
    label = {spec.baseline: spec.baseline_label.split(" (")[0], "tlm": "TLM"}
    head = ["Times"] + [f"{label[c.split('@')[0]]} {_trials(int(c.split('@')[1]))}" for c in cols]
    lines = [(f"**{spec.title}** — scale `{prov['scale']}`, {prov['subgraphs']} subgraphs, {prov['cpu']} "
             f"({(prov.get('target') or {}).get('mcpu', '?')}), "
             f"commit {prov['git_commit'][:10]}, {prov['date'][:10]}"
             + (f" (re-tabulated from its subgraphs.csv at {prov['retabulated']['git_commit'][:10]})"
                if prov.get("retabulated") else "") + ". Cell: overall speedup of the row over the "
             f"column (this run; the paper's in brackets); each chosen program re-timed {prov.get('retime_rounds', 0)}x, median. "
             "† n: subgraphs without a valid program.")]
    if prov.get("baseline_log_machine", "this machine") != "this machine":
        lines[0] += f" The {label[spec.baseline]} log was {prov['baseline_log_machine']}."
    if prov.get("model_machine", "this machine") != "this machine":
        lines[0] += f" The model was {prov['model_machine']}."

    def grid(field: str, paper: bool) -> list[str]:
        out = ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in rows:
            name = (_trials(int(r.split("@")[1])) if r.startswith("tlm@")
                    else f"{label[spec.baseline]} {_trials(int(r.split('@')[1]))} (row)")
            line = [name]
            for c in cols:
                cell = next(x for x in cells if x["row"] == r and x["column"] == c)
                v = cell.get(field)
                text = "missing" if v is None else f"{v:.2f}"
                fails = cell.get("failures_method", 0) + cell.get("failures_baseline", 0)
                text += f" †{fails}" if fails else ""
                text += f" ({cell['paper']:.2f})" if paper and cell.get("paper") is not None else ""
                line.append(text)
            out.append("| " + " | ".join(line) + " |")
        return out

    lines += grid("overall_speedup", True)
    share = next((c["top3_share"] for c in cells if c.get("top3_share") is not None and c["column"] == cols[0]), None)
    if share is not None:
        lines += ["", (f"The cells above are ratios of total weighted latency (the paper's metric): the three "
                       f"heaviest subgraphs hold {share:.0%} of the first column's time, so they decide them. "
                       "Below, the geometric mean of the per-subgraph speedups (each subgraph counts once):")]
        lines += grid("geomean_speedup", False)
    return "\n".join(lines) + "\n"


# -- re-tabulating and comparing finished table runs ------------------------------------------------
def _run_cells(run: Path) -> tuple:
    """(spec, cells, provenance) of a finished table run, from its subgraphs.csv: nothing re-measured."""
    import pandas as pd

    from benchmarks.tables import Scale

    if not (run / "subgraphs.csv").exists() or not (run / "provenance.json").exists():
        raise UserError(f"{run} is not a table run (no subgraphs.csv and provenance.json there)")
    prov = json.loads((run / "provenance.json").read_text())
    spec = TABLES[prov["table"]]
    scale = Scale(**{k: tuple(v) if isinstance(v, list) else v for k, v in prov["scale_settings"].items()})
    subs = pd.read_csv(run / "subgraphs.csv")
    first = subs[subs.label == subs.label.iloc[0]]
    tasks = [_Sub(r.subgraph, r.hash, int(r.weight)) for r in first.itertuples()]
    methods = {label: {r.hash: r.best_ms / 1e3 for r in g.itertuples() if r.best_ms == r.best_ms}
               for label, g in subs.groupby("label", sort=False)}
    points = [int(lb.split("@")[1]) for lb in methods if lb.startswith(spec.baseline + "@")]
    if prov.get("baseline_log", {}).get("segments") and isinstance(prov.get("target"), dict):
        # Where the log was searched is worded from its segments: say it as this code does.
        from tlm_core.ir.target import Hardware

        here = Hardware.from_json(json.dumps({k: v for k, v in prov["target"].items() if k != "tvm"}))
        prov["baseline_log_machine"] = log_machines(prov["baseline_log"], here) or "this machine"
    elsewhere = prov.get("baseline_log_machine")
    elsewhere = None if elsewhere in (None, "this machine") else elsewhere
    return spec, _cells(spec, scale, tasks, methods, points, prov["baseline_log"], elsewhere), prov


@dataclass(frozen=True)
class _Sub:
    """A subgraph as subgraphs.csv names it (what `_speedup` reads of a task)."""

    name: str
    hash: str
    weight: int


def retabulate(run: Path) -> dict:
    """Rewrite a run's table.csv and table.md from its measured subgraphs.csv (after the table's
    metrics changed); provenance.json keeps the measurement's commit and records this one."""
    import pandas as pd

    from tlm_core.provenance import provenance

    spec, cells, prov = _run_cells(run)  # re-words where the baseline's log was searched, too
    claims = run / "claims.json"
    if claims.exists() and "baseline_log_machine" in prov:
        doc = json.loads(claims.read_text())
        doc.get("compile_time_speedup_at_equal_performance", {})["baseline_searched_on"] = (
            prov["baseline_log_machine"])
        claims.write_text(json.dumps(doc, indent=1))
    now = provenance(None)
    prov["retabulated"] = {"git_commit": now["git_commit"], "date": now["date"]}
    pd.DataFrame(cells).to_csv(run / "table.csv", index=False)
    (run / "provenance.json").write_text(json.dumps(prov, indent=1, default=str))
    (run / "table.md").write_text(markdown(spec, cells, prov))
    return {"table": spec.name, "out": str(run), "cells": cells}


def compare(runs: list[Path]) -> list[dict]:
    """Side by side, several finished runs of a table (other checkpoints, other sittings): each TLM row
    against the baseline's largest measured column, by total weighted latency and by geometric mean."""
    rows = []
    for run in runs:
        spec, cells, prov = _run_cells(run)
        ok = [c for c in cells if c["baseline"] == spec.baseline and c.get("overall_speedup") is not None]
        col = max(c["baseline_trials"] for c in ok)
        for c in ok:
            if c["baseline_trials"] == col and c["method"] == "tlm":
                rows.append({"run": str(run), "table": spec.name, "checkpoint": (prov.get("checkpoint") or {}).get(
                    "sha256", "")[:16], "row": c["row"], "column": c["column"],
                    **{k: c[k] for k in ("overall_speedup", "geomean_speedup", "wins", "subgraphs_compared",
                                         "top3_share")}})
    return rows


# -- end to end (Figures 10 and 13) ----------------------------------------------------------------
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
                          finished=finished, checkpoint=checkpoint_identity(_checkpoint(target)))
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


# -- command line -----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.reproduce", description=__doc__.split("\n")[0])
    p.add_argument("what", help="table2 | table3 | tables (both, one sitting) | claims | figure10 | figure13 | "
                                "methods | select | search | retabulate | compare")
    p.add_argument("rest", nargs="*", help="for `search`: the table whose baseline to search; for `retabulate` "
                                           "and `compare`: directories of finished table runs")
    p.add_argument("--scale", default="default", choices=("smoke", "default", "full"))
    p.add_argument("--out", help="results root (default results/; a table goes to ROOT/<table>/<scale>)")
    p.add_argument("--trials", type=int, default=64, help="for `search`: trials per subgraph to reach")
    p.add_argument("--rpc", metavar="HOST:PORT:KEY",
                   help="for `search` (and --scale full): run the trials on the servers of this TVM RPC tracker")
    p.add_argument("--target", default="host")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="keep the measurements of an interrupted run")
    p.add_argument("--challenger", metavar="CHECKPOINT",
                   help="tables: also measure this model's TLM rows in the same sitting (into <out>-challenger/)")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    args = p.parse_args(argv)
    try:
        from tlm_core.ir.target import resolve_target
        from tlm_core.methods.metaschedule import Tracker

        rpc = Tracker.parse(args.rpc) if args.rpc else None
        if args.what == "select":
            cmd_select(args)
            return 0
        if args.what == "search":
            if len(args.rest) != 1 or args.rest[0] not in TABLES:
                raise UserError(f"search which table? one of {', '.join(TABLES)}")
            res = search(TABLES[args.rest[0]], args.trials, resolve_target(args.target), args.seed, rpc)
        elif args.what in ("retabulate", "compare"):
            if not args.rest:
                raise UserError(f"{args.what} which runs? give their directories (e.g. results/table2/default)")
            runs = [Path(r) for r in args.rest]
            res = [retabulate(r) for r in runs] if args.what == "retabulate" else compare(runs)
        elif args.what in FIGURES:
            out = (Path(args.out) if args.out else REPO_ROOT / "results") / args.what / args.scale
            res = run_e2e(FIGURES[args.what], args.scale, out, resolve_target(args.target), args.seed, args.resume)
        elif args.what in (*TABLES, "tables", "claims"):
            names = {"tables": list(TABLES), "claims": ["table2"]}.get(args.what, [args.what])
            root = Path(args.out) if args.out else REPO_ROOT / "results"
            outs = {n: root / n / args.scale for n in names}
            if args.challenger and not (Path(args.challenger) / "config.json").exists():
                raise UserError(f"--challenger {args.challenger}: no trained model there (no config.json)")
            res = run_tables([TABLES[n] for n in names], args.scale, outs, resolve_target(args.target), args.seed,
                             args.resume, challenger=args.challenger, rpc=rpc)
            claims = write_claims(root, args.scale)
            if args.what == "claims":
                res = claims
        else:
            raise UserError(f"unknown artefact {args.what!r}: {', '.join([*TABLES, *FIGURES])}, tables, claims, "
                            "select, search, retabulate, compare")
    except UserError as err:
        print(f"reproduce: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("reproduce: interrupted (" + ("the log keeps every trial committed; run the same command again to "
                                           "go on" if args.what == "search" else
                                           "run again with --resume to keep what was measured") + ")", file=sys.stderr)
        return 130
    if args.json:
        emit_json(res)
    elif args.what in (*TABLES, "tables"):
        for r in res:
            print((Path(r["out"]) / "table.md").read_text())
    elif args.what in FIGURES:
        print(f"wrote {res['out']}/e2e.csv; plot it with `python -m figures.plot {args.what}`")
    elif args.what == "retabulate":
        for r in res:
            print((Path(r["out"]) / "table.md").read_text())
    elif args.what == "compare":
        cols = ["run", "checkpoint", "row", "column", "overall_speedup", "geomean_speedup", "wins", "top3_share"]
        print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
        for r in res:
            print("| " + " | ".join(str(r[c]) for c in cols) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
