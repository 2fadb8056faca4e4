"""Features of a program: one fixed-width vector per (task, hardware, schedule, decisions).

Four blocks, in this order (`names()` lists every column):
  * task: log2 of the subgraph's FLOPs (the same for every candidate of a task; lets the trees tell
    a tiny element-wise subgraph from a big convolution);
  * hardware: SIMD width, cores, vector registers, cache sizes, AVX-512 (from the target's Hardware);
  * decisions: read straight from the program's decisions, no TVM call: the sketch, tile factors per
    tiling level (log2, summed over the tiled loops), the register tile against the SIMD lanes and
    registers, the parallel and vectorize extents against their limits, the cores and the lanes,
    the unroll choice, compute locations;
  * stores: MetaSchedule's per-store features (`PerStoreFeature`, what its XGBoost cost model reads:
    arithmetic, vectorize/unroll/parallel annotations, buffer access and reuse per store, arithmetic
    intensity curve...) of the postprocessed schedule, summed and maxed over the stores, plus the
    store count.

`program_features` is what the method calls on generated candidates (their schedules are already
built). Records of the demonstration data carry only (task, sketch, decisions): `rebuild` makes
their schedule with one TVM replay, no Python callback per instruction (a record's decisions were
valid when it was measured), about 10x faster than `apply_program`'s checked replay, the same module.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np

from tlm_core.language.program import (
    EXTENT_ANNOTATIONS,
    Program,
    _fresh_schedule,
    _sketch_insts,
    _with_extent,
)

#: Bump when a feature changes meaning or order: a ranker records the version it was trained on and
#: refuses features of another one; cached record features are keyed by it.
FEATURE_VERSION = 1

#: MetaSchedule's per-store feature vector (buffers_per_store=5, 10 arithmetic-intensity samples,
#: 64-byte cache lines, no workload features): 164 columns.
STORE_WIDTH = 164

TASK_NAMES = ("task_log2_flops",)
HARDWARE_NAMES = ("hw_simd_bits", "hw_num_cores", "hw_vector_registers", "hw_log2_l1d_kb", "hw_log2_l2_kb",
                  "hw_log2_l3_kb", "hw_avx512")
DECISION_NAMES = (
    "sketch", "n_decisions",
    "tile4_n", "tile4_l0", "tile4_l1", "tile4_l2", "tile4_l3", "tile4_log2_extent",
    "tile2_n", "tile2_l0", "tile2_l1", "tile2_log2_extent",
    "tile_other_n", "tile_other_outer", "tile_other_inner",
    "vec_axis_inner", "vec_axis_inner_vs_lanes", "reg_tile_vs_registers", "reg_tile_with_reduce",
    "has_parallel", "parallel_log2", "parallel_room", "parallel_vs_cores",
    "has_vectorize", "vectorize_log2", "vectorize_room", "vectorize_vs_lanes",
    "categorical_n", "unroll_log2", "categorical_index",
    "loc_inline", "loc_root", "loc_loop", "loc_mean",
)
STORE_NAMES = (*(f"store_sum_{i}" for i in range(STORE_WIDTH)), *(f"store_max_{i}" for i in range(STORE_WIDTH)),
               "store_count")


def names() -> tuple[str, ...]:
    """Every feature column, in order."""
    return (*TASK_NAMES, *HARDWARE_NAMES, *DECISION_NAMES, *STORE_NAMES)


def width() -> int:
    return len(names())


def _log2(x: float) -> float:
    return math.log2(x) if x > 0 else 0.0


def task_features(task) -> list[float]:
    return [_log2(max(task.flops, 1.0))]


@cache
def hardware_features(hardware) -> tuple[float, ...]:
    """The hardware block (cached: one Hardware per target)."""
    return (float(hardware.simd_bits), float(hardware.num_cores), float(hardware.vector_registers),
            _log2(hardware.l1d_kb), _log2(hardware.l2_kb), _log2(hardware.l3_kb),
            float("avx512f" in hardware.features))


def decision_features(program: Program, hardware) -> list[float]:
    """The decisions block: what a program chose, in numbers comparable across subgraphs."""
    lanes = max(1, hardware.simd_bits // 32)  # float32 lanes
    f = dict.fromkeys(DECISION_NAMES, 0.0)
    f["sketch"] = float(program.sketch)
    f["n_decisions"] = float(len(program.decisions))
    tiles4, tiles2, other, cats, locs = [], [], [], [], []
    for d in program.decisions:
        if d.kind == "tile":
            (tiles4 if d.header[0] == 4 else tiles2 if d.header[0] == 2 else other).append(d)
        elif d.kind == "categorical":
            cats.append(d)
        elif d.kind == "location":
            locs.append(d.value[0])
        elif d.kind in ("parallel", "vectorize"):
            value, limit = d.value[0], d.header[0]
            f[f"has_{d.kind}"] = 1.0
            f[f"{d.kind}_log2"] = _log2(value)
            f[f"{d.kind}_room"] = _log2(limit) - _log2(value)
            if d.kind == "parallel":
                f["parallel_vs_cores"] = _log2(value) - _log2(hardware.num_cores)
            else:
                f["vectorize_vs_lanes"] = _log2(value) - _log2(lanes)
    f["tile4_n"], f["tile2_n"], f["tile_other_n"] = float(len(tiles4)), float(len(tiles2)), float(len(other))
    for level in range(4):
        f[f"tile4_l{level}"] = sum(_log2(d.value[level]) for d in tiles4)
    for level in range(2):
        f[f"tile2_l{level}"] = sum(_log2(d.value[level]) for d in tiles2)
    f["tile4_log2_extent"] = sum(_log2(d.header[1]) for d in tiles4)
    f["tile2_log2_extent"] = sum(_log2(d.header[1]) for d in tiles2)
    f["tile_other_outer"] = sum(_log2(d.value[0]) for d in other)
    f["tile_other_inner"] = sum(_log2(d.value[-1]) for d in other)
    if tiles4:
        inner = tiles4[-1].value[-1]  # the innermost spatial loop: the one vectorized
        f["vec_axis_inner"] = _log2(inner)
        f["vec_axis_inner_vs_lanes"] = _log2(inner) - _log2(lanes)
        # The register tile (innermost spatial level) against what the vector registers hold.
        f["reg_tile_vs_registers"] = f["tile4_l3"] - _log2(lanes * max(1, hardware.vector_registers))
        f["reg_tile_with_reduce"] = f["tile4_l3"] + f["tile2_l1"]
    if cats:
        f["categorical_n"] = float(len(cats))
        f["unroll_log2"] = max(_log2(1 + d.header[d.value[0]]) for d in cats)
        f["categorical_index"] = float(np.mean([d.value[0] for d in cats]))
    if locs:
        f["loc_inline"] = float(sum(v == -2 for v in locs))
        f["loc_root"] = float(sum(v == -1 for v in locs))
        f["loc_loop"] = float(sum(v >= 0 for v in locs))
        f["loc_mean"] = float(np.mean(locs))
    return list(f.values())


def aggregate(rows: np.ndarray) -> np.ndarray:
    """The stores block of one program from its per-store rows (n_stores x STORE_WIDTH)."""
    rows = np.asarray(rows, dtype=np.float32).reshape(-1, STORE_WIDTH)
    if not len(rows):
        return np.zeros(2 * STORE_WIDTH + 1, dtype=np.float32)
    return np.concatenate([rows.sum(0), rows.max(0), [len(rows)]]).astype(np.float32)


@cache
def _extractor():
    from tvm.s_tir import meta_schedule as ms

    fe = ms.feature_extractor.PerStoreFeature(buffers_per_store=5, arith_intensity_curve_num_samples=10,
                                              cache_line_bytes=64, extract_workload=False)
    assert int(fe.feature_vector_length) == STORE_WIDTH, fe.feature_vector_length
    return fe


_CONTEXTS: dict = {}  # (task hash, target) -> TuneContext (the extractor reads its target)


def store_rows(task, target, schedules) -> list[np.ndarray]:
    """MetaSchedule's per-store features of postprocessed schedules of `task` (one matrix each)."""
    from tvm.s_tir import meta_schedule as ms

    if not schedules:
        return []
    key = (task.hash, target)
    if key not in _CONTEXTS:
        _CONTEXTS[key] = ms.TuneContext(mod=task.mod, target=target.tvm, task_name=task.name, num_threads=1)
    args = ms.arg_info.ArgInfo.from_prim_func(task.mod["main"])
    cands = [ms.MeasureCandidate(sch, args) for sch in schedules]
    return [t.numpy().astype(np.float32) for t in _extractor().extract_from(_CONTEXTS[key], cands)]


