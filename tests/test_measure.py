"""The measurement harness: correctness check, isolation of bad candidates, durable resumable store."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import kernels
import numpy as np
import pytest
from tvm.s_tir import Schedule

from tlm_core.ir.space import design_space, sample_random
from tlm_core.measure.harness import Candidate, MeasureConfig, Measurer, trace_to_json
from tlm_core.measure.store import RecordStore

FAST = MeasureConfig(repeat=2, min_repeat_ms=1, build_timeout_s=30, run_timeout_s=5, reference_timeout_s=20)


def unscheduled(task) -> Candidate:
    return Candidate(task, trace_to_json(Schedule(task.mod).trace), workload="test")


def random_candidates(task, host, n, seed=1) -> list[Candidate]:
    return [Candidate(task, trace_to_json(s.trace), "test", "random")
            for s in sample_random(design_space(task, host), n, seed)]


@pytest.fixture(scope="module")
def mm():
    return kernels.matmul(128)


def test_random_schedules_compute_the_same_numbers(mm, host, tmp_path):
    cands = random_candidates(mm, host, 6)
    assert len({c.trace for c in cands}) == 6
    with Measurer(host, tmp_path, FAST) as m:
        recs = m.measure(cands)
    assert [r["status"] for r in recs] == ["ok"] * 6, [r["error"] for r in recs]
    assert all(r["max_rel_err"] < 1e-4 and r["latency_s"] > 0 and len(r["latencies_s"]) == 2 for r in recs)


def test_rewritten_weight_layouts_are_checked_and_timed_on_their_own_shapes(host, tmp_path):
    """A schedule that re-lays a weight out is checked with the rewrite inside (the task's signature,
    against the unscheduled reference) and timed without it, on a weight of the rewritten shape (as
    the compiled model runs it, the rewrite folded into the constant)."""
    from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock

    task = kernels.weighted_matmul(128)
    scheds = sample_random(design_space(task, host), 6, seed=1)
    shapes = [[int(d) for d in RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(s.mod)["main"].params[1].shape]
              for s in scheds]
    assert any(shape != [128, 128] for shape in shapes), shapes  # RewriteLayout changed B's layout
    with Measurer(host, tmp_path, FAST) as m:
        recs = m.measure([Candidate(task, trace_to_json(s.trace), "test", "random") for s in scheds])
    assert [r["status"] for r in recs] == ["ok"] * 6, [r["error"] for r in recs]
    assert all(r["max_rel_err"] < 1e-4 and r["latency_s"] > 0 for r in recs)


def test_many_tasks_interleaved_keep_their_references(host, tmp_path):
    # The runner keeps only a few reference outputs; tasks that come back after others were checked
    # in between must still be checked against their own reference (a stale cache once broke this).
    tasks = [kernels.matmul(32 + 16 * i) for i in range(6)]
    cands = [random_candidates(t, host, 2, seed=3)[j] for j in range(2) for t in tasks]
    with Measurer(host, tmp_path, MeasureConfig(batch=4, repeat=1, min_repeat_ms=0)) as m:
        records = m.measure(cands)
    assert [r["status"] for r in records] == ["ok"] * len(cands), [r["error"] for r in records]


def test_wrong_numbers_are_caught(host, tmp_path):
    task = kernels.scale_add()
    sch = Schedule(task.mod)
    sch.unsafe_set_dtype(sch.get_sblock("B"), 0, "int32")  # truncates the intermediate: wrong output
    with Measurer(host, tmp_path, FAST) as m:
        good, bad = m.measure([unscheduled(task), Candidate(task, trace_to_json(sch.trace))])
    assert good["status"] == "ok" and good["max_rel_err"] == 0.0
    assert bad["status"] == "wrong_result" and bad["latency_s"] is None and bad["max_rel_err"] > 0.1


def test_crash_hang_and_build_error_are_recorded_and_the_run_goes_on(mm, host, tmp_path):
    # check=False: the reference would crash/hang first; here the *candidate* must kill its worker.
    # The hang's loops are hours of work: its run limit would grow to the cap without slowest_gflops=inf.
    cfg = MeasureConfig(repeat=2, min_repeat_ms=1, run_timeout_s=3, check=False, slowest_gflops=float("inf"))
    other = kernels.scale_add()
    sch = Schedule(other.mod)
    sch.get_loops(sch.get_sblock("B"))
    not_for_this_task = Candidate(mm, trace_to_json(sch.trace))  # names a block that mm lacks
    cands = [unscheduled(kernels.segfault()), unscheduled(mm), unscheduled(kernels.hang()),
             not_for_this_task, unscheduled(other)]
    start = time.perf_counter()
    with Measurer(host, tmp_path, cfg) as m:
        recs = m.measure(cands)
    assert [r["status"] for r in recs] == ["run_crash", "ok", "run_timeout", "build_error", "ok"]
    assert time.perf_counter() - start < 60
    assert "Cannot find a block with the name: B" in recs[3]["error"]


def test_reference_failure_is_recorded(host, tmp_path):
    # The hang's loops are hours of work: its limit would grow to the cap without slowest_reference_gflops=inf.
    cfg = MeasureConfig(repeat=1, min_repeat_ms=1, reference_timeout_s=3, slowest_reference_gflops=float("inf"))
    with Measurer(host, tmp_path, cfg) as m:
        crash, hang = m.measure([unscheduled(kernels.segfault()), unscheduled(kernels.hang())])
    assert crash["status"] == hang["status"] == "reference_error"
    assert "crash" in crash["error"] and "timeout" in hang["error"]


def test_same_content_is_measured_once(mm, host, tmp_path):
    cand = random_candidates(mm, host, 1)[0]
    with Measurer(host, tmp_path, FAST) as m:
        a, b = m.measure([cand, cand])
        c, = m.measure([Candidate(cand.task, cand.trace, workload="other")])
    assert a is b is c  # same key: stored once, returned from the store
    assert len((tmp_path / "records.jsonl").read_text().splitlines()) == 1


def test_store_survives_a_torn_line(tmp_path):
    store = RecordStore(tmp_path)
    store.add({"key": "a", "v": 1})
    with open(tmp_path / "records.jsonl", "ab") as f:
        f.write(b'{"key": "b", "v"')  # a writer killed mid-line
    store2 = RecordStore(tmp_path)
    assert "a" in store2 and "b" not in store2
    store2.add({"key": "c", "v": 3})
    store3 = RecordStore(tmp_path)
    assert sorted(r["key"] for r in store3) == ["a", "c"]


def test_a_sealed_store_reads_the_same_records_and_takes_new_ones(tmp_path):
    """`seal` gzips a finished store (and its big files) without losing a record; appends go on."""
    import gzip

    from tlm_core.errors import UserError
    from tlm_core.measure.store import ARCHIVE, is_store, seal

    store = RecordStore(tmp_path)
    for i in range(50):
        store.add({"key": f"k{i}", "trace": "x" * 500, "latency_s": i})
    (tmp_path / "metaschedule-db").mkdir()
    (tmp_path / "metaschedule-db" / "database_tuning_record.json").write_text("[1, 2]\n" * 4000)
    before = {r["key"]: r for r in store}
    info = seal(tmp_path, compress_over=1000)
    assert not (tmp_path / "records.jsonl").exists() and (tmp_path / ARCHIVE).exists() and is_store(tmp_path)
    assert info["bytes_after"] < info["bytes_before"] / 5 and info["records"] == 50
    assert gzip.decompress((tmp_path / "metaschedule-db" / "database_tuning_record.json.gz").read_bytes()) == \
        b"[1, 2]\n" * 4000
    sealed = RecordStore(tmp_path)
    assert {r["key"]: r for r in sealed} == before
    sealed.add({"key": "new", "latency_s": 0.5})
    sealed.add({"key": "k3", "latency_s": 99})  # already sealed: not added again
    assert len(RecordStore(tmp_path)) == 51 and RecordStore(tmp_path).get("k3")["latency_s"] == 3
    seal(tmp_path)  # a second seal merges the new record into the archive
    assert len(RecordStore(tmp_path)) == 51 and not (tmp_path / "records.jsonl").exists()
    (tmp_path / ARCHIVE).write_bytes(b"not gzip")
    with pytest.raises(UserError, match="not a gzip file of records"):
        RecordStore(tmp_path)


def test_kernels_are_timed_on_a_thread_per_core_and_the_count_keys_the_record(mm, host, tmp_path):
    """TVM's own default is half the logical CPUs on x86 (one thread on a 2-vCPU host): the harness
    sets the pool to the target's cores, the record says what the kernel ran on, and a count other
    than the one-thread of older records is part of the key."""
    import dataclasses

    cand = random_candidates(mm, host, 1)[0]
    with Measurer(host, tmp_path / "all", FAST) as m:
        rec, = m.measure([cand])
    assert rec["status"] == "ok" and rec["threads"] == host.hardware.num_cores
    spare = dataclasses.replace(FAST, spare_cores=1)
    with Measurer(host, tmp_path / "spare", spare) as m1:
        rec1, = m1.measure([cand])
        assert (m1.key(cand) != m.key(cand)) == (host.hardware.num_cores > 1)  # only the count differs
    assert rec1["status"] == "ok" and rec1["threads"] == spare.threads(host.hardware.num_cores)
    assert spare.threads(host.hardware.num_cores) == max(1, host.hardware.num_cores - 1) and spare.threads(1) == 1


def test_flushed_timing_is_a_record_of_its_own_and_warm_keys_are_unchanged(mm, host, tmp_path):
    """`flush_caches` times one cold call per repeat under a key of its own; leaving it off keeps the
    keys every record measured before it was added was stored under."""
    import dataclasses

    from tlm_core.errors import UserError

    assert "flush_caches" not in FAST.key_fields()
    cold = dataclasses.replace(FAST, repeat=4, flush_caches=True)
    assert cold.key_fields() == {**dataclasses.replace(FAST, repeat=4).key_fields(), "flush_caches": True}
    cand = random_candidates(mm, host, 1)[0]
    with Measurer(host, tmp_path, cold) as m:
        rec, = m.measure([cand])
        with Measurer(host, tmp_path / "warm", dataclasses.replace(FAST, repeat=4)) as w:
            assert w.key(cand) != m.key(cand)
    assert rec["status"] == "ok" and len(rec["latencies_s"]) == 4 and rec["max_rel_err"] < 1e-4
    with pytest.raises(UserError, match="number"):
        MeasureConfig(number=2, flush_caches=True)


RESUME_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
import kernels
from tlm_core.measure.harness import Candidate, MeasureConfig, Measurer, trace_to_json
from tlm_core.ir.space import design_space, sample_random
from tlm_core.ir.target import resolve_target
host = resolve_target("host")
task = kernels.matmul(128)
cands = [Candidate(task, trace_to_json(s.trace)) for s in sample_random(design_space(task, host), 12, seed=7)]
with Measurer(host, {store!r}, MeasureConfig(repeat=2, min_repeat_ms=1, batch=2)) as m:
    recs = m.measure(cands)
print(sum(r["status"] == "ok" for r in recs))
"""


