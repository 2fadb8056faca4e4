"""`roller`: a Roller-style CPU heuristic (after Roller, OSDI'22): hardware-aligned tiles ranked by an
analytic data-reuse model, only the top `budget` programs measured. No search, no learned model.

Per sketch of MetaSchedule's CPU space (multi-level tiling SSRSRS: each spatial loop split into 4
levels, each reduction loop into 2), a pool of candidate programs is drawn with every decision
from its valid domain (through `replay`: only valid programs), restricted to hardware-aligned values:
  * the innermost spatial loop (vectorized): its register-level factor is a multiple of the SIMD
    lanes (simd_bits / 32 for float32), at most 4 vectors wide;
  * the other spatial loops: register-level factor <= 8 (rows of the register tile);
  * reduction-only tasks (row reductions): the inner reduction factor a multiple of the lanes;
  * parallel extent: the largest the sketch allows (enough outer iterations for num_cores);
    vectorize extent: the largest allowed up to 2 vectors; unroll: 16 or 64 steps;
    compute locations: uniform among the valid ones (TVM samples them).
Each program is then scored by the model below, and the `budget` cheapest, taken in turn from each
sketch (the model does not tell sketches apart), are measured.

Cost model, for tiled contractions (a GEMM view: the last spatial loop is N, the others M, the
reductions K; factors (f0, f1, f2, f3) per spatial loop, (r0, r1) per reduction loop):
  register tile Rm x Rn = prod f3 (rows) x f3 (N): L1 loads = MNK (1/Rn + 1/Rm);
  L1 tile Tm x Tn x Tk = prod f2 f3 x f2 f3 x prod r1: L2 -> L1 traffic = MNK (1/Tn + 1/Tm), x4 when
      the tile's floats (Tm Tk + Tk Tn + Tm Tn) exceed L1;
  L2 tile (f1 f2 f3 per spatial loop, all of K): memory -> L2 traffic = MNK (1/Tn2 + 1/Tm2), x4 when
      the tile exceeds L2;
  cost = L1 loads + 2 x L2 traffic + 8 x memory traffic (relative costs per float), x4 when the
      register tile's accumulators and operands (Rm ceil(Rn/lanes) + ceil(Rn/lanes) + 1) exceed the
      vector registers, x (cores / parallel tiles) when the outer level gives fewer parallel tiles than
      cores (and the rounding loss when they do not divide evenly).
Tasks without such tiles (element-wise, reductions) all score alike: the aligned pool is sampled.
"""

from __future__ import annotations

import math

import numpy as np

from tlm_core.methods import Method, register
from tlm_core.ui import progress

#: Candidate programs drawn per sketch before ranking (at least 4 x budget).
POOL = 48


def _available() -> tuple[bool, str]:
    return True, ""


def _roles(program) -> list[str]:
    """Role of each tile decision, in order: 'vec' (innermost spatial), 'row' (other spatial), 'red'."""
    tiles = [d for d in program.decisions if d.kind == "tile"]
    spatial = [i for i, d in enumerate(tiles) if d.header[0] == 4]
    roles = ["row" if d.header[0] == 4 else "red" for d in tiles]
    if spatial:
        roles[spatial[-1]] = "vec"
    return roles


