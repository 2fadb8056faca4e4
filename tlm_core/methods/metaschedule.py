"""`metaschedule` and `ansor`: TVM MetaSchedule's evolutionary search with its XGBoost cost model.

Both run `ms.tune_tasks` over the subgraphs (gradient task scheduler, XGBoost cost model on
per-store features, MetaSchedule's LocalRunner: number=3, repeat=1, min_repeat_ms=100), with
`budget` trials per subgraph, into a JSONDatabase under STORE/<method>-db. Builds use our fast build
function (`_fast_build`: CPU tensor intrinsics only, then MetaSchedule's default build steps) in
MetaSchedule's LocalBuilder: its default build imports every tensor intrinsic in each fresh worker,
which can take longer than its 30 s build timeout.

At a budget of one round (<= 64 trials per subgraph), each subgraph is searched by a `tune_tasks` call
of its own and noted in `searched.jsonl` when done, so a stopped search resumes by subgraph; it is
the same search as one joint call (see `search`).

So that every method is compared by the same harness, the best `REMEASURE` traces per subgraph of
MetaSchedule's database are then measured again by our Measurer into the method's record store;
the method's result is the best of those.

`ansor` is "Ansor-style (MetaSchedule implementation)": Ansor (`auto_scheduler`) was removed from
TVM after v0.19 and no installable Ansor exists for TVM 0.27. MetaSchedule's CPU space and search
descend from Ansor's; where their defaults differ, `ansor` takes Ansor's SketchPolicy defaults:
evolutionary population 2048 (MetaSchedule: 512) and max vectorize extent 16 in
ParallelizeVectorizeUnroll (MetaSchedule on llvm: 64). The rest already equals Ansor's defaults:
4 genetic iterations, mutation probability 0.85, eps-greedy 0.05, initial population with 20% of
measured programs and at least 50 random ones, SSRSRS multi-level tiling with innermost factor <= 64,
unroll steps (0, 16, 64, 512), 64 measurements per round (capped by the budget), XGBoost cost model,
gradient task scheduler.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass

from tlm_core.errors import UserError
from tlm_core.ir.tasks import structural_hash
from tlm_core.measure.harness import Candidate, trace_to_json
from tlm_core.methods import Method, extra_json, register
from tlm_core.ui import log, progress

#: MetaSchedule database records per subgraph measured again by our harness.
REMEASURE = 3
#: The subgraphs whose search is finished, one JSON line each, in the search's database folder.
SEARCHED = "searched.jsonl"


@dataclass(frozen=True)
class SearchConfig:
    population_size: int = 512
    init_measured_ratio: float = 0.2
    init_min_unmeasured: int = 50
    genetic_num_iters: int = 4
    genetic_mutate_prob: float = 0.85
    eps_greedy: float = 0.05
    max_vectorize_extent: int = 64  # ParallelizeVectorizeUnroll on llvm
    trials_per_round: int = 64


METASCHEDULE = SearchConfig()
ANSOR = SearchConfig(population_size=2048, max_vectorize_extent=16)
CONFIGS = {"metaschedule": METASCHEDULE, "ansor": ANSOR}


def _init_worker() -> None:
    """Builder worker initializer: TVM and the CPU tensor intrinsics only (~3 s, not ~30 s)."""
    from tlm_core.tvm_env import load_tensor_intrinsics

    load_tensor_intrinsics("llvm")


def _fast_build(mod, target, _params):
    """MetaSchedule's default_build without its `import tvm.s_tir.tensor_intrin` (all targets)."""
    import tvm
    from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock

    from tlm_core.tvm_env import load_tensor_intrinsics

    load_tensor_intrinsics(target.kind.name)
    mod = RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(mod)
    return tvm.tirx.build(mod, target)  # a runtime Module, as default_export expects


def _available() -> tuple[bool, str]:
    import importlib.util

    missing = [p for p in ("xgboost", "psutil", "cloudpickle") if importlib.util.find_spec(p) is None]
    if missing:
        return False, f"unavailable: MetaSchedule needs the packages {', '.join(missing)}"
    return True, ""