def test_resume_after_kill_9(tmp_path):
    script = RESUME_SCRIPT.format(tests=str(Path(__file__).parent), store=str(tmp_path))
    env = {**os.environ, "TLM_PROGRESS": "0"}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    records = tmp_path / "records.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:
        if records.exists() and len(records.read_bytes().splitlines()) >= 3:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its workers, mid-run
    proc.wait()
    before = {json.loads(line)["key"]: json.loads(line)["measured_at"]
              for line in records.read_bytes().splitlines() if line.strip().endswith(b"}")}
    assert 3 <= len(before) < 12
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert out.stdout.strip() == "12"
    after = [json.loads(line) for line in records.read_bytes().splitlines() if line.strip().endswith(b"}")]
    assert len(after) == len({r["key"] for r in after}) == 12  # nothing measured twice
    assert all(before[r["key"]] == r["measured_at"] for r in after if r["key"] in before)


def test_reference_outputs_are_kept_on_disk_and_a_torn_file_is_recomputed(host, tmp_path, monkeypatch):
    """The unscheduled program runs once per subgraph, not once per Measurer; a bad file is not trusted."""
    monkeypatch.setenv("TLM_CACHE", str(tmp_path / "cache"))
    task = kernels.matmul(96)
    cand = random_candidates(task, host, 1, seed=5)[0]
    with Measurer(host, tmp_path / "a", FAST) as m:
        first = m.measure([cand])[0]
        ref_file = Path(m._reference_file(task))
    assert first["status"] == "ok" and ref_file.exists()
    with np.load(ref_file) as f:  # only the output the run wrote: the inputs come back from their seed
        assert sorted(f.files) == ["a2", "n"] and int(f["n"]) == 3
    stamp = ref_file.stat().st_mtime_ns
    with Measurer(host, tmp_path / "b", FAST) as m:  # a fresh store: measured again, reference read back
        second = m.measure([cand])[0]
    assert second["status"] == "ok" and ref_file.stat().st_mtime_ns == stamp
    assert second["max_rel_err"] == first["max_rel_err"]
    ref_file.write_bytes(b"torn")
    with Measurer(host, tmp_path / "c", FAST) as m:
        third = m.measure([cand])[0]
    assert third["status"] == "ok" and ref_file.stat().st_size > 1000  # recomputed and rewritten


