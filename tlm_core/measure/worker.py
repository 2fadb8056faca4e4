"""What runs inside the measurement worker processes (TVM's PopenWorker): build, check, time.

Kept free of heavy imports: a fresh worker imports TVM (~3 s) and the CPU tensor intrinsics
(~0.3 s), never MetaSchedule's LocalBuilder, whose default build imports every intrinsic (~30 s).
Everything here returns plain dicts; failures are returned, not raised, so the parent records them.
"""

from __future__ import annotations

import time
import traceback
from collections import OrderedDict
from functools import cache

import numpy as np

from tlm_core.ir.tasks import has_integer_inputs

#: References (arrays before and after the unscheduled run) kept per worker, by task hash.
_REFERENCES: OrderedDict[str, tuple[list[np.ndarray], list[np.ndarray]]] = OrderedDict()
_MAX_REFERENCES = 4


def init(target_kind: str, threads: int = 1) -> None:
    """Worker initializer: the size of its TVM pool (before any kernel makes one), then TVM and the
    target's tensor intrinsics, once."""
    from tlm_core.measure.threads import runtime_threads

    runtime_threads(threads)
    import tvm  # noqa: F401

    from tlm_core.tvm_env import load_tensor_intrinsics

    load_tensor_intrinsics(target_kind)


@cache
def _mod(task_hash: str, mod_json: str):
    import tvm

    return tvm.ir.load_json(mod_json)


@cache
def _target(target_json: str):
    import json

    import tvm

    return tvm.target.Target(json.loads(target_json))


def _error(exc: BaseException) -> str:
    """The last lines of a traceback: enough to tell a build error apart, small enough to store."""
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return text[-2000:]


def build(task_hash: str, mod_json: str, trace_json: str, target_json: str, artifact: str) -> dict:
    """Replay a trace on the task, compile it, export a shared library to `artifact`."""
    import json

    import tvm
    import tvm_ffi
    from tvm.s_tir import Schedule, Trace
    from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock

    start = time.perf_counter()
    try:
        sch = Schedule(_mod(task_hash, mod_json))
        Trace.apply_json_to_schedule(json.loads(trace_json), sch)
        # As MetaSchedule's default build: weight-layout rewrites are timed on pre-laid-out weights
        # ("main", whose weight parameters then take the rewritten layout; the model folds the rewrite
        # into its constants). The whole schedule, rewrite included, keeps the task's signature: it is
        # built beside as CHECK, the function compared with the unscheduled reference.
        mod = RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(sch.mod)
        shapes = None
        # Compared whole, not by shapes: a rewrite may keep a weight's shape (a square transpose).
        if not tvm_ffi.structural_equal(mod, sch.mod):
            shapes = [[[int(d) for d in p.shape], str(p.dtype)] for p in mod["main"].params]
            mod = tvm.IRModule({"main": mod["main"], CHECK: sch.mod["main"].with_attr("global_symbol", CHECK)})
        tvm.compile(mod, _target(target_json)).export_library(artifact)
    except Exception as exc:  # any failure of one candidate is that candidate's result
        return {"ok": False, "error": _error(exc), "build_s": time.perf_counter() - start}
    if shapes is not None:
        with open(artifact + ".args.json", "w") as f:
            json.dump(shapes, f)
    return {"ok": True, "error": "", "build_s": time.perf_counter() - start}


#: The function of a candidate with a weight-layout rewrite that keeps the task's signature.
CHECK = "check_with_layout_rewrite"


def _rewritten_shapes(artifact: str) -> list | None:
    """[shape, dtype] of each parameter of a candidate's timed function when a weight-layout rewrite
    changed them (written by `build`), else None."""
    import json
    import os

    path = artifact + ".args.json"
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def _rng_fill(shape: list, dtype: str) -> np.ndarray:
    """A re-laid-out weight for timing: its values do not change a float kernel's time (integer
    inputs are never layout-free weights)."""
    return np.random.default_rng(0).uniform(-1.0, 1.0, shape).astype(dtype)


#: How measurement inputs are made; recorded with every record, and part of the content key (and of
#: the reference cache's) of every task with integer or bool inputs, the only ones it changes.
#: Version 1 filled integers with 0: an attention mask of zeros masks every position, a Select then
#: always takes the same branch, and LLVM deletes the work of the other (bert_tiny's masked softmax:
#: 0.22 ms measured, 2.5 ms in the model). Version 2 gives index buffers in-bounds random values and
#: every other integer or bool input 1 (a mask that keeps every position, as the workloads' inputs do).
INPUTS = 2


def _loads(e):
    """Every buffer load inside an expression (tirx names a load TensorLoad or BufferLoad)."""
    name = type(e).__name__
    if name in ("TensorLoad", "BufferLoad"):
        yield e
        for idx in e.indices:
            yield from _loads(idx)
        return
    for field in ("a", "b", "value", "condition", "true_value", "false_value", "body"):
        child = getattr(e, field, None)
        if child is not None and not isinstance(child, (int, float, str)):
            yield from _loads(child)
    for arg in getattr(e, "args", None) or ():
        yield from _loads(arg)


