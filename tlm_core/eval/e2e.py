"""End to end: tune a workload's subgraphs with a method, compile the whole model with the best
records, and benchmark it against PyTorch.

`compile_model` imports the model exactly as task extraction does (torch.export -> Relax -> legalize
-> fuse), then replaces each fused PrimFunc that has an ok record in the store by its best schedule
(the record's trace replayed on the task, committed to an in-memory MetaSchedule database and
applied by `relax.transform.MetaScheduleApplyDatabase`, as MetaSchedule's `compile_relax` does).
A subgraph without a record keeps TVM's default code: on llvm that is the unscheduled loop nest
(dlight's default schedules are GPU rules; MetaSchedule's compile_relax applies none on CPU either).
The result is a Relax VM library (`export_library`).

`bench` runs a compiled library (or PyTorch eager / torch.compile) on the workload's example
inputs: median wall time of `repeat` runs after a warm-up, and the largest absolute difference of
every output from PyTorch eager's.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tlm_core.errors import UserError
from tlm_core.ir.target import ResolvedTarget
from tlm_core.ui import log, progress

# -- tune ------------------------------------------------------------------------------------------


def tune_workload(source, method: str, budget: int, out_dir, target: ResolvedTarget, *, config=None,
                  seed: int = 0, max_tasks: int = 0) -> dict:
    """Tune every subgraph of a workload (or its `max_tasks` heaviest) with a method; records into out_dir."""
    from tlm_core.ir.tasks import extract_tasks
    from tlm_core.methods import get_method

    m = get_method(method)
    tasks = extract_tasks(source, target)
    if max_tasks:
        tasks = tasks[:max_tasks]  # extract_tasks sorts heaviest (weight x FLOPs) first
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = m.tune(tasks, target, budget, out, source.name, config=config, seed=seed).to_json()
    result.update(budget=budget, target=target.hardware.tvm_target_dict())
    (out / f"tune-{method}.json").write_text(json.dumps(result, indent=2, default=str))
    return result


# -- compile ---------------------------------------------------------------------------------------


def relax_module(source):
    """(fused Relax IRModule, example inputs, torch module): the pipeline of task extraction."""
    from tlm_core.ir.tasks import fused_relax, pipeline_of

    if source.repeat is not None:
        raise UserError(f"{source.name} is built with {source.repeat[1]} layers only by weight scaling "
                        "(too big to build whole): end-to-end compile is not supported for it")
    module, inputs = source.build()
    mod = fused_relax(module, inputs, pipeline_of(source))
    return mod, inputs, module


def _database(tasks, best: dict, target: ResolvedTarget):
    """An in-memory MetaSchedule database with the best record of each task that has one."""
    from tvm.s_tir import Schedule, Trace
    from tvm.s_tir import meta_schedule as ms

    db = ms.database.MemoryDatabase()
    used = []
    for t in tasks:
        rec = best.get(t.hash)
        if rec is None:
            continue
        sch = Schedule(t.mod)
        try:
            trace = json.loads(rec["trace"])
        except (TypeError, ValueError):  # None: restored from an export (no trace kept); else not JSON
            raise UserError(f"record {rec['key']} of subgraph {t.name} has no readable schedule trace (a record "
                            "restored from an exported table keeps none): compile with the store `tlm tune` "
                            "wrote") from None
        Trace.apply_json_to_schedule(trace, sch)
        wl = db.commit_workload(t.mod)
        db.commit_tuning_record(ms.database.TuningRecord(sch.trace, wl, [float(rec["latency_s"])], target.tvm))
        used.append(t)
    return db, used


def _no_record(source, db_dir, tasks) -> None:
    """The UserError of a store without one usable record of the workload's subgraphs: compiling with it
    would build TVM's default code for every subgraph, while the command names a store to use."""
    from tlm_core.measure.store import RecordStore

    store = RecordStore(db_dir)
    hashes = {t.hash for t in tasks}
    own = sum(1 for r in store if r.get("task_hash") in hashes)
    if not len(store):
        what = "holds no records"
    elif not own:
        what = (f"holds no record of {source.name}'s {len(tasks)} subgraphs (its {len(store)} "
                f"record{'s are' if len(store) > 1 else ' is'} of another workload, target or version)")
    else:
        what = (f"holds {own} record{'s' if own > 1 else ''} of {source.name}'s subgraphs, none measured ok on "
                "the current measurement inputs")
    raise UserError(f"--db {db_dir}: the record store {what}: give the --out of `tlm tune {source.name} ...`, "
                    "or leave --db out for TVM's default code (`tlm bench --method untuned`)")