def test_a_big_task_may_run_longer_and_keys_its_limit(mm, host, tmp_path):
    """The run limit grows with the task's work (a fixed 15 s rejected every candidate of a 69-GFLOP
    conv3d); only such tasks key it, so the records of every other task keep their keys."""
    import dataclasses

    cfg = MeasureConfig()
    assert cfg.run_timeout(1e9) == cfg.run_timeout_s
    assert cfg.run_timeout(69.4e9) == pytest.approx(5 * 69.4 / cfg.slowest_gflops)
    assert cfg.run_timeout(1e18) == cfg.max_run_timeout_s  # a hang is still given up
    cand = random_candidates(mm, host, 1)[0]
    big = Candidate(dataclasses.replace(mm, flops=69.4e9), cand.trace)
    with Measurer(host, tmp_path / "a", cfg) as a, \
            Measurer(host, tmp_path / "b", dataclasses.replace(cfg, slowest_gflops=2.0)) as b:
        assert a.key(cand) == b.key(cand) and a.key(big) != b.key(big)
    # The unscheduled program's limit grows too (llama's 268-GFLOP lm_head: ~28 min of naive loops, where
    # 15 were given, so none of its candidates could be checked); keyed only above the old 15 min, so
    # its reference_error records do not stand for the candidates measured under the longer limit.
    assert cfg.reference_timeout(69.4e9) == cfg.reference_timeout_s
    assert cfg.reference_timeout(268.4e9) == pytest.approx(268.4 / cfg.slowest_reference_gflops)
    assert cfg.reference_timeout(1e18) == cfg.max_reference_timeout_s
    lm_head = Candidate(dataclasses.replace(mm, flops=268.4e9), cand.trace)
    with Measurer(host, tmp_path / "c", cfg) as c, \
            Measurer(host, tmp_path / "d", dataclasses.replace(cfg, slowest_reference_gflops=0.09)) as d:
        assert c.key(big) == d.key(big) and c.key(lm_head) != d.key(lm_head)


