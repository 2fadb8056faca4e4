"""Measure candidate schedules: build in parallel workers, check and time one at a time.

Each candidate is a task plus the JSON trace of a full schedule (sketch, decisions, postprocessing).
Builds run in a pool of TVM PopenWorkers (one per core), runs in one worker so that timings do not
share the CPU; every worker call has a time limit, and a candidate that fails to build, crashes
its worker (segfault), hangs, or computes wrong numbers is recorded with its status and the run
goes on. Results go to an append-only RecordStore under a content key; a candidate already there
is returned without being measured again, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from tlm_core.errors import UserError
from tlm_core.ir.target import ResolvedTarget
from tlm_core.ir.tasks import Task
from tlm_core.ir.workloads import canonical
from tlm_core.measure import worker
from tlm_core.measure.store import OK, RecordStore
from tlm_core.paths import cache_dir
from tlm_core.tvm_env import versions
from tlm_core.ui import progress

#: Record statuses besides OK (store.OK: the only status with a latency).
FAILURES = ("build_error", "build_timeout", "build_crash", "run_error", "run_timeout", "run_crash",
            "wrong_result", "reference_error")
#: A run stopped because it could not be its subgraph's best (MeasureConfig.prune_slower): no latency,
#: but not a failure of the program either.
SLOWER = "slower"


@dataclass(frozen=True)
class MeasureConfig:
    """How candidates are built and timed (part of every record's content key)."""

    number: int = 1  # calls per timed repeat (raised by min_repeat_ms for fast kernels)
    repeat: int = 3  # timed repeats; the record's latency is their median
    min_repeat_ms: int = 10  # each repeat lasts at least this long (fast kernels get number > 1)
    check: bool = True  # compare every candidate's output with the unscheduled program's
    tolerance: float = 1e-3  # max |got - want| / max(1, max |want|) per buffer
    builders: int = 0  # parallel build workers; 0 = one per core
    build_timeout_s: float = 30.0
    run_timeout_s: float = 15.0  # the least a run may take; a bigger task gets longer (`run_timeout`)
    # The slowest program worth timing: a run may last its calls at this rate. A fixed limit rejected
    # every candidate of a big task (resnet3d_18's 69-GFLOP conv3d: 15 s is 5 calls at 23 GFLOP/s).
    slowest_gflops: float = 5.0
    max_run_timeout_s: float = 300.0  # whatever the work, a run that hangs is given up after this
    reference_timeout_s: float = 900.0  # the least the unscheduled program (naive loops) may take
    # ... and a bigger task's may take its work at this rate: an 8-row slice (8x4096x32000) of llama's
    # lm_head, built unscheduled, ran at 0.16 GFLOP/s on the Zen 3 host, so the whole 268-GFLOP
    # lm_head needs ~28 min where 15 were given,
    # and none of its candidates could be checked (the model then ran its unscheduled loops).
    slowest_reference_gflops: float = 0.1
    max_reference_timeout_s: float = 3 * 3600.0  # one that hangs is given up after this
    batch: int = 16  # candidates built together before they are run
    # Cores left to other work while timing: kernels run on (target cores - spare_cores) threads.
    # 0 for tuning and tables; the demonstrations keep 1 (SFT holds a core beside them in `iterate`).
    spare_cores: int = 0
    # Time each call with the caches flushed of every argument but the first (TVM's
    # `cache_flush_cpu_non_first_arg`, Ansor's `enable_cpu_cache_flush`): a kernel inside a model finds
    # its input warm (the kernel before just wrote it) but its weights cold. Warm timing reads resnet50's
    # TLM@64 kernels 10% faster than they run in the model, cold timing within 2%
    # (results/znver3/profile/resnet50-model-nhwc-4-tlm-64-alone.json). Each repeat is then one call.
    flush_caches: bool = False
    # Stop a run once its calls have taken, on average, more than `prune_slower` times the best time
    # a call of its subgraph so far (status `slower`; 0 = never). Such a program cannot be the best,
    # which is all a tuning run keeps: of llama's first 207 TLM@64 programs on Zen 4 (its heavy
    # matmuls), 138 ran over 4x their subgraph's best so far and took 2.6 of the 3.2 hours, each timed
    # in full or up to its run limit (4.5 min for lm_head). Off by default: a dataset's every latency
    # is a label. Not part of the key: a run measures the same numbers with it, and a resumed store
    # keeps its keys.
    prune_slower: float = 0.0

    def __post_init__(self):
        if self.flush_caches and self.number != 1:
            raise UserError("flush_caches times one call per repeat: leave number at 1 (raise repeat instead)")
        if self.prune_slower and self.prune_slower < 2:
            raise UserError(f"prune_slower {self.prune_slower} would stop programs that may be the best on a "
                            "noisy machine: use 0 (off) or at least 2")

    def key_fields(self) -> dict:
        """The settings that change a measured number (the thread count is keyed by the Measurer)."""
        keys = {"number": self.number, "repeat": self.repeat, "min_repeat_ms": self.min_repeat_ms, "check": self.check}
        # Only when set: records measured warm keep the keys they were stored under.
        return {**keys, "flush_caches": True} if self.flush_caches else keys

    def run_timeout(self, flops: float) -> float:
        """Seconds a run of a task of `flops` may take: the check, the warm-up and the timed calls."""
        return max(self.run_timeout_s, min(self.max_run_timeout_s, self.calls * flops / (self.slowest_gflops * 1e9)))

    @property
    def calls(self) -> int:
        """Calls of a run: the check, the warm-up and the timed ones (more where min_repeat_ms raises number)."""
        return 2 + self.repeat * self.number

    def pruned_timeout(self, flops: float, best_s: float | None) -> float:
        """The run limit when the subgraph's best call so far took `best_s` (None: none yet)."""
        static = self.run_timeout(flops)
        if not self.prune_slower or best_s is None:
            return static
        # The floor (run_timeout_s) leaves room for loading the library and the arguments.
        return min(static, max(self.run_timeout_s, self.prune_slower * best_s * self.calls))

    def reference_timeout(self, flops: float) -> float:
        """Seconds the unscheduled program of a task of `flops` may take (computed once per task)."""
        return max(self.reference_timeout_s,
                   min(self.max_reference_timeout_s, flops / (self.slowest_reference_gflops * 1e9)))

    def threads(self, cores: int) -> int:
        """Threads a kernel is timed on, for a target of `cores` cores."""
        return max(1, cores - self.spare_cores)


@dataclass(frozen=True)
class Candidate:
    """A schedule to measure: a task and the JSON of its full trace."""

    task: Task
    trace: str  # canonical JSON of Trace.as_json() (decisions included)
    workload: str = ""
    method: str = ""
    extra: str = ""  # JSON object merged into the record (e.g. the program's sketch and decisions)


def trace_to_json(trace) -> str:
    """Canonical JSON text of a TVM Trace (the content of a candidate)."""
    return canonical(_plain(trace.as_json(remove_postproc=False)))


def _plain(obj):
    """TVM FFI containers -> Python lists/ints/strs (json.dumps does not know them)."""
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if hasattr(obj, "items"):
        return {str(k): _plain(v) for k, v in obj.items()}
    if hasattr(obj, "__iter__"):
        return [_plain(x) for x in obj]
    return obj.value if hasattr(obj, "value") else str(obj)


def current(record: dict, task: Task) -> bool:
    """Whether a record was measured on the inputs measurement uses now (see worker.INPUTS).

    Only tasks with integer or bool inputs are affected; their records of an older scheme stay in the
    store (nothing measured is lost) but no longer count as the task's latency.
    """
    return not task.integer_inputs or record.get("inputs", 1) == worker.INPUTS


class Measurer:
    """Builds, checks and times candidates on one target; records go to a RecordStore."""

    def __init__(self, target: ResolvedTarget, store: RecordStore | str, config: MeasureConfig = MeasureConfig()):
        from tvm.support.popen_pool import PopenPoolExecutor, PopenWorker

        if config.flush_caches and target.kind != "llvm":
            raise UserError(f"flushing the caches before each timed call is a CPU setting; the target is {target.kind}")
        self.target = target
        self.store = store if isinstance(store, RecordStore) else RecordStore(store)
        self.config = config
        # Called after each record is stored: a caller's note that durable work was done (the
        # compile-time clock of a tuning call, methods/clock.py).
        self.on_stored: Callable[[], None] | None = None
        # Called by a search with the work it found kept from an earlier call (subgraphs searched),
        # as soon as it knows: the clock's note of whether its total leaves time out.
        self.on_resumed: Callable[[int], None] | None = None
        self._target_json = json.dumps(target.hardware.tvm_target_dict(), sort_keys=True)
        self._hw = json.loads(target.hardware.to_json())
        builders = config.builders or os.cpu_count() or 1
        self.threads = config.threads(target.hardware.num_cores)
        # Each worker sets its TVM pool's size first thing (measure/threads.py), whatever its parent's.
        init = (worker.init, (target.kind, self.threads))
        # Workers' TVM warnings and crash backtraces go to a log beside the records, not the terminal.
        self._log = open(self.store.folder / "workers.log", "ab")
        quiet = {"stdout": subprocess.DEVNULL, "stderr": self._log}
        self._build_pool = PopenPoolExecutor(builders, config.build_timeout_s, *init, **quiet)
        self._runner = PopenWorker(*init, **quiet)
        self._references: dict[str, dict] = {}  # task hash -> failed worker.reference (not retried)
        self._best: dict[str, float] | None = None  # task hash -> best latency so far (prune_slower)
        self._tmp = tempfile.mkdtemp(prefix="tlm-measure-")

    # -- public -------------------------------------------------------------------------------
    def key(self, cand: Candidate, retime: int | None = None) -> str:
        """Content key: task, schedule, target, compiler versions, measurement settings.

        `retime` r: the key of the candidate's r-th re-timing (see `retime`), a record of its own.
        """
        v = versions()
        payload = {"task": cand.task.hash, "trace": cand.trace, "target": self._hw,
                   "versions": [v["apache-tvm"], v["apache-tvm-ffi"]], "measure": self.config.key_fields()}
        if cand.task.integer_inputs:  # inputs change only their work (worker.INPUTS)
            payload["inputs"] = worker.INPUTS
        if self.threads != 1:  # records made before the count was set were all one thread: their keys stay
            payload["threads"] = self.threads
        timeout = self.config.run_timeout(cand.task.flops)
        if timeout > self.config.run_timeout_s:  # a run_timeout under the old fixed limit is not this one's
            payload["run_timeout_s"] = round(timeout, 1)
        reference = self.config.reference_timeout(cand.task.flops)
        if self.config.check and reference > self.config.reference_timeout_s:  # as run_timeout_s above
            payload["reference_timeout_s"] = round(reference, 1)
        if retime is not None:
            payload["retime"] = retime
        return hashlib.sha256(canonical(payload).encode()).hexdigest()[:32]

    def measure(self, candidates: list[Candidate], desc: str = "measure") -> list[dict]:
        """A record per candidate, in order; stored ones are returned without measuring."""
        keys = [self.key(c) for c in candidates]
        todo: dict[str, Candidate] = {}
        for k, c in zip(keys, candidates):
            if k not in self.store and k not in todo:
                todo[k] = c
        self._measure_all([([k], c) for k, c in todo.items()], desc)
        return [self.store.get(k) for k in keys]

    def retime(self, candidates: list[Candidate], rounds: int = 3, desc: str = "re-time") -> list[list[dict]]:
        """Time candidates again, `rounds` times each, independently of the timing that selected them.

        The best of k single timings is biased low on a noisy machine, the more so the larger k: a
        method with many candidates would win on lucky timings. Re-timing the finalists gives each an
        unbiased value. Each is built once, then run in `rounds` rounds over its batch (A B C A B C
        ...), so slow drifts of the machine fall on all of them alike. Records are stored under their
        own keys (`key(cand, r)`), so a stopped run resumes. Returns, per candidate, its records.
        """
        unique = list({self.key(c): c for c in candidates}.values())
        todo = [([self.key(c, r) for r in range(rounds)], c) for c in unique]
        todo = [(ks, c) for ks, c in todo if any(k not in self.store for k in ks)]
        self._measure_all(todo, desc, retime=True)
        return [[self.store.get(self.key(c, r)) for r in range(rounds)] for c in candidates]

    def _measure_all(self, items: list[tuple[list[str], Candidate]], desc: str, retime: bool = False) -> None:
        if self.config.prune_slower and self._best is None:
            self._best = self._best_in_store()
        with progress(total=sum(k not in self.store for ks, _ in items for k in ks), desc=desc, unit="run") as bar:
            for i in range(0, len(items), self.config.batch):
                for record in self._measure_batch(items[i:i + self.config.batch], retime):
                    if record["key"] not in self.store:
                        self.store.add(record)
                        self._note_best(record)
                        if self.on_stored is not None:
                            self.on_stored()
                    bar.update(1)

    def _best_in_store(self) -> dict[str, float]:
        """Task hash -> best latency among the store's records measured as this Measurer measures
        (target, threads, settings of the key): a resumed run prunes as the first one did."""
        best: dict[str, float] = {}
        keyed = {**self.config.key_fields(), "flush_caches": self.config.flush_caches}
        for rec in self.store:
            m = rec.get("measure") or {}
            if (rec.get("target") == self._hw and rec.get("threads", 1) == self.threads
                    and all(m.get(k, False) == v for k, v in keyed.items())):
                self._note_best(rec, best)
        return best

    def _note_best(self, rec: dict, best: dict | None = None) -> None:
        best = self._best if best is None else best
        if best is not None and rec.get("status") == OK and rec.get("latency_s") and rec.get("retime") is None:
            h = rec["task_hash"]
            best[h] = min(best.get(h, float("inf")), rec["latency_s"])

    def close(self) -> None:
        self._build_pool.shutdown(wait=False)
        self._runner.kill()
        self._log.close()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> Measurer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------------
    def _measure_batch(self, items: list[tuple[list[str], Candidate]], retime: bool = False):
        """Build all (in parallel), then check and time each (alone on the machine).

        Each item is (keys, candidate): one timed run per key, in rounds over the batch (a plain
        measurement has one key; a re-timing one per round). Every build of the batch finishes before
        the first run: a build still compiling in another worker would share the CPU with the kernel
        being timed (on 2 cores, the same programs timed up to 1.5x apart from one run to the next
        when builds overlapped runs).
        """
        futures = []
        for keys, cand in items:
            artifact = os.path.join(self._tmp, f"{keys[0]}.so")
            futures.append(self._build_pool.submit(worker.build, cand.task.hash, cand.task.mod_json, cand.trace,
                                                   self._target_json, artifact))
        built = []
        for fut in futures:
            try:
                built.append(("ok", fut.result()))
            except TimeoutError:
                built.append(("build_timeout", f"build exceeded {self.config.build_timeout_s} s"))
            except ChildProcessError:
                built.append(("build_crash", "the build worker died (segfault or abort)"))
            except Exception as err:  # raised inside the worker outside worker.build's own handler
                built.append(("build_error", str(err)[-2000:]))
        for r in range(max(len(keys) for keys, _ in items)):
            for (keys, cand), (kind, res) in zip(items, built):
                if r >= len(keys) or keys[r] in self.store:
                    continue
                extra = {"retime": r} if retime else {}
                artifact = os.path.join(self._tmp, f"{keys[0]}.so")
                if kind != "ok":
                    yield self._record(keys[r], cand, kind, res, **extra)
                elif res["ok"]:
                    yield self._run(keys[r], cand, artifact, res["build_s"], prune=not retime, **extra)
                else:
                    yield self._record(keys[r], cand, "build_error", res["error"], build_s=res["build_s"], **extra)
        for keys, _ in items:
            artifact = os.path.join(self._tmp, f"{keys[0]}.so")
            for path in (artifact, artifact + ".args.json"):  # the library, and its rewritten shapes if any
                if os.path.exists(path):
                    os.remove(path)

    def _call_runner(self, fn, args, timeout: float) -> tuple[str, dict | str]:
        """One call in the runner process: ("ok", result) or (failure kind, message)."""
        self._runner.send(fn, args, timeout=timeout)
        try:
            return "ok", self._runner.recv()
        except TimeoutError:
            return "timeout", f"exceeded {timeout} s"
        except ChildProcessError:
            return "crash", "the worker process died (segfault or abort)"
        except Exception as err:  # an exception raised inside the worker, outside our try blocks
            return "error", str(err)[-2000:]

    def _run(self, key: str, cand: Candidate, artifact: str, build_s: float, prune: bool, **extra) -> dict:
        record = self._run_once(key, cand, artifact, build_s, prune)
        record.update(extra)
        return record

    def _run_once(self, key: str, cand: Candidate, artifact: str, build_s: float, prune: bool) -> dict:
        cfg = self.config
        task = cand.task
        ref = self._references.get(task.hash, {"ok": True})
        if cfg.check and ref["ok"]:
            # Asked every time: the runner keeps only a few references (memory) and answers at once
            # for those it has. A failed reference is remembered here: every candidate would fail alike.
            kind, ref = self._call_runner(worker.reference, (task.hash, task.mod_json, self._target_json,
                                                             self._reference_file(task)), cfg.reference_timeout(task.flops))
            if kind != "ok":
                ref = {"ok": False, "error": f"{kind}: {ref}"}
            if not ref["ok"]:
                self._references[task.hash] = ref
        if not ref["ok"]:
            return self._record(key, cand, "reference_error", f"unscheduled program: {ref['error']}", build_s=build_s)
        # Re-timings (finalists) are never pruned: each must have a time.
        best = (self._best or {}).get(task.hash) if prune else None
        limit = cfg.pruned_timeout(task.flops, best)
        kind, res = self._call_runner(worker.run, (task.hash, task.mod_json, self._target_json, artifact, cfg.check, cfg.number,
                                                   cfg.repeat, cfg.min_repeat_ms, cfg.flush_caches), limit)
        if kind == "timeout" and limit < cfg.run_timeout(task.flops):
            return self._record(key, cand, SLOWER, f"stopped after {limit:.1f} s: its calls took over {cfg.prune_slower:g}x "
                                f"the subgraph's best so far ({best:.4g} s a call)", build_s=build_s)
        if kind != "ok":
            return self._record(key, cand, f"run_{kind}", res, build_s=build_s)
        if not res["ok"]:
            return self._record(key, cand, "run_error", res["error"], build_s=build_s, run_s=res["run_s"])
        err = res["max_rel_err"]
        if err is not None and not err <= cfg.tolerance:
            return self._record(key, cand, "wrong_result", f"max relative error {err:.3g} > {cfg.tolerance}",
                                build_s=build_s, run_s=res["run_s"], max_rel_err=err)
        lat = res["latencies_s"]
        return self._record(key, cand, OK, "", build_s=build_s, run_s=res["run_s"], max_rel_err=err,
                            latencies_s=lat, latency_s=float(sorted(lat)[len(lat) // 2]), threads=res["threads"])

    def _reference_file(self, task: Task) -> str:
        """Where the unscheduled program's outputs are kept: by task, target and compiler version."""
        v = versions()
        payload = {"task": task.hash, "target": self._target_json, "versions": [v["apache-tvm"], v["apache-tvm-ffi"]]}
        if task.integer_inputs:
            payload["inputs"] = worker.INPUTS
        key = hashlib.sha256(canonical(payload).encode()).hexdigest()[:24]
        folder = cache_dir() / "references"
        folder.mkdir(parents=True, exist_ok=True)
        return str(folder / f"{key}.npz")

    def _record(self, key: str, cand: Candidate, status: str, error: str, **fields) -> dict:
        rec = {"key": key, "status": status, "error": error, "task_hash": cand.task.hash,
               "task_name": cand.task.name, "workload": cand.workload, "method": cand.method,
               "target": self._hw, "trace": cand.trace, "latency_s": None, "latencies_s": [],
               "max_rel_err": None, "build_s": None, "run_s": None, "checked": self.config.check,
               "measure": dataclasses.asdict(self.config), "versions": versions(), "inputs": worker.INPUTS,
               "threads": self.threads, "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}
        if cand.extra:
            rec.update(json.loads(cand.extra))
        rec.update(fields)
        return rec