def _chooser(rng, roles: list[str], hardware, contraction: bool):
    lanes = max(1, hardware.simd_bits // 32)
    count = [0]

    def choose(kind, header, domain):
        if kind == "location":
            return None  # TVM: uniform over the valid locations
        values = domain()
        if kind == "parallel":
            return max(values)
        if kind == "vectorize":
            fit = [v for v in values if v[0] <= 2 * lanes]
            return max(fit) if fit else min(values)
        if kind == "categorical":
            pref = [(i,) for i, c in enumerate(header) if c in (16, 64)]
            return pref[int(rng.integers(len(pref)))] if pref else values[int(rng.integers(len(values)))]
        role = roles[count[0]] if count[0] < len(roles) else "red"
        count[0] += 1
        if role == "vec":
            fit = [v for v in values if v[-1] % lanes == 0 and v[-1] <= 4 * lanes]
        elif role == "row":
            fit = [v for v in values if v[-1] <= 8]
        else:
            fit = values if contraction else [v for v in values if v[-1] % lanes == 0]
        fit = fit or values
        return fit[int(rng.integers(len(fit)))]

    choose.stateless = True  # needs no schedule state: static sketches replay without callbacks
    return choose


def cost(program, hardware) -> float:
    """The analytic data-movement cost of a program (lower is better); 0 for non-contractions."""
    tiles = [d for d in program.decisions if d.kind == "tile"]
    roles = _roles(program)
    spatial = [(d, r) for d, r in zip(tiles, roles) if r in ("row", "vec")]
    reduction = [d for d, r in zip(tiles, roles) if r == "red"]
    if not spatial or not reduction:
        return 0.0
    lanes = max(1, hardware.simd_bits // 32)
    vec = next(d.value for d, r in spatial if r == "vec")
    rows = [d.value for d, r in spatial if r == "row"]
    n_dim = math.prod(vec)
    m_dim = math.prod(math.prod(v) for v in rows)
    k_dim = math.prod(math.prod(d.value) for d in reduction)
    mnk = float(m_dim * n_dim * k_dim)
    rm, rn = math.prod(v[3] for v in rows), vec[3]
    tm, tn = math.prod(v[2] * v[3] for v in rows), vec[2] * vec[3]
    tk = math.prod(d.value[-1] for d in reduction)
    tm2, tn2 = math.prod(v[1] * v[2] * v[3] for v in rows), vec[1] * vec[2] * vec[3]
    l1 = mnk * (1 / tn + 1 / tm) * (4 if 4 * (tm * tk + tk * tn + tm * tn) > hardware.l1d_kb * 1024 else 1)
    l2 = mnk * (1 / tn2 + 1 / tm2) * (4 if 4 * (tm2 * k_dim + k_dim * tn2 + tm2 * tn2) > hardware.l2_kb * 1024 else 1)
    c = mnk * (1 / rn + 1 / rm) + 2 * l1 + 8 * l2
    vregs = rm * math.ceil(rn / lanes) + math.ceil(rn / lanes) + 1
    if vregs > hardware.vector_registers:
        c *= 4
    parallel = math.prod(v[0] for v in rows) * vec[0]
    cores = max(1, hardware.num_cores)
    if parallel < cores:
        c *= cores / parallel
    else:
        c *= math.ceil(parallel / cores) * cores / parallel
    return c


def ranked_programs(task, target, budget: int, seed: int = 0) -> list:
    """The `budget` best (Schedule, Program) of a task by the model, sketches taken in turn."""
    from tlm_core.ir.space import design_space
    from tlm_core.language.program import random_chooser, replay

    space = design_space(task, target)
    hw = target.hardware
    rng = np.random.default_rng([seed, int(task.hash[:12], 16)])
    per_sketch = []
    pool = max(POOL, 4 * budget)
    for k in range(len(space.sketches)):
        _, probe = replay(space, k, random_chooser(np.random.default_rng(0)), hw)
        roles = _roles(probe)
        contraction = "vec" in roles and "red" in roles
        seen, scored = set(), []
        for _ in range(pool if contraction else min(pool, 2 * budget)):
            sch, program = replay(space, k, _chooser(rng, roles, hw, contraction), hw,
                                  seed=int(rng.integers(1, 2**30)))
            if sch is None or program in seen:
                continue
            seen.add(program)
            scored.append((cost(program, hw), len(scored), sch, program))
        scored.sort(key=lambda x: (x[0], x[1]))
        per_sketch.append(scored)
    out = []
    for i in range(max((len(s) for s in per_sketch), default=0)):  # round robin over sketches
        for s in per_sketch:
            if i < len(s) and len(out) < budget:
                out.append(s[i])
    return [(sch, program, c) for c, _, sch, program in out]


def candidates(workload: str, task, target, budget: int, seed: int) -> list:
    """The `budget` cheapest programs of a task by the model, as measurable candidates."""
    from tlm_core.train.demonstrations import candidate

    return [candidate(workload, task, "roller", sch, p, model_cost=c)
            for sch, p, c in ranked_programs(task, target, budget, seed)]


def _tune(tasks, target, budget, measurer, workload, seed):
    cands = []
    for task in progress(tasks, "roller: rank", unit="task"):
        cands += candidates(workload, task, target, budget, seed)
    return cands, {"pool_per_sketch": POOL, "model": "analytic register/L1/L2 data-movement cost (see module doc)"}


METHOD = register(Method("roller", "Roller-style CPU heuristic: hardware-aligned tiles (SIMD lanes, vector registers, "
                "L1/L2, cores) ranked by an analytic data-reuse model; the top budget programs per subgraph "
                "measured", True, _available, _tune))