def compile_model(source, db_dir, out_file, target: ResolvedTarget) -> dict:
    """Build the whole model into a Relax VM library with the best record per subgraph."""
    return build_model(source, db_dir, out_file, target).summary


@dataclass(frozen=True)
class Built:
    """A compiled model and what went into it, for callers that go on to run it (bench, profile)."""

    summary: dict  # what `tlm compile` prints
    tasks: list  # the model's tasks
    best: dict  # task hash -> the record compiled in
    fused: object  # the fused Relax module before the records were applied (its PrimFuncs are the tasks)
    inputs: tuple  # the workload's example inputs
    built: object = None  # the module handed to relax.build: scheduled kernels, prepacked weight shapes


def build_model(source, db_dir, out_file, target: ResolvedTarget) -> Built:
    """`compile_model`, keeping the tasks, records, fused module and inputs it used."""
    import tvm
    from tvm import relax
    from tvm.relax import pipeline as rp
    from tvm.relax.transform import MetaScheduleApplyDatabase

    from tlm_core.ir.tasks import extract_tasks
    from tlm_core.measure.store import RECORDS, is_store
    from tlm_core.methods import best_records
    from tlm_core.tvm_env import load_tensor_intrinsics

    load_tensor_intrinsics(target.kind)
    start = time.perf_counter()
    if db_dir is not None and (Path(db_dir) / RECORDS).exists() and not (Path(db_dir) / RECORDS).is_file():
        raise UserError(f"{Path(db_dir) / RECORDS}: not a file (a record store's records are one JSON-lines "
                        "file); point --db at a store made by `tlm tune`")
    if db_dir is not None and not is_store(db_dir):
        raise UserError(f"--db {db_dir}: no record store there (records.jsonl or its sealed .gz); make one with "
                        "`tlm tune`")
    tasks = extract_tasks(source, target)
    best = best_records(db_dir, tasks) if db_dir is not None else {}
    if db_dir is not None and not best:
        _no_record(source, db_dir, tasks)
    fused, inputs, _ = relax_module(source)
    db, used = _database(tasks, best, target)
    with target.tvm, db, tvm.transform.PassContext(opt_level=3):
        mod = MetaScheduleApplyDatabase(enable_warning=False)(fused)
    # The pass marks the functions it replaced ("tirx.is_scheduled" in TVM 0.27, "tir." before).
    applied = sum(1 for _, f in mod.functions.items()
                  if isinstance(f, tvm.tirx.PrimFunc) and f.attrs is not None
                  and any(str(k).endswith("is_scheduled") and bool(f.attrs[k]) for k in f.attrs.keys()))  # noqa: SIM118 (an FFI Map)
    # Weight prepacking (MetaSchedule's cpu_weight_prepack): a schedule that re-lays a weight out
    # (RewriteLayout) does it in a preprocessing block; it is split into a function of its own and,
    # the weights being constants, folded into them here, out of every inference.
    with target.tvm, tvm.transform.PassContext(opt_level=3):
        mod = tvm.transform.Sequential([relax.transform.SplitLayoutRewritePreproc(),
                                        relax.transform.FoldConstant(),
                                        relax.transform.DeadCodeElimination()])(mod)
    # SplitLayoutRewritePreproc names a kernel so split `<name>_prepacked` and its weight transform
    # `<name>_weight_prepack`; a transform still there after folding would run at every inference.
    names = [gv.name_hint for gv, f in mod.functions.items() if isinstance(f, tvm.tirx.PrimFunc)]
    prepacked = sum(n.endswith("_prepacked") for n in names)
    unfolded = [n for n in names if n.endswith("_weight_prepack")]
    if unfolded:
        log(f"warning: {len(unfolded)} weight-layout transform(s) were not folded into the constants and run at "
            f"every inference: {', '.join(unfolded[:3])}")
    # What task extraction left as Relax operators (sorts, scans: gpt2's position ids are a cumsum) goes
    # to TVM's kernels for the target and is legalized here, after the weight prepacking, where TVM's
    # own pipeline does it (library dispatch, legalize); the VM cannot run such an operator itself.
    try:
        passes = (rp.library_dispatch_passes(target.tvm) + [relax.transform.LegalizeOps()]
                  + rp.dataflow_lower_passes(target.tvm) + rp.finalize_passes(target.tvm))
    except (ValueError, AttributeError):  # TVM 0.27: the dispatcher misses cpu_generic's functions
        from tvm.relax.backend.cpu_generic import pipeline as cpu

        passes = (cpu.library_dispatch_passes(target.tvm) + [relax.transform.LegalizeOps()]
                  + cpu.dataflow_lower_passes(target.tvm) + cpu.finalize_passes(target.tvm))

    @tvm.transform.module_pass(opt_level=3)
    def _lower(m, _ctx):
        return tvm.transform.Sequential(passes)(m)

    with target.tvm, tvm.transform.PassContext(opt_level=3):
        ex = relax.build(mod, target=target.tvm, relax_pipeline=_lower)
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    ex.export_library(str(out_file))
    missing = [t.name for t in tasks if t.hash not in best]
    if missing:
        log(f"{len(missing)} of {len(tasks)} subgraphs have no record: TVM default (unscheduled loops)")
    summary = {"workload": source.name, "out": str(out_file), "tasks": len(tasks), "tuned": len(used),
               "applied_functions": applied, "prepacked_kernels": prepacked, "unfolded_weight_transforms": unfolded,
               "untuned": missing,
               "fallback": "unscheduled loops (TVM default code on llvm)" if missing else None,
               "db": None if db_dir is None else str(db_dir), "seconds": round(time.perf_counter() - start, 2)}
    return Built(summary, tasks, best, fused, inputs, mod)


