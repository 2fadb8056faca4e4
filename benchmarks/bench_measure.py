"""Measurement throughput on a 256x256x256 matmul: this project's harness vs MetaSchedule's own
LocalBuilder + LocalRunner, on the same random candidates, side by side in one run.

Run: `nox -s benchmarks` (or `pytest benchmarks`). Each benchmark measures the same 32 random
valid schedules once (one round: the quantity is a rate over many candidates, and the cold numbers
include worker start-up, which a second round would not pay); cand/s goes into `extra_info`.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
import kernels

from tlm_core.ir.space import design_space, sample_random
from tlm_core.ir.target import resolve_target
from tlm_core.measure.harness import Candidate, MeasureConfig, Measurer, trace_to_json

N = 32
#: The same timing protocol for both harnesses: 1 call per repeat (more for kernels under 10 ms), 3 repeats.
CONFIG = MeasureConfig(number=1, repeat=3, min_repeat_ms=10)


@pytest.fixture(scope="module")
def setup():
    host = resolve_target("host")
    task = kernels.matmul(256)
    schedules = sample_random(design_space(task, host), N + 4, seed=2024)
    return host, task, schedules


def _rate(benchmark, n_ok: int, n: int) -> None:
    seconds = benchmark.stats.stats.median
    benchmark.extra_info.update(candidates=n, measured_ok=n_ok, candidates_per_s=round(n / seconds, 2))


def test_tlm_harness_warm(benchmark, setup):
    """Steady state: workers already started (as in any tuning run after its first batch)."""
    host, task, schedules = setup
    cands = [Candidate(task, trace_to_json(s.trace)) for s in schedules]
    with tempfile.TemporaryDirectory() as store, Measurer(host, store, CONFIG) as m:
        m.measure(cands[N:])  # start the workers and compute the reference
        recs = benchmark.pedantic(m.measure, args=(cands[:N],), rounds=1, iterations=1)
    ok = sum(r["status"] == "ok" for r in recs)
    _rate(benchmark, ok, N)
    assert ok == N
    assert benchmark.extra_info["candidates_per_s"] >= 4.0  # the target on this 2-core machine


def test_tlm_harness_cold(benchmark, setup):
    """Including worker start-up and the reference run."""
    host, task, schedules = setup
    cands = [Candidate(task, trace_to_json(s.trace)) for s in schedules[:N]]

    def run():
        with tempfile.TemporaryDirectory() as store, Measurer(host, store, CONFIG) as m:
            return m.measure(cands)

    recs = benchmark.pedantic(run, rounds=1, iterations=1)
    ok = sum(r["status"] == "ok" for r in recs)
    _rate(benchmark, ok, N)
    assert ok == N


def test_metaschedule_local_builder_runner(benchmark, setup):
    """MetaSchedule's LocalBuilder (default build, new worker pool per batch) + LocalRunner."""
    from tvm.s_tir import meta_schedule as ms

    host, task, schedules = setup
    mods = [s.mod for s in schedules[:N]]
    args_info = ms.arg_info.ArgInfo.from_prim_func(task.mod["main"])
    # timeout raised from its 30 s default: a fresh worker spends ~30 s importing tensor intrinsics.
    builder = ms.builder.LocalBuilder(max_workers=2, timeout_sec=300)
    runner = ms.runner.LocalRunner(timeout_sec=60, evaluator_config=ms.runner.EvaluatorConfig(
        number=CONFIG.number, repeat=CONFIG.repeat, min_repeat_ms=CONFIG.min_repeat_ms))

    def run():
        built = builder.build([ms.builder.BuilderInput(mod, host.tvm) for mod in mods])
        inputs = [ms.runner.RunnerInput(b.artifact_path, "cpu", args_info) for b in built if b.error_msg is None]
        results = [f.result() for f in runner.run(inputs)]
        return [r for r in results if r.error_msg is None]

    ok = benchmark.pedantic(run, rounds=1, iterations=1)
    _rate(benchmark, len(ok), N)
    assert len(ok) == N
