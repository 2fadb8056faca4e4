"""The tuning methods compared with TLM, behind one interface.

A `Method` turns (subgraph tasks, target, budget) into measured records in one RecordStore, through
the same `Measurer` (build, check against the unscheduled program, time), so that every method is
compared by the same harness. `budget` is candidates measured per subgraph (MetaSchedule: trials
per subgraph). `compile_seconds` is the wall time of search or generation, builds and measurements,
summed over the `tune` calls that filled the store (a stopped run resumed: methods/clock.py).

Methods without per-subgraph tuning (PyTorch) or not runnable here (TensorRT without CUDA) are in
the registry too: `available()` says why not, and `tune` raises a UserError saying what to use.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tlm_core.errors import UserError
from tlm_core.ir.workloads import canonical
from tlm_core.measure.harness import OK, SLOWER, Candidate, MeasureConfig, Measurer
from tlm_core.methods.clock import CompileClock


@dataclass
class TuneResult:
    """What a method's `tune` did: counts, wall seconds, and the best record per subgraph."""

    method: str
    workload: str
    tasks: int
    candidates: int  # candidates handed to the measurer (distinct ones measured once)
    measured: int  # records with status ok
    failed: int  # records with any other status but `slower`
    compile_seconds: float  # search/generation + builds + measurements, wall clock, every call (clock.py)
    weighted_latency_ms: float | None  # sum over subgraphs of weight x best latency (None: some lack one)
    measured_latency_ms: float  # the same sum over the subgraphs that have an ok record
    tasks_without_record: list = field(default_factory=list)  # names of subgraphs with no ok record
    per_task: list = field(default_factory=list)  # {name, hash, weight, best_ms, candidates, ok}
    notes: dict = field(default_factory=dict)  # method-specific (builder used, search settings...)
    store: str = ""
    slower: int = 0  # records stopped as slower than the best so far (MeasureConfig.prune_slower)
    compile_calls: int = 1  # tune calls whose seconds compile_seconds sums (more than one: resumed)
    # True when the store held work from a call before the compile-time clock (clock.py) existed,
    # found by this call or an earlier one of the run: compile_seconds then leaves that time out.
    compile_seconds_partial: bool = False

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Method:
    """One tuning method of the comparison."""

    name: str
    description: str
    tunes_subgraphs: bool  # False: end-to-end only (numbers come from `bench`)
    _available: Callable[[], tuple[bool, str]]
    _tune: Callable | None = None  # (tasks, target, budget, measurer, workload, seed) -> (cands, notes)

    def available(self) -> tuple[bool, str]:
        """(can run here, why not when it cannot)."""
        return self._available()

    def to_json(self) -> dict:
        ok, why = self.available()
        return {"name": self.name, "description": self.description, "available": ok, "why": why,
                "tunes_subgraphs": self.tunes_subgraphs}

    def tune(self, tasks, target, budget: int, store_dir, workload: str = "", *,
             config: MeasureConfig | None = None, seed: int = 0, measurer: Measurer | None = None) -> TuneResult:
        """Search/generate `budget` candidates per subgraph, measure them into `store_dir`.

        `measurer`: an open Measurer to use instead of a new one on `store_dir` (its store and
        settings then apply; saves starting worker processes when several methods run in a row).
        """
        ok, why = self.available()
        if not ok:
            raise UserError(f"method {self.name} is not available: {why}")
        if not self.tunes_subgraphs or self._tune is None:
            raise UserError(f"method {self.name} does not tune subgraphs (end to end only); "
                            f"use `tlm bench --method {self.name}`")
        if budget < 1:
            raise UserError("--budget must be at least 1")
        own = measurer is None
        folder = Path(store_dir) if own else measurer.store.folder
        config = (config or MeasureConfig()) if own else measurer.config
        # One store may hold several runs (collection's, or a test's shared measurer): the clock is
        # kept per method, workload, budget, seed, subgraphs and measuring settings.
        run = canonical({"method": self.name, "workload": workload, "budget": budget, "seed": seed,
                         "tasks": sorted(t.hash for t in tasks), "measure": config.key_fields()})
        clock = CompileClock(folder, hashlib.sha256(run.encode()).hexdigest()[:16])  # before the workers start
        m = Measurer(target, folder, config) if own else measurer
        m.on_stored = clock.mark
        m.on_resumed = clock.settle  # a search tells what it kept as soon as it knows (metaschedule.py)
        try:
            candidates, notes = self._tune(list(tasks), target, budget, m, workload, seed)
            # Work kept from a call before the clock existed (its records, subgraphs its search
            # finished) has no time on the clock: say that the total leaves it out.
            clock.settle(sum(m.key(c) in m.store for c in candidates) + notes.get("subgraphs_searched_before", 0))
            records = m.measure(candidates, desc=f"{self.name}: measure")
            clock.mark(force=True)  # not on an error: a call counts up to the last thing it kept
        finally:
            m.on_stored = m.on_resumed = None
            if own:
                m.close()
        res = summarize(self.name, workload, tasks, candidates, records, clock.total(), notes, str(m.store.folder))
        res.compile_calls = len(clock.earlier) + 1
        res.compile_seconds_partial = clock.partial
        return res