# -- bench -----------------------------------------------------------------------------------------


def _leaves(obj) -> list:
    """Every tensor of a (nested) output, in order, as numpy arrays."""
    import numpy as np

    if hasattr(obj, "numpy") and not isinstance(obj, (list, tuple)):
        return [np.asarray(obj.detach().numpy() if hasattr(obj, "detach") else obj.numpy())]
    if isinstance(obj, dict) or hasattr(obj, "to_tuple"):
        obj = obj.to_tuple() if hasattr(obj, "to_tuple") else list(obj.values())
    if isinstance(obj, (list, tuple)) or (hasattr(obj, "__len__") and hasattr(obj, "__getitem__")):
        return [a for x in obj for a in _leaves(x)]
    return []


def _call_seconds(fn, after=None) -> float:
    """Seconds of one call of `fn`, made right after one untimed call of `after` where given: the
    one timed-call loop body of the three timers below."""
    if after is not None:
        after()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _median_seconds(fn, repeat: int) -> float:
    fn()  # warm-up
    return statistics.median(_call_seconds(fn) for _ in range(repeat))


#: How `_paired_median_seconds` times: 2 = one untimed call before each timed one (since 2026-12-05).
#: Rows of version 1 (no untimed call) penalised the first runtime after the switch (see below).
PAIRED_PROTOCOL = 2


