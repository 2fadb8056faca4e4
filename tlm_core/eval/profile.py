"""Per-kernel profile of a compiled model: each fused kernel's time inside the model next to the
latency its record was measured at alone.

Why: a model's end-to-end latency should be close to the weighted sum of its subgraphs' measured
latencies (Figures 10 and 13 report both). When it is not, some kernel runs slower inside the model
than in the measuring harness, and the subgraph tables built on those measurements are wrong for it.
That is how the harness's integer-input bug was found (inputs version 1 filled integers with 0, so
bert_tiny's attention mask masked everything: its softmax measured 0.22 ms and ran 2.5 ms in the
model); this command finds such a kernel in one run.

`alone=True` also times each kernel on its own from the compiled library, on the same thread pool:
warm, as the harness measures (`measure/worker.py`), and with the caches flushed before every call
(TVM's `cache_flush_cpu_non_first_arg`: every argument but the input leaves the caches, as a weight
does in a model larger than the last-level cache). Between the measured sum and the end-to-end
latency the gap then splits into: the measurement itself (a best of many noisy timings reads low;
the host's speed drifts between tuning and now), cold caches, the kernel inside the model, and the
VM between kernels: its other calls, timed by the same hook (allocation, tuples, views: `vm_calls`),
and what is left (`dispatch_ms`: its interpreter between calls, the Python call into the model).

Timing uses the Relax VM's instrument hook (a callback before and after every call the VM makes):
wall time per call of each fused PrimFunc, median over `runs` runs of the model. The hook's own cost
(a Python call, a few microseconds) is inside each call's time, so tiny kernels read a little high.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from tlm_core.errors import UserError
from tlm_core.ir.target import ResolvedTarget
from tlm_core.ui import progress


def kernel_tasks(mod, tasks) -> dict:
    """Fused PrimFunc name -> its task, matched by structural hash as task extraction makes them.

    Names alone do not do: extraction merges structurally equal functions under the first one's name.
    """
    import tvm

    from tlm_core.ir.tasks import structural_hash

    by_hash = {t.hash: t for t in tasks}
    out = {}
    for gv, func in mod.functions.items():
        if not isinstance(func, tvm.tirx.PrimFunc):
            continue
        # MetaSchedule's extraction makes each function `main` of its own module.
        task = by_hash.get(structural_hash(tvm.IRModule({"main": func.with_attr("global_symbol", "main")})))
        if task is not None:
            out[gv.name_hint] = task
    return out


def time_kernels(vm, args, names: set[str], runs: int) -> tuple[dict[str, list[float]], dict[str, int], dict, float]:
    """(kernel -> per-call seconds over all runs, kernel -> calls per run, other -> per-call seconds,
    median seconds of a run with the hook), via the VM's instrument hook. "Other" is every other call the VM makes: its builtins (allocation,
    tuples, shape checks, views) and any function that is not a task's kernel; what neither accounts
    for is the VM's dispatch between calls and the Python call into the model."""
    times: dict[str, list[float]] = defaultdict(list)
    others: dict[str, list[float]] = defaultdict(list)
    started: list[float] = []

    def hook(_func, symbol, before, _ret, *_args):
        if before:
            started.append(time.perf_counter())
            return 0  # VMInstrumentReturnKind.kNoOp: run the call as usual
        seconds = time.perf_counter() - started.pop()
        # A kernel whose weight layout was rewritten is split out as `<name>_prepacked` at compile time.
        symbol = str(symbol)
        kernel = symbol.removesuffix("_prepacked")
        (times[kernel] if kernel in names else others[symbol]).append(seconds)
        return 0

    from tlm_core.eval.e2e import _call_seconds

    vm.set_instrument(hook)
    hooked = [_call_seconds(lambda: vm["main"](*args)) for _ in progress(range(runs), "profile runs", unit="run")]
    calls = {k: len(v) // runs for k, v in times.items()}
    return dict(times), calls, dict(others), statistics.median(hooked)


def time_alone(lib, symbol: str, func, dev, repeat: int = 15) -> tuple[float, float] | None:
    """(warm, caches flushed) median seconds of kernel `symbol` (PrimFunc `func`) of `lib` called on
    its own with the harness's inputs (`worker._random_args`: in-bounds indices, masks that keep every
    position); None when it cannot run so. Warm: timed as the harness times (`MeasureConfig`)."""
    import tvm

    from tlm_core.measure.harness import MeasureConfig
    from tlm_core.measure.worker import _random_args, time_evaluator

    # A Relax VM library keeps its kernels in an imported (LLVM) module.
    owners = [lib, *lib.imports, *[i for m in lib.imports for i in m.imports]]
    owner = next((m for m in owners if m.implements_function(symbol)), None)
    if owner is None:
        return None
    cfg = MeasureConfig()
    try:
        args = [tvm.runtime.tensor(a, dev) for a in _random_args(func)]
        warm = time_evaluator(owner, symbol, dev, cfg.number, cfg.repeat, cfg.min_repeat_ms)(*args).results
        cold = time_evaluator(owner, symbol, dev, 1, repeat, 0, flush_caches=True)(*args).results
    except Exception:  # noqa: BLE001 (a kernel that cannot run on random inputs: not timed alone)
        return None
    return statistics.median(warm), statistics.median(cold)


def profile(source, db_dir, target: ResolvedTarget, runs: int = 20, threads: int = 0, flag: float = 2.0,
            min_share: float = 0.02, alone: bool = False) -> dict:
    """Compile `source` with `db_dir`'s best records, run it, and compare each kernel with its record.

    A kernel is flagged when it runs over `flag` times its measured latency in the model *and* the
    excess is at least `min_share` of the model's latency: the hook's few microseconds per call alone
    double the time of the smallest kernels, which changes nothing end to end.
    """
    import tvm
    from tvm import relax

    from tlm_core.eval.e2e import _median_seconds, build_model, set_threads

    if target.kind != "llvm":
        raise UserError(f"tlm profile runs on the CPU only (target {target.kind}): use a CPU target")
    if runs < 1:
        raise UserError("--runs must be at least 1")
    if flag <= 1.0:
        raise UserError("--flag must be above 1 (a ratio of in-model to measured time)")
    if not 0 <= min_share < 1:
        raise UserError("--min-share must be in [0, 1) (a fraction of the end-to-end latency)")
    pools = set_threads(threads, target.hardware.num_cores)
    dev = tvm.cpu()
    with tempfile.TemporaryDirectory(prefix="tlm-profile-") as tmp:
        lib = Path(tmp) / "model.so"
        built = build_model(source, db_dir, lib, target)
        tasks, best = built.tasks, built.best
        names = kernel_tasks(built.fused, tasks)
        vm = relax.VirtualMachine(tvm.runtime.load_module(str(lib)), dev)
        args = [tvm.runtime.tensor(x.numpy(), dev) for x in built.inputs]
        end_to_end = _median_seconds(lambda: vm["main"](*args), max(10, runs))
        times, calls, others, hooked = time_kernels(vm, args, set(names), runs)
        timed_alone = {}
        if alone:
            loaded = tvm.runtime.load_module(str(lib))
            funcs = {gv.name_hint.removesuffix("_prepacked"): (gv.name_hint, f)
                     for gv, f in built.built.functions.items() if isinstance(f, tvm.tirx.PrimFunc)}
            for name in progress(sorted(times), "kernels alone", unit="kernel"):
                timed_alone[name] = time_alone(loaded, *funcs[name], dev) if name in funcs else None
    rows = []
    for name, ts in times.items():
        task = names[name]
        rec = best.get(task.hash)
        per_call = statistics.median(ts)
        measured = None if rec is None else float(rec["latency_s"])
        ratio = None if not measured else per_call / measured
        rows.append({"kernel": name, "task_hash": task.hash, "calls": calls[name],
                     "model_ms_per_call": round(per_call * 1e3, 4),
                     "model_ms": round(per_call * calls[name] * 1e3, 4),
                     "measured_ms": None if measured is None else round(measured * 1e3, 4),
                     "ratio": None if ratio is None else round(ratio, 2),
                     "flag": ratio is not None and ratio > flag
                     and (per_call - measured) * calls[name] >= min_share * end_to_end,
                     **({"alone_ms": None if timed_alone.get(name) is None else round(timed_alone[name][0] * 1e3, 6),
                         "alone_flushed_ms": None if timed_alone.get(name) is None
                         else round(timed_alone[name][1] * 1e3, 6)} if alone else {})})
    # Pure reshapes are tasks (extraction sees their PrimFuncs) but the VM runs them as views
    # (vm.builtin.reshape): they cost nothing in the model, though their measured latency counts in
    # a weighted subgraph sum.
    for name, task in names.items():
        if name not in times:
            rec = best.get(task.hash)
            measured = None if rec is None else round(float(rec["latency_s"]) * 1e3, 4)
            rows.append({"kernel": name, "task_hash": task.hash, "calls": 0, "model_ms_per_call": None,
                         "model_ms": 0.0, "measured_ms": measured,
                         "ratio": None, "flag": False})
    rows.sort(key=lambda r: -r["model_ms"])
    kernels_ms = sum(r["model_ms"] for r in rows)
    measured_sum = sum(r["measured_ms"] * r["calls"] for r in rows if r["measured_ms"] is not None)
    if alone:
        # The same kernels in every sum, so that their differences are the steps between them.
        both = [r for r in rows if r["calls"] and r.get("alone_ms") is not None and r["measured_ms"] is not None]
        steps = {"kernels": len(both), "of": sum(1 for r in rows if r["calls"]),
                 "measured_ms": round(sum(r["measured_ms"] * r["calls"] for r in both), 4),
                 "alone_warm_ms": round(sum(r["alone_ms"] * r["calls"] for r in both), 4),
                 "alone_flushed_ms": round(sum(r["alone_flushed_ms"] * r["calls"] for r in both), 4),
                 "in_model_ms": round(sum(r["model_ms"] for r in both), 4)}
    # The VM's other calls, by symbol: per-call median x calls per run, as the kernels are counted.
    vm_calls = sorted(({"call": k, "calls": len(ts) // runs,
                        "ms": round(statistics.median(ts) * (len(ts) // runs) * 1e3, 4)} for k, ts in others.items()),
                      key=lambda r: -r["ms"])
    vm_calls_ms = sum(r["ms"] for r in vm_calls)
    return {"workload": source.name, "db": None if db_dir is None else str(db_dir), "runs": runs,
            **pools, "end_to_end_ms": round(end_to_end * 1e3, 4),
            "kernels_ms": round(kernels_ms, 4),
            # What the VM adds between kernels (allocation, builtins, the hook): end to end minus kernels.
            "outside_kernels_ms": round(end_to_end * 1e3 - kernels_ms, 4),
            # ... split into the VM's other calls (builtins: allocation, tuples, views) and the rest (the
            # VM's dispatch between calls, the Python call into the model).
            "vm_calls_ms": round(vm_calls_ms, 4), "vm_calls_per_run": sum(r["calls"] for r in vm_calls),
            "dispatch_ms": round(end_to_end * 1e3 - kernels_ms - vm_calls_ms, 4),
            # The hook's own cost, part of it inside every timed call: the model run with it, and its
            # cost per call. Where it is near a small kernel's time, read that kernel's row as an upper bound
            # (a negative dispatch_ms is this cost, not a VM that takes no time).
            "hooked_end_to_end_ms": round(hooked * 1e3, 4),
            "hook_us_per_call": round((hooked - end_to_end) * 1e6 / max(1, sum(calls.values()) + sum(
                r["calls"] for r in vm_calls)), 2),
            "measured_sum_ms": round(measured_sum, 4), "flag_ratio": flag, "min_share": min_share,
            "tuned_subgraphs": built.summary["tuned"], "tasks": len(tasks),
            "flagged": [r["kernel"] for r in rows if r["flag"]],
            "not_called": [r["kernel"] for r in rows if r["calls"] == 0],
            **({"alone_sums": steps} if alone else {}), "kernels": rows, "vm_calls": vm_calls}


# -- beside PyTorch ---------------------------------------------------------------------------------

#: Operator classes, for comparing a compiled model's kernels with PyTorch's operators: the first
#: pattern found in a fused kernel's name (its anchor op comes first) or in an aten op's name.
OP_CLASSES = (("conv", ("conv",)), ("matmul", ("matmul", "addmm", "linear", "bmm", "dense", "_mm")),
              ("attention", ("attention", "softmax")), ("norm", ("norm",)), ("pool", ("pool",)),
              ("activation", ("gelu", "relu", "tanh", "sigmoid", "silu", "clamp")))


def op_class(name: str) -> str:
    """The operator class of a kernel or aten op name ("other" for copies, reshapes, elementwise)."""
    low = name.lower().removeprefix("aten::").removeprefix("fused_")
    first = {cls: min((low.find(p) for p in pats if p in low), default=-1) for cls, pats in OP_CLASSES}
    found = [(i, cls) for cls, i in first.items() if i >= 0]
    return min(found)[1] if found else "other"


def profile_pytorch(source, runs: int = 20, threads: int = 0, cores: int = 0) -> dict:
    """PyTorch eager's own profiler on the workload: self CPU time per aten op, per run (ms)."""
    import torch

    from tlm_core.eval.e2e import set_threads

    set_threads(threads, cores or torch.get_num_threads())
    module, inputs = source.build()
    with torch.no_grad():
        for _ in range(3):  # warm-up: oneDNN primitives and allocator pools
            module(*inputs)
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            for _ in progress(range(runs), "pytorch profile runs", unit="run"):
                module(*inputs)
    ops = [{"op": e.key, "calls": round(e.count / runs, 2), "ms": round(e.self_cpu_time_total / 1e3 / runs, 4),
            "class": op_class(e.key)} for e in prof.key_averages() if e.self_cpu_time_total > 0]
    ops.sort(key=lambda r: -r["ms"])
    return {"runs": runs, "threads": torch.get_num_threads(), "ops_ms": round(sum(r["ms"] for r in ops), 4),
            "ops": ops}


def beside(tvm_profile: dict, torch_profile: dict) -> list[dict]:
    """Per operator class: the compiled model's kernel time beside PyTorch eager's (ms per run)."""
    classes: dict[str, dict] = defaultdict(lambda: {"tvm_ms": 0.0, "pytorch_ms": 0.0})
    for r in tvm_profile["kernels"]:
        classes[op_class(r["kernel"])]["tvm_ms"] += r["model_ms"]
    for r in torch_profile["ops"]:
        classes[r["class"]]["pytorch_ms"] += r["ms"]
    rows = [{"class": c, "tvm_ms": round(v["tvm_ms"], 3), "pytorch_ms": round(v["pytorch_ms"], 3),
             "ratio": round(v["tvm_ms"] / v["pytorch_ms"], 2) if v["pytorch_ms"] else None}
            for c, v in classes.items()]
    return sorted(rows, key=lambda r: -max(r["tvm_ms"], r["pytorch_ms"]))