def _buffer_of(load):
    return load.source if hasattr(load, "source") else load.buffer


def _stores(s):
    """(buffer, indices, value) of every buffer store in a statement."""
    name = type(s).__name__
    if name == "BufferStore":
        yield s.buffer, list(s.indices), s.value
    elif name == "SeqStmt":
        for child in s.seq:
            yield from _stores(child)
    elif name == "SBlockRealize":
        yield from _stores(s.block)
    else:
        if getattr(s, "init", None) is not None:
            yield from _stores(s.init)
        for field in ("body", "then_case", "else_case"):
            child = getattr(s, field, None)
            if child is not None:
                yield from _stores(child)


def index_bounds(func) -> dict:
    """Buffer -> the smallest extent it indexes, for buffers whose values are used as indices.

    A buffer that feeds (through stores) a buffer used as an index gets that bound too: a cast of
    input ids to int32 before a `take` still indexes the table.
    """
    stores = list(_stores(func.body))
    bounds: dict = {}

    def bound(buf, extent) -> bool:
        if buf in bounds and bounds[buf] <= extent:
            return False
        bounds[buf] = extent
        return True

    def visit(buf, indices) -> bool:
        changed = False
        for dim, idx in enumerate(indices):
            for load in _loads(idx):
                changed |= bound(_buffer_of(load), int(buf.shape[dim]))
        return changed

    changed = True
    while changed:
        changed = False
        for buf, indices, value in stores:
            changed |= visit(buf, indices)
            for load in _loads(value):
                changed |= visit(_buffer_of(load), load.indices)
            if buf in bounds:  # values stored into an index buffer are indices too
                for load in _loads(value):
                    if not str(_buffer_of(load).dtype).startswith("float"):
                        changed |= bound(_buffer_of(load), bounds[buf])
    return bounds


def _random_args(func) -> list[np.ndarray]:
    """Deterministic inputs for every buffer parameter (outputs too: both runs start equal).

    Floats uniform in [-1, 1); integers used as indices uniform over the extent they index; any
    other integer or bool 1 (see INPUTS).
    """
    rng = np.random.default_rng(0)
    bounds = index_bounds(func) if has_integer_inputs(func) else {}
    arrays = []
    for param in func.params:  # tirx PrimFunc parameters are the buffers themselves
        shape = [int(s) for s in param.shape]
        dtype = str(param.dtype)
        if dtype.startswith("float"):
            arrays.append(rng.uniform(-1.0, 1.0, shape).astype(dtype))
        elif param in bounds:
            arrays.append(rng.integers(0, max(1, bounds[param]), shape).astype(dtype))
        else:
            arrays.append(np.ones(shape, dtype=dtype))
    return arrays


#: A reference larger than this (the buffers the run wrote) is recomputed rather than kept on disk.
#: The biggest subgraphs are the ones to keep: a candidate that times out takes the runner process,
#: and its in-memory references, with it, and their naive loops take a minute (resnet3d_18's conv3d
#: at batch 4: 69 GFLOP, an 80 MB output) -- paid again before every later candidate of the task.
MAX_CACHED_REFERENCE_BYTES = 1 << 30


def _load_reference(path: str, func) -> tuple[list[np.ndarray], list[np.ndarray]] | None:
    try:
        with np.load(path) as f:
            stored = {k: f[k] for k in f.files}
    except (OSError, ValueError, KeyError):
        return None  # missing or torn file: recompute
    before = _random_args(func)  # deterministic: not stored (drawn only once the file is read)
    n = int(stored.pop("n")) if "n" in stored else len(stored)
    if n != len(before):
        return None
    # Buffers the run did not write are not stored (`_save_reference`): they are the inputs.
    after = [stored[f"a{i}"] if f"a{i}" in stored else before[i] for i in range(n)]
    if [(a.shape, a.dtype) for a in after] != [(b.shape, b.dtype) for b in before]:
        return None
    return before, after


def _save_reference(path: str, before: list[np.ndarray], after: list[np.ndarray]) -> None:
    import os

    # Only the buffers the run wrote: the inputs are regenerated from their seed (half of a
    # convolution's bytes, or more, are its input and weights).
    written = {f"a{i}": a for i, (b, a) in enumerate(zip(before, after)) if not np.array_equal(a, b, equal_nan=True)}
    if sum(a.nbytes for a in written.values()) > MAX_CACHED_REFERENCE_BYTES:
        return
    tmp = f"{path}.{os.getpid()}.tmp.npz"
    np.savez(tmp, n=np.int64(len(after)), **written)
    os.replace(tmp, path)  # atomic: a reader sees the whole file or none