def _paired_median_seconds(first, second, repeat: int) -> tuple[float, float]:
    """Medians of two callables timed alternately (A B A B ...): on a shared machine whose speed
    drifts by tens of percent between minutes, both see the same drift, so their ratio holds where
    two medians taken minutes apart do not (resnet50's PyTorch eager on the Zen 3 host: 132.4 ms one
    evening, 73.1 ms the next night).

    Each timed call follows an untimed call of the same callable: a switch of runtime is not part of
    either's latency. Timed right after PyTorch eager, a compiled mobilenet_v2 read 15.7 ms where it
    ran 8.8 ms back to back (its eager: 16.9 and 16.5; Zen 4 host, 2026-12-05, three rounds alike):
    PyTorch's OpenMP threads go on spinning for milliseconds after a call and hold the cores TVM's
    pool needs (most likely); sleeping instead of the untimed call was no fix (5.5 ms after 50 ms of
    sleep, 10.1 after 200).
    """
    first(), second()
    a, b = [], []
    for _ in range(repeat):
        a.append(_call_seconds(first, after=first))
        b.append(_call_seconds(second, after=second))
    return statistics.median(a), statistics.median(b)


def _switch_median_seconds(first, second, repeat: int) -> dict:
    """What a switch of runtime costs `first` (`tlm bench --switch`): its median timed back to back
    (`back_to_back_ms`), and timed right after one call of `second`, as paired protocol 1 timed it
    (`after_switch_ms`). Each pair is taken in turn in one process, so a drift falls on both."""
    first(), second()
    alone, switched = [], []
    for _ in range(repeat):
        alone.append(_call_seconds(first, after=first))
        switched.append(_call_seconds(first, after=second))
    return {"back_to_back_ms": round(statistics.median(alone) * 1e3, 4),
            "after_switch_ms": round(statistics.median(switched) * 1e3, 4)}


def _errors(got: list, want: list) -> dict:
    """The largest |got - eager| of any output (`max_abs_err`), and relative to that output's largest
    |eager| (`max_rel_err`): a model whose outputs are tiny (MobileNet-V2 with random weights: logits
    near 1e-24) passes any absolute bound, so both are reported."""
    import numpy as np

    if len(got) != len(want):
        raise RuntimeError(f"{len(got)} outputs where PyTorch gives {len(want)}")
    worst_abs = worst_rel = 0.0
    for g, w in zip(got, want):
        if g.shape != w.shape:
            raise RuntimeError(f"output shape {g.shape} where PyTorch gives {w.shape}")
        g64, w64 = g.astype(np.float64), w.astype(np.float64)
        diff = float(np.max(np.abs(g64 - w64), initial=0.0))
        scale = float(np.max(np.abs(w64), initial=0.0))
        worst_abs = max(worst_abs, diff)
        worst_rel = max(worst_rel, diff / scale if scale > 0 else (0.0 if diff == 0 else float("inf")))
    return {"max_abs_err": worst_abs, "max_rel_err": worst_rel}


#: The two checks of every output against PyTorch eager's (`_errors`).
ERRORS = ("max_abs_err", "max_rel_err")


def _torch_reference(module, inputs):
    import torch

    with torch.no_grad():
        return _leaves(module(*inputs))


def _float64_errors(module, inputs, got: list, want: list) -> dict:
    """`_errors` of the compiled model's outputs (`compiled`) and of PyTorch eager's own (`eager`),
    both against the model run in float64 (`tlm bench --fp64`).

    Why: `max_abs_err` compares two float32 computations whose sums run in different orders; where
    outputs are large (wide_resnet50's reach 82, where one float32 step is 7.6e-6) it can exceed a
    fixed bound with neither model wrong. Beside eager's own distance from the float64 result it says
    whether the compiled model rounds more than PyTorch does, or only differently."""
    import copy

    exact = copy.deepcopy(module).double()
    ref = _torch_reference(exact, [x.double() if x.is_floating_point() else x for x in inputs])
    return {"reference": "PyTorch eager in float64", "compiled": _errors(got, ref), "eager": _errors(want, ref)}