def test_a_run_slower_than_the_best_so_far_is_stopped_and_a_resumed_run_prunes_alike(host, tmp_path):
    """prune_slower: a program whose calls take over X times its subgraph's best so far is stopped at
    that limit (status `slower`, no latency), whatever its static limit; the best so far is read from
    the store when a run resumes; the setting does not change any key (a resumed store keeps its own)."""
    import dataclasses

    from tlm_core.errors import UserError

    task = kernels.matmul(768)  # unscheduled: ~1 GFLOP of naive loops, seconds a call; tiled: ~10 ms
    # A static limit of minutes (slowest_gflops), a floor of 1 s: the pruned limit is the floor here.
    cfg = MeasureConfig(repeat=2, min_repeat_ms=1, run_timeout_s=1.0, slowest_gflops=0.01, prune_slower=4)
    assert cfg.run_timeout(task.flops) > 60
    assert cfg.pruned_timeout(task.flops, None) == cfg.run_timeout(task.flops)
    assert cfg.pruned_timeout(task.flops, 0.01) == 1.0 and cfg.pruned_timeout(task.flops, 1.0) == 4 * 4
    with pytest.raises(UserError):
        MeasureConfig(prune_slower=1.5)
    fast = random_candidates(task, host, 2, seed=5)
    with Measurer(host, tmp_path, cfg) as m:
        assert m.key(fast[0]) == Measurer(host, tmp_path / "plain", dataclasses.replace(cfg, prune_slower=0)).key(fast[0])
        good = m.measure(fast)
    assert [r["status"] for r in good] == ["ok", "ok"], [r["error"] for r in good]
    start = time.perf_counter()
    with Measurer(host, tmp_path, cfg) as m:  # resumed: the best so far comes from the store
        slow, = m.measure([unscheduled(task)])
    assert slow["status"] == "slower" and slow["latency_s"] is None, slow["error"]
    assert "best so far" in slow["error"] and time.perf_counter() - start < 30
    # Without pruning the same program is timed in full: it was slower indeed.
    with Measurer(host, tmp_path / "full", dataclasses.replace(cfg, prune_slower=0)) as m:
        full, = m.measure([unscheduled(task)])
    assert full["status"] == "ok" and full["latency_s"] > 4 * min(r["latency_s"] for r in good)