def reference(task_hash: str, mod_json: str, target_json: str, cache_file: str | None = None) -> dict:
    """Build and run the unscheduled task once (cached per worker, and on disk in `cache_file`).

    The unscheduled program is naive loops: seconds per big subgraph, and it was paid again for every
    subgraph in every round of the iterative loop. Its outputs on the fixed random inputs are the same
    each time, so they are kept on disk (the inputs are regenerated from their seed).
    """
    import tvm

    if task_hash in _REFERENCES:
        _REFERENCES.move_to_end(task_hash)
        return {"ok": True, "error": "", "seconds": 0.0, "cached": True}
    start = time.perf_counter()
    try:
        mod = _mod(task_hash, mod_json)
        loaded = _load_reference(cache_file, mod["main"]) if cache_file else None
        if loaded is None:
            lib = tvm.compile(mod, _target(target_json))
            before = _random_args(mod["main"])
            dev = tvm.cpu() if _target(target_json).kind.name == "llvm" else tvm.cuda()
            args = [tvm.runtime.tensor(a, dev) for a in before]
            lib["main"](*args)
            after = [a.numpy() for a in args]
            if cache_file:
                _save_reference(cache_file, before, after)
        else:
            before, after = loaded
    except Exception as exc:
        return {"ok": False, "error": _error(exc), "seconds": time.perf_counter() - start}
    _REFERENCES[task_hash] = (before, after)
    while len(_REFERENCES) > _MAX_REFERENCES:
        _REFERENCES.popitem(last=False)
    return {"ok": True, "error": "", "seconds": time.perf_counter() - start, "cached": loaded is not None}


def _max_rel_err(got: list[np.ndarray], want: list[np.ndarray]) -> float:
    """Largest |got - want| over all buffers, relative to each buffer's largest |want| (>= 1)."""
    worst = 0.0
    for g, w in zip(got, want):
        if g.dtype == bool or np.issubdtype(g.dtype, np.integer):
            worst = max(worst, float(np.any(g != w)))
            continue
        g64, w64 = g.astype(np.float64), w.astype(np.float64)
        nan_ok = np.isnan(g64) == np.isnan(w64)
        if not nan_ok.all():
            return float("inf")
        diff = np.nan_to_num(np.abs(g64 - w64), nan=0.0)
        scale = max(1.0, float(np.nanmax(np.abs(w64))) if w64.size else 1.0)
        worst = max(worst, float(diff.max(initial=0.0)) / scale)
    return worst


def time_evaluator(lib, symbol: str, dev, number: int, repeat: int, min_repeat_ms: int,
                   flush_caches: bool = False):
    """TVM's timer of `lib`'s `symbol`: warm (`number` calls a repeat, for at least `min_repeat_ms`),
    or with `flush_caches` one call a repeat after every argument but the first leaves the caches
    (TVM's `cache_flush_cpu_non_first_arg`, Ansor's `enable_cpu_cache_flush`: a weight read from
    memory, as in a model too big for the caches)."""
    if flush_caches:
        return lib.time_evaluator(symbol, dev, number=1, repeat=repeat, min_repeat_ms=0,
                                  f_preproc="cache_flush_cpu_non_first_arg")
    return lib.time_evaluator(symbol, dev, number=number, repeat=repeat, min_repeat_ms=min_repeat_ms)


def run(task_hash: str, mod_json: str, target_json: str, artifact: str, check: bool, number: int,
        repeat: int, min_repeat_ms: int, flush_caches: bool = False) -> dict:
    """Load a built candidate, compare its output with the reference, then time it (`flush_caches`:
    each repeat one call, after flushing every argument but the first from the caches)."""
    import tvm

    start = time.perf_counter()
    try:
        lib = tvm.runtime.load_module(artifact)
        dev = tvm.cpu() if _target(target_json).kind.name == "llvm" else tvm.cuda()
        if check:
            before, after = _REFERENCES[task_hash]
        else:
            before = _random_args(_mod(task_hash, mod_json)["main"])
        args = [tvm.runtime.tensor(a, dev) for a in before]
        err = None
        if check:
            lib[CHECK if lib.implements_function(CHECK) else "main"](*args)
            err = _max_rel_err([a.numpy() for a in args], after)
        shapes = _rewritten_shapes(artifact)
        if shapes is not None:
            args = [a if list(a.shape) == shape else tvm.runtime.tensor(_rng_fill(shape, dtype), dev)
                    for a, (shape, dtype) in zip(args, shapes)]
        timer = time_evaluator(lib, "main", dev, number, repeat, min_repeat_ms, flush_caches)
        results = [float(x) for x in timer(*args).results]
        threads = int(tvm.get_global_func("runtime.NumThreads")())  # the pool the kernel ran on
    except Exception as exc:
        return {"ok": False, "error": _error(exc), "run_s": time.perf_counter() - start}
    return {"ok": True, "error": "", "latencies_s": results, "max_rel_err": err, "threads": threads,
            "run_s": time.perf_counter() - start}