def set_threads(threads: int, cores: int) -> dict:
    """Threads for PyTorch's intra-op pool and TVM's runtime pool: `threads`, or (0) one per core of
    the target, both alike. Returns what each pool then has.

    TVM's own default is half the logical CPUs on x86 (one thread on a 2-vCPU host, where PyTorch takes
    two), and its pool cannot grow once made: the count is set before the first kernel
    (measure/threads.py). On a shared machine the count matters more than anything else: with as many
    threads as busy cores, spin-waits collapse (latencies tens of times longer).
    """
    import torch

    from tlm_core.measure.threads import use_threads

    n = threads if threads > 0 else cores
    torch.set_num_threads(n)
    got = use_threads(n)
    if got != n:
        log(f"warning: the TVM runtime pool of this process was made earlier with {got} thread(s) and cannot grow "
            f"to {n}: run in a fresh process")
    return {"tvm_threads": got, "torch_threads": torch.get_num_threads()}


def bench_library(source, lib_file, target: ResolvedTarget, repeat: int = 10, switch: bool = False,
                  fp64: bool = False) -> dict:
    """Latency (median of `repeat`) of a compiled library and its max |output - PyTorch eager|, and
    PyTorch eager's latency timed alternately with it in this process (`eager_paired_ms`); with
    `switch`, also the library timed back to back and right after an eager call
    (`_switch_median_seconds`); with `fp64`, both models' errors against float64 (`vs_float64`,
    `_float64_errors`), taken after the timing."""
    import torch
    import tvm
    from tvm import relax

    module, inputs = source.build()
    want = _torch_reference(module, inputs)
    dev = tvm.cpu() if target.kind == "llvm" else tvm.cuda()
    vm = relax.VirtualMachine(tvm.runtime.load_module(str(lib_file)), dev)
    args = [tvm.runtime.tensor(x.numpy(), dev) for x in inputs]
    got = _leaves(vm["main"](*args))
    with torch.no_grad():
        seconds, eager = _paired_median_seconds(lambda: vm["main"](*args), lambda: module(*inputs), repeat)
        switched = _switch_median_seconds(lambda: vm["main"](*args), lambda: module(*inputs), repeat) \
            if switch else {}
    checked = {"vs_float64": _float64_errors(module, inputs, got, want)} if fp64 else {}
    return {"latency_ms": round(seconds * 1e3, 4), "eager_paired_ms": round(eager * 1e3, 4), **switched,
            **_errors(got, want), **checked, "outputs": len(got), "repeat": repeat,
            "paired_protocol": PAIRED_PROTOCOL}