def _space(cfg: SearchConfig, kind: str):
    from tvm.s_tir import meta_schedule as ms

    if kind != "llvm" or cfg.max_vectorize_extent == METASCHEDULE.max_vectorize_extent:
        return "post-order-apply"
    rules = []
    for rule in ms.schedule_rule.ScheduleRule.create("llvm"):
        if type(rule).__name__ == "ParallelizeVectorizeUnroll":
            rule = ms.schedule_rule.ParallelizeVectorizeUnroll(
                max_jobs_per_core=16, max_vectorize_extent=cfg.max_vectorize_extent,
                unroll_max_steps=[0, 16, 64, 512], unroll_explicit=True)
        rules.append(rule)
    return ms.space_generator.PostOrderApply(sch_rules=rules, postprocs="llvm", mutator_probs="llvm")


@dataclass(frozen=True)
class Tracker:
    """A TVM RPC tracker whose servers under `key` run the trials (machines of the target's kind)."""

    host: str
    port: int
    key: str

    @classmethod
    def parse(cls, text: str) -> Tracker:
        parts = text.split(":")
        if len(parts) != 3 or not parts[0] or not parts[1].isdigit() or not parts[2]:
            raise UserError(f"--rpc {text!r}: give the tracker as HOST:PORT:KEY (e.g. 127.0.0.1:9190:xeon)")
        return cls(parts[0], int(parts[1]), parts[2])

    def servers(self) -> int:
        """How many servers the tracker has under the key (a clear error when none or no tracker)."""
        import tvm.rpc

        start = (f"start one per measuring machine: python -m tvm.exec.rpc_server --tracker "
                 f"{self.host}:{self.port} --key {self.key}")
        try:
            socket.create_connection((self.host, self.port), timeout=5).close()  # TVM retries for a minute
            summary = tvm.rpc.connect_tracker(self.host, self.port).summary()
        except (RuntimeError, OSError):
            raise UserError(f"no RPC tracker answers at {self.host}:{self.port}; start one: "
                            f"python -m tvm.exec.rpc_tracker --host {self.host} --port {self.port}") from None
        n = sum(1 for s in summary.get("server_info", []) if s.get("key") == f"server:{self.key}")
        if not n:
            raise UserError(f"the tracker at {self.host}:{self.port} has no server under key {self.key!r}; {start}")
        return n

    def describe(self, servers: int) -> str:
        """How the search's segments and notes name this runner."""
        return f"rpc tracker {self.host}:{self.port} key {self.key} ({servers} servers)"


def _runner(rpc: Tracker | None, cores: int):
    """MetaSchedule's runner: local, or one session per RPC server of the tracker (same timing rules).

    Local runner workers time kernels on a thread per core, as ours do: they inherit the pool size
    from this process's environment when they start (measure/threads.py). An RPC server's pool is
    its own: start it with TVM_NUM_THREADS set to its cores.
    """
    from tvm.s_tir import meta_schedule as ms

    from tlm_core.measure.threads import runtime_threads

    runtime_threads(cores)
    timing = ms.runner.EvaluatorConfig(number=3, repeat=1, min_repeat_ms=100)
    if rpc is None:
        return ms.runner.LocalRunner(timeout_sec=30.0, evaluator_config=timing, initializer=_init_worker), "local"
    n = rpc.servers()
    config = ms.runner.RPCConfig(tracker_host=rpc.host, tracker_port=rpc.port, tracker_key=rpc.key,
                                 session_timeout_sec=60)
    return (ms.runner.RPCRunner(rpc_config=config, evaluator_config=timing, max_workers=n),
            rpc.describe(n))