def assemble(task, hardware, programs, rows) -> np.ndarray:
    """The feature matrix of programs of one task on one hardware from their per-store rows."""
    head = [*task_features(task), *hardware_features(hardware)]
    out = np.empty((len(programs), width()), dtype=np.float32)
    for i, (program, r) in enumerate(zip(programs, rows)):
        out[i] = np.concatenate([head, decision_features(program, hardware), aggregate(r)])
    return out


def program_features(task, target, items) -> np.ndarray:
    """Features of candidates of one task: items are (postprocessed Schedule, Program) pairs."""
    items = list(items)
    rows = store_rows(task, target, [sch for sch, _ in items])
    return assemble(task, target.hardware, [p for _, p in items], rows)


_EXTENT_KINDS = frozenset(EXTENT_ANNOTATIONS.values())


def rebuild(space, program: Program):
    """The postprocessed schedule of a measured program (its decisions trusted), or None if a
    postprocessor rejects it or the replay fails."""
    from tvm.s_tir import Trace

    extents = [d for d in program.decisions if d.kind in _EXTENT_KINDS]
    sampling = [d for d in program.decisions if d.kind not in _EXTENT_KINDS]
    insts, decisions = [], {}
    try:
        for pos, inst, kind in _sketch_insts(space, program.sketch):
            if kind is not None:
                inst = _with_extent((id(space), program.sketch, pos), inst, int(extents.pop(0).value[0]))
            elif inst.kind.name == "SamplePerfectTile":
                decisions[inst] = [int(v) for v in sampling.pop(0).value]
            elif inst.kind.name in ("SampleCategorical", "SampleComputeLocation"):
                decisions[inst] = int(sampling.pop(0).value[0])
            insts.append(inst)
        sch = _fresh_schedule(space.task, 1)
        Trace(insts, decisions).apply_to_schedule(sch, remove_postproc=True)
        if not all(p.apply(sch) for p in space.postprocs):
            return None
    except Exception:  # noqa: BLE001 - a record of another design space (TVM version): no features
        return None
    return sch