def test_retime_gives_each_candidate_its_own_rounds_and_resumes(mm, host, tmp_path):
    """Re-timing: one record per round under its own key, interleaved, numbers checked; nothing re-run."""
    cands = random_candidates(mm, host, 3, seed=7)
    with Measurer(host, tmp_path, FAST) as m:
        first = m.measure(cands)
        again = m.retime(cands + cands[:1], rounds=2)  # a duplicate is timed once
        assert len(again) == 4 and again[3] == again[0]
        for recs, f in zip(again, first):
            assert [r["retime"] for r in recs] == [0, 1] and all(r["status"] == "ok" for r in recs)
            assert len({r["key"] for r in recs} | {f["key"]}) == 3  # its own keys, the selecting record kept
            assert all(r["max_rel_err"] < 1e-4 and r["latency_s"] > 0 for r in recs)
        order = [r["key"] for r in m.store][len(cands):]
        assert order[:3] == [recs[0]["key"] for recs in again[:3]]  # round 0 of all, then round 1
        size = len(list(m.store))
        assert m.retime(cands, rounds=2) == again[:3] and len(list(m.store)) == size


def test_integer_inputs_index_in_bounds_and_masks_keep_every_position(host, tmp_path):
    # Integers were once all 0: a mask of zeros masked every position, the Select always took the
    # cheap branch, and LLVM deleted the other (bert_tiny's softmax measured 0.22 ms, 2.5 ms in the model).
    from tlm_core.measure import worker

    g, mk = kernels.gather(rows=64), kernels.masked_exp()
    table, ids, _ = worker._random_args(g.mod["main"])
    assert ids.dtype == "int64" and 0 <= ids.min() and ids.max() < 64 and len(set(ids.tolist())) > 8
    _, mask, _ = worker._random_args(mk.mod["main"])
    assert (mask == 1).all()
    assert g.integer_inputs and mk.integer_inputs and not kernels.matmul(16).integer_inputs
    with Measurer(host, tmp_path, FAST) as m:
        recs = m.measure([unscheduled(g), unscheduled(mk)])
        reference = m._reference_file(mk)
    assert [r["status"] for r in recs] == ["ok", "ok"] and all(r["inputs"] == worker.INPUTS for r in recs)
    with np.load(reference) as ref:  # what candidates are checked against: the real branch, not zeros
        assert (ref["a2"] > 0).all()


def test_records_of_older_inputs_do_not_count_for_integer_tasks(host, tmp_path, monkeypatch):
    from tlm_core.measure import harness, worker
    from tlm_core.methods import best_records

    mk, mm = kernels.masked_exp(), kernels.matmul(16)
    with Measurer(host, tmp_path, FAST) as m:
        keys = [m.key(unscheduled(mk)), m.key(unscheduled(mm))]
        rec_mk, rec_mm = m.measure([unscheduled(mk), unscheduled(mm)])
        monkeypatch.setattr(worker, "INPUTS", worker.INPUTS + 1)
        # a new input scheme changes the keys of integer-input tasks only: they are measured again
        assert m.key(unscheduled(mk)) != keys[0] and m.key(unscheduled(mm)) == keys[1]
    assert not harness.current(rec_mk, mk) and harness.current(rec_mm, mm)
    assert set(best_records(tmp_path, [mk, mm])) == {mm.hash}