def summarize(method: str, workload: str, tasks, candidates: list[Candidate], records: list[dict],
              seconds: float, notes: dict, store: str) -> TuneResult:
    """A TuneResult from the candidates of one run and their records (in the same order)."""
    best: dict[str, float] = {}
    counts: dict[str, list[int]] = {}
    seen: set[str] = set()
    measured = failed = slower = 0
    for cand, rec in zip(candidates, records):
        c = counts.setdefault(cand.task.hash, [0, 0])
        c[0] += 1
        if rec["key"] in seen:
            continue
        seen.add(rec["key"])
        if rec["status"] == OK:
            measured += 1
            c[1] += 1
            lat = rec["latency_s"]
            if cand.task.hash not in best or lat < best[cand.task.hash]:
                best[cand.task.hash] = lat
        elif rec["status"] == SLOWER:
            slower += 1
        else:
            failed += 1
    per_task, missing, total = [], [], 0.0
    for t in tasks:
        b = best.get(t.hash)
        c = counts.get(t.hash, [0, 0])
        per_task.append({"name": t.name, "hash": t.hash, "weight": t.weight,
                         "best_ms": None if b is None else round(b * 1e3, 6), "candidates": c[0], "ok": c[1]})
        if b is None:
            missing.append(t.name)
        else:
            total += t.weight * b * 1e3
    return TuneResult(method=method, workload=workload, tasks=len(tasks), candidates=len(candidates),
                      measured=measured, failed=failed, compile_seconds=round(seconds, 2),
                      weighted_latency_ms=None if missing else round(total, 4),
                      measured_latency_ms=round(total, 4), tasks_without_record=missing, per_task=per_task,
                      notes=notes, store=store, slower=slower)


def best_records(store_dir, tasks) -> dict[str, dict]:
    """Task hash -> the fastest ok record of each of `tasks` in a record store, measured on current inputs."""
    from tlm_core.measure.harness import current
    from tlm_core.measure.store import RecordStore, best_ok_per_task

    by_hash = {t.hash: t for t in tasks}
    return best_ok_per_task(rec for rec in RecordStore(store_dir)
                            if (task := by_hash.get(rec.get("task_hash"))) is not None and current(rec, task))


def extra_json(**fields) -> str:
    return json.dumps(fields, sort_keys=True)


#: The method modules, in the registry's order; importing one registers its methods.
_MODULES = ("untuned", "random_search", "tlm", "tlm_ranked", "metaschedule", "roller", "pytorch", "tensorrt")
_REGISTRY: dict[str, Method] = {}


def register(method: Method) -> Method:
    """Add a method to the registry (each method module wraps its Method in it); a name is taken once."""
    if _REGISTRY.get(method.name, method) is not method:
        raise ValueError(f"two methods are named {method.name!r}")
    _REGISTRY[method.name] = method
    return method


def _registry() -> dict[str, Method]:
    import importlib

    for name in _MODULES:
        importlib.import_module(f"tlm_core.methods.{name}")
    return _REGISTRY


def methods() -> list[Method]:
    """Every method of the comparison, available or not."""
    return list(_registry().values())


def get_method(name: str) -> Method:
    table = _registry()
    if name not in table:
        raise UserError(f"unknown method {name!r}; methods: {', '.join(table)} (see `tlm methods`)")
    return table[name]