def bench_pytorch(source, repeat: int = 10, inductor: bool = True) -> dict:
    """PyTorch eager latency, and torch.compile (inductor) latency with its compile seconds."""
    import torch

    module, inputs = source.build()
    want = _torch_reference(module, inputs)
    with torch.no_grad():
        eager = _median_seconds(lambda: module(*inputs), repeat)
    out = {"latency_ms": round(eager * 1e3, 4), "max_abs_err": 0.0, "max_rel_err": 0.0,
           "eager_latency_ms": round(eager * 1e3, 4), "repeat": repeat}
    if inductor:
        try:
            t0 = time.perf_counter()
            compiled = torch.compile(module, backend="inductor")
            with torch.no_grad():
                got = _leaves(compiled(*inputs))
                compile_s = time.perf_counter() - t0
                lat = _median_seconds(lambda: compiled(*inputs), repeat)
            out["inductor"] = {"latency_ms": round(lat * 1e3, 4), "compile_seconds": round(compile_s, 2),
                               **_errors(got, want)}
        except Exception as err:  # noqa: BLE001 - inductor needs a C++ compiler; report, do not fail
            out["inductor"] = {"error": f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"}
    return out


def subgraph_sum(source, target: ResolvedTarget, db_dir) -> dict:
    """The weighted sum (weight = occurrences in the model) of each subgraph's best measured latency.

    None while a subgraph has no record: a sum over part of the model would read as the whole.
    """
    from tlm_core.ir.tasks import extract_tasks
    from tlm_core.methods import best_records

    tasks = extract_tasks(source, target)
    return weighted_sum(tasks, best_records(db_dir, tasks))


def weighted_sum(tasks, best: dict) -> dict:
    """`subgraph_sum` of tasks and their best records (task hash -> record)."""
    from tlm_core.eval import metrics

    missing = [t.name for t in tasks if t.hash not in best]
    total = metrics.weighted_sum((t.weight, float(best[t.hash]["latency_s"]) if t.hash in best else None)
                                 for t in tasks)
    return {"weighted_subgraph_sum_ms": None if total is None else round(total * 1e3, 4), "tasks": len(tasks),
            "tuned_subgraphs": len(tasks) - len(missing), "untuned_subgraphs": missing}


def _each_in_fresh_process(fn, calls, label: str | None = None) -> list:
    """fn(*args) for each args of `calls`, one after another, each in a fresh process of its own.

    Why spawn, one task per process: TVM's thread pools do not survive fork, and a process's memory
    (a build holds its weights several times over) goes back to the host when it ends."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    calls = list(calls)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), max_tasks_per_child=1) as pool:
        steps = progress(calls, label, unit="process") if label else calls
        return [pool.submit(fn, *args).result() for args in steps]


def _scheduling() -> dict:
    """How the OS ran this process so far: its context switches (all threads) and, per thread, the CPU it
    last ran on and the CPUs it may run on (`threads`: Linux /proc only, absent elsewhere).

    Why: a process draws one of two speeds for its life (`_in_processes`); these say whether the slow
    one is the OS's doing: preempted threads (involuntary switches) or threads sharing a CPU."""
    import resource

    use = resource.getrusage(resource.RUSAGE_SELF)
    out = {"voluntary_switches": use.ru_nvcsw, "involuntary_switches": use.ru_nivcsw}
    try:
        tids = sorted(os.listdir("/proc/self/task"), key=int)
        # Field 39 of /proc/.../stat is the CPU the thread last ran on (after the ")" of its name: index 36).
        out["threads"] = [{"cpu": int(Path(f"/proc/self/task/{t}/stat").read_text().rsplit(")", 1)[1].split()[36]),
                           "may_run_on": sorted(os.sched_getaffinity(int(t)))} for t in tids]
    except (OSError, AttributeError, IndexError, ValueError):
        pass
    return out


def _bench_library_alone(source, lib_file, target: ResolvedTarget, repeat: int, switch: bool, threads: int,
                         fp64: bool) -> dict:
    """`bench_library` in a fresh process (`_in_processes` spawns one per call), with how the OS ran the
    process meanwhile (`_scheduling`: the switches counted during the bench alone)."""
    set_threads(threads, target.hardware.num_cores)
    before = _scheduling()
    out = bench_library(source, lib_file, target, repeat, switch, fp64)
    after = _scheduling()
    out["scheduling"] = {**{k: after[k] - before[k] for k in ("voluntary_switches", "involuntary_switches")},
                         "threads": after.get("threads", [])}
    return out


def _in_processes(source, lib_file, target: ResolvedTarget, repeat: int, switch: bool, threads: int,
                  processes: int, fp64: bool) -> dict:
    """`bench_library` in `processes` fresh processes, one after another: the medians over processes,
    and each process's own numbers under `per_process`.

    Why: a compiled model can run at one of two speeds for the whole life of a process (bert_tiny's
    TLM@64 on the Zen 4 host: 0.81-1.20 ms in 3 of 8 fresh processes, 1.50-1.55 in 5;
    `results/znver4/processes/`), so one process's median
    is a draw of that mode. Each process still times the model and PyTorch eager alternately, so its
    own ratio holds whichever mode it drew."""
    call = (source, lib_file, target, repeat, switch, threads, fp64)
    runs = _each_in_fresh_process(_bench_library_alone, [call] * processes, "bench processes")
    scheduling = [r.pop("scheduling") for r in runs]
    timed = [k for k in ("latency_ms", "eager_paired_ms", "back_to_back_ms", "after_switch_ms") if k in runs[0]]
    out = {**runs[0], **{k: round(statistics.median(r[k] for r in runs), 4) for k in timed},
           **{e: max(r[e] for r in runs) for e in ERRORS}}
    out["per_process"] = {"processes": processes, **{k: [r[k] for r in runs] for k in timed},
                          "eager_over_compiled": [round(r["eager_paired_ms"] / r["latency_ms"], 4) for r in runs],
                          "scheduling": scheduling,
                          "slowest_over_fastest": round(max(r["latency_ms"] for r in runs)
                                                        / min(r["latency_ms"] for r in runs), 4)}
    return out


def bench(source, target: ResolvedTarget, db_dir=None, method: str | None = None, repeat: int = 10,
          inductor: bool = True, threads: int = 0, switch: bool = False, processes: int = 1,
          fp64: bool = False) -> dict:
    """End-to-end latency and max abs error vs PyTorch: of `db_dir`'s best records, or of a method.

    method "pytorch": PyTorch itself; "untuned": TVM default code for every subgraph; otherwise give
    db_dir (a record store written by `tlm tune`). `reports` says what `latency_ms` is: the whole
    model run end to end, or (for a model too big to build whole here, such as LLaMA-7B's shapes) its
    layer rule over 1- and 2-layer builds run end to end (`_by_layer_rule`). `switch`: see
    `bench_library`. `processes` > 1: the compiled model timed in that many fresh processes
    (`_in_processes`). `fp64`: each output also checked against the model run in float64, beside
    eager's own error (`_float64_errors`).
    """
    if processes < 1:
        raise UserError("--processes must be at least 1")
    for flag, asked, what in (("--processes", processes > 1, "in fresh processes"),
                              ("--switch", switch, "beside PyTorch eager")):
        if asked and (method == "pytorch" or source.repeat is not None):
            raise UserError(f"{flag} times a compiled model {what}: give --db DIR or --method untuned "
                            "of a model built whole (not --method pytorch, not a layer-rule model)")
    if fp64 and method == "pytorch":
        raise UserError("--fp64 checks a compiled model and PyTorch eager against float64: give --db DIR or "
                        "--method untuned")

    common = {"workload": source.name, **set_threads(threads, target.hardware.num_cores)}
    if source.repeat is not None:
        return _by_layer_rule(source, target, db_dir, method, repeat, inductor, common, fp64)
    if method == "pytorch":
        return {**common, "method": "pytorch", **bench_pytorch(source, repeat, inductor)}
    if method not in (None, "untuned"):
        raise UserError(f"bench --method {method}: give --db DIR (the --out of `tlm tune --method {method}`)")
    if method == "untuned" and db_dir is not None:
        raise UserError("give --db DIR or --method untuned, not both")
    if method is None and db_dir is None:
        raise UserError("give --db DIR (a `tlm tune` output) or --method pytorch|untuned")
    with tempfile.TemporaryDirectory(prefix="tlm-bench-") as tmp:
        lib = os.path.join(tmp, "model.so")
        model = build_model(source, db_dir, lib, target)
        built = model.summary
        summed = weighted_sum(model.tasks, model.best)["weighted_subgraph_sum_ms"] if db_dir is not None else None
        del model  # its fused module holds every weight: not beside the library's and PyTorch's while benched
        res = bench_library(source, lib, target, repeat, switch, fp64) if processes == 1 else \
            _in_processes(source, lib, target, repeat, switch, threads, processes, fp64)
    return {**common, "method": method or "db", "db": None if db_dir is None else str(db_dir),
            "reports": "end to end", **res, "weighted_subgraph_sum_ms": summed,
            "tuned_subgraphs": built["tuned"], "applied_functions": built["applied_functions"],
            "tasks": built["tasks"],
            "untuned_subgraphs": built["untuned"], "compile_model_seconds": built["seconds"]}


def _layer_build(source, n: int, target: ResolvedTarget, db_dir, method, repeat: int, inductor: bool,
                 fp64: bool) -> dict:
    """`bench` of the workload's n-layer build (`_by_layer_rule` runs it in a process of its own)."""
    return bench(source.layers(n), target, db_dir, method, repeat, inductor, fp64=fp64)


def _by_layer_rule(source, target: ResolvedTarget, db_dir, method, repeat: int, inductor: bool, common: dict,
                   fp64: bool = False) -> dict:
    """A model too big to build whole (LLaMA-7B's shapes), by the rule its tasks are weighted with:
    its 1- and 2-layer builds run end to end (each checked against PyTorch eager), and an L-layer model
    takes latency(1) + (L - 1) x (latency(2) - latency(1)). PyTorch is benched by the same rule."""
    arg, layers = source.repeat
    # Each build in a fresh process of its own: a build holds its weights several times over (the
    # PyTorch model, the Relax constants, the prepacked ones, the library's, the loaded library's), and
    # LLaMA-7B's 2-layer build in the process that had built and benched the 1-layer one (and tuned
    # the subgraphs) outgrew the host's 24 GB (an OOM kill, 2026-12-05).
    one, two = _each_in_fresh_process(_layer_build,
                                      [(source, n, target, db_dir, method, repeat, inductor, fp64) for n in (1, 2)])

    def rule(a, b):
        return None if a is None or b is None else round(a + (layers - 1) * (b - a), 4)

    out = {**common, "method": two["method"], "db": two.get("db"),
           "reports": f"layer rule: 1- and 2-{arg} builds run end to end, latency(1) + {layers - 1} x "
                      f"(latency(2) - latency(1)) for {layers} {arg}",
           "latency_ms": rule(one["latency_ms"], two["latency_ms"]),
           **{e: max(one[e], two[e]) for e in ERRORS}, "layer_builds": {"1": one, "2": two}}
    if fp64:
        out["vs_float64"] = {"reference": one["vs_float64"]["reference"],
                             **{m: {e: max(one["vs_float64"][m][e], two["vs_float64"][m][e]) for e in ERRORS}
                                for m in ("compiled", "eager")}}
    if method == "pytorch":
        out["eager_latency_ms"] = out["latency_ms"]
        ind1, ind2 = one.get("inductor", {}), two.get("inductor", {})
        if "latency_ms" in ind1 and "latency_ms" in ind2:
            out["inductor"] = {"latency_ms": rule(ind1["latency_ms"], ind2["latency_ms"]),
                               "compile_seconds": round(ind1["compile_seconds"] + ind2["compile_seconds"], 2),
                               **{e: max(ind1[e], ind2[e]) for e in ERRORS}}
        else:
            out["inductor"] = {"error": ind1.get("error") or ind2.get("error")}
    else:
        out["eager_paired_ms"] = rule(one.get("eager_paired_ms"), two.get("eager_paired_ms"))
        out["paired_protocol"] = two.get("paired_protocol")
    if db_dir is not None:
        out.update({k: two[k] for k in ("tuned_subgraphs", "tasks")})
        # Both builds' (llama's 1-layer build fuses its mask with the residual add into a subgraph the
        # 2-layer build, whose tasks the workload's are, does not have: it runs unscheduled there).
        out["untuned_subgraphs"] = sorted(set(one["untuned_subgraphs"]) | set(two["untuned_subgraphs"]))
        out["weighted_subgraph_sum_ms"] = subgraph_sum(source, target, db_dir)["weighted_subgraph_sum_ms"]
        out["compile_model_seconds"] = round(one["compile_model_seconds"] + two["compile_model_seconds"], 2)
    return out