def search(name: str, cfg: SearchConfig, tasks, target, budget: int, work_dir: str, seed: int,
           rpc: Tracker | None = None, searched: Callable[[], None] | None = None,
           resumed: Callable[[int], None] | None = None):
    """Run MetaSchedule on the tasks; returns (database, notes). With `rpc`, the trials run on the
    tracker's servers (builds stay here: they must target the servers' CPU, `target`). `searched` is
    called after each subgraph noted as searched (one round per subgraph), `resumed` once at the
    start with the number of subgraphs searched by an earlier call."""
    from tvm.s_tir import meta_schedule as ms

    from tlm_core.tvm_env import load_tensor_intrinsics

    load_tensor_intrinsics(target.kind)
    os.makedirs(work_dir, exist_ok=True)
    cores = target.hardware.num_cores
    contexts = [
        ms.TuneContext(mod=t.mod, target=target.tvm, space_generator=_space(cfg, target.kind),
                       search_strategy=ms.search_strategy.EvolutionarySearch(
                           population_size=cfg.population_size, init_measured_ratio=cfg.init_measured_ratio,
                           init_min_unmeasured=cfg.init_min_unmeasured, genetic_num_iters=cfg.genetic_num_iters,
                           genetic_mutate_prob=cfg.genetic_mutate_prob, eps_greedy=cfg.eps_greedy),
                       task_name=t.name, rand_state=seed + 1 + i, num_threads=cores)
        for i, t in enumerate(tasks)
    ]
    builder = ms.builder.LocalBuilder(max_workers=os.cpu_count() or 1, timeout_sec=30.0, f_build=_fast_build,
                                      initializer=_init_worker)
    runner, where = _runner(rpc, cores)
    _unseal(work_dir)
    database = ms.database.JSONDatabase(work_dir=work_dir)

    def tune(contexts, weights, trials, bar):
        callbacks = [*ms.measure_callback.MeasureCallback.create("default"), _progress_callback(bar)]
        return ms.tune_tasks(tasks=contexts, task_weights=weights, work_dir=work_dir, max_trials_global=trials,
                             max_trials_per_task=budget, num_trials_per_iter=min(budget, cfg.trials_per_round),
                             builder=builder, runner=runner, database=database, measure_callbacks=callbacks,
                             cost_model=ms.cost_model.XGBModel(num_tuning_cores=cores), task_scheduler="gradient")

    if budget <= cfg.trials_per_round:
        # One round per subgraph: search and measure each subgraph on its own, noting it in
        # searched.jsonl when done, so that a stopped search resumes where it stopped (one joint
        # `tune_tasks` commits nothing before every subgraph's batch is searched: ~an hour for a model's
        # subgraphs with Ansor's population). The same search as the joint call: there, too, every
        # subgraph's single batch is searched before any measurement joins, and the cost model scores at
        # random below its 100 warm-up samples, so a fresh model per subgraph changes nothing.
        rounds = "one per subgraph, resumable"
        done = _searched(work_dir)
        todo = [(c, t) for c, t in zip(contexts, tasks) if t.hash not in done]
        searched_before = len(tasks) - len(todo)
        if resumed is not None:
            resumed(searched_before)
        if len(todo) < len(tasks):
            log(f"{name}: {len(tasks) - len(todo)} of {len(tasks)} subgraphs already searched in {work_dir}")
        with progress(desc=f"{name}: search", total=budget * len(todo), unit="trial") as bar:
            for ctx, t in todo:
                tune([ctx], [float(t.weight)], budget, bar)
                with open(os.path.join(work_dir, SEARCHED), "a") as f:
                    f.write(json.dumps({"task": t.name, "hash": t.hash}) + "\n")
                if searched is not None:
                    searched()
    else:
        rounds = "joint"
        searched_before = 0  # a joint search is not resumed by subgraph
        # MetaSchedule reports only to its log files: a bar of trials measured (a search may stop a
        # subgraph early when its space runs out, so the bar can end short of its total).
        # Its task scheduler searches the first batch of every subgraph before it joins any measurement
        # (minutes for a whole model's subgraphs), so the bar stands still that long: say so.
        log(f"{name}: searching the first batch of all {len(tasks)} subgraphs before the first measurement "
            "(minutes: the bar moves after that)")
        with progress(desc=f"{name}: search", total=budget * len(tasks), unit="trial") as bar:
            database = tune(contexts, [float(t.weight) for t in tasks], budget * len(tasks), bar)
    notes = {"builder": "MetaSchedule LocalBuilder with tlm's fast build function (CPU tensor intrinsics only)",
             "runner": f"MetaSchedule {'LocalRunner' if rpc is None else 'RPCRunner, ' + where} "
                       "(number=3, repeat=1, min_repeat_ms=100)",
             "runner_threads": cores if rpc is None else "the RPC servers' own",
             "search": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__}, "rounds": rounds,
             "database": work_dir, "subgraphs_searched_before": searched_before,
             "remeasured_per_task": REMEASURE}
    return database, notes


def _searched(work_dir: str) -> set[str]:
    """The hashes of the subgraphs searched to the end in work_dir (a torn last line: not finished)."""
    done = set()
    try:
        with open(os.path.join(work_dir, SEARCHED)) as f:
            for line in f:
                try:
                    done.add(json.loads(line)["hash"])
                except (ValueError, KeyError):
                    pass
    except FileNotFoundError:
        pass
    return done


def _unseal(work_dir: str) -> None:
    """Move a sealed database's files (store.seal gzips the large ones) back to plain ones, so that
    MetaSchedule, and `_searched`, read and append to them; the next seal gzips them again."""
    import gzip
    import shutil

    for name in os.listdir(work_dir):
        plain = os.path.join(work_dir, name[:-3])
        if name.endswith(".gz") and not os.path.exists(plain):
            with gzip.open(os.path.join(work_dir, name), "rb") as src, open(plain + ".tmp", "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.replace(plain + ".tmp", plain)
            os.remove(os.path.join(work_dir, name))  # else a stale archive would lie beside a small plain file


def _progress_callback(bar):
    """A MetaSchedule measure callback that advances `bar` by each batch of measured candidates."""
    from tvm.ir.utils import derived_object
    from tvm.s_tir.meta_schedule.measure_callback import PyMeasureCallback

    @derived_object
    class Progress(PyMeasureCallback):
        def apply(self, task_scheduler, task_id, measure_candidates, builder_results, runner_results):
            bar.update(len(measure_candidates))

    return Progress()


def _sentence(task, trace, target) -> dict:
    """A trace's program in the tensor language, as a record's fields (sketch, decisions, prompt), or
    sketch -1 when it is no program of the language's space of the task. With them, the searched
    programs are demonstrations: `tlm train sft --records STORE` learns from them."""
    from tlm_core.ir.space import design_space
    from tlm_core.language.program import program_of_trace
    from tlm_core.language.sentence import decision_tokens
    from tlm_core.train.demonstrations import prompt_text

    program = program_of_trace(design_space(task, target), trace, target.hardware)
    if program is None:
        return {"sketch": -1}
    return {"sketch": program.sketch, "decisions": " ".join(decision_tokens(program)),
            "prompt": prompt_text(task, target, program.sketch)}


def candidates_from_database(name: str, database, tasks, workload: str, target) -> tuple[list, dict]:
    """Our candidates of the best REMEASURE traces per task of a MetaSchedule database, each with its
    sentence where its trace is a program of the language."""
    cands, failed_in_ms, with_records, sentences = [], [], 0, 0
    everything = None
    for t in tasks:
        records = list(database.get_top_k(database.commit_workload(t.mod), REMEASURE))
        with_records += bool(records)
        if not records:
            # Every trial failed in MetaSchedule's runner (seen on take/gather subgraphs: its random
            # integer arguments are, likely, out-of-range indices; ours stay in bounds, worker.INPUTS):
            # measure its traces with our harness all the same.
            if everything is None:
                everything = list(database.get_all_tuning_records())
            records = [r for r in everything if structural_hash(r.workload.mod) == t.hash][:REMEASURE]
            failed_in_ms.append(t.name)
            log(f"{name}: every MetaSchedule trial of {t.name} failed in its runner; "
                f"measuring {len(records)} of its traces with ours")
        for rank, rec in enumerate(records):
            run_s = [float(x) for x in rec.run_secs] if rec.run_secs is not None else []
            sentence = _sentence(t, rec.trace, target)
            sentences += sentence["sketch"] >= 0
            cands.append(Candidate(t, trace_to_json(rec.trace), workload, name,
                                   extra_json(ms_rank=rank, ms_run_secs=run_s, **sentence)))
    return cands, {"tasks_with_ms_records": with_records, "tasks_failed_in_ms_runner": failed_in_ms,
                   "candidates_with_sentence": sentences}


def _make_tune(name: str, cfg: SearchConfig):
    def tune(tasks, target, budget, measurer, workload, seed):
        work_dir = str(measurer.store.folder / f"{name}-db")
        database, notes = search(name, cfg, tasks, target, budget, work_dir, seed, searched=measurer.on_stored,
                                 resumed=measurer.on_resumed)
        cands, more = candidates_from_database(name, database, tasks, workload, target)
        notes.update(more)
        return cands, notes

    return tune


METHOD = register(Method("metaschedule", "TVM MetaSchedule: evolutionary search + XGBoost cost model (population 512), "
                "budget trials per subgraph; its best traces re-measured by tlm's harness",
                True, _available, _make_tune("metaschedule", METASCHEDULE)))
ANSOR_METHOD = register(Method("ansor", "Ansor-style (MetaSchedule implementation): MetaSchedule with Ansor's SketchPolicy "
                      "defaults where they differ (population 2048, max vectorize 16; 4 genetic iterations, mutation 0.85, "
                      "eps-greedy 0.05, XGBoost cost model as both); Ansor itself was removed from TVM after v0.19",
                      True, _available, _make_tune("ansor", ANSOR)))
