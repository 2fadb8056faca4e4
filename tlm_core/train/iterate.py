"""Iterative optimisation (paper Fig. 8): generate with model i, measure, SFT, model i+1.

Two processes share the work: the *measurer* generates batch i with the newest model that exists
(model i-2 at the latest: it does not wait for the model being trained on batch i-1) and measures
it; the *trainer* fine-tunes on all demonstration data up to batch i-1 while batch i is measured.
So measuring and training overlap, and the model that generates batch i+2 has seen batch i.

Everything lands in one folder, and both loops skip what is done, so the same command resumes:
    model-0/            SFT of the pretrained model on round 0 (random programs)
    model-i/            SFT of model i-1 on every record up to batch i
    round-i.measured    batch i is measured (its records are in the shared store)
    convergence.jsonl   best weighted latency of the training subgraphs vs programs measured (Fig. 9)
"""

from __future__ import annotations

import json
import time
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path

from tlm_core.errors import UserError, read_json
from tlm_core.ir.target import ResolvedTarget, describe
from tlm_core.ir.tasks import TRAINING_PIPELINE
from tlm_core.train import demonstrations
from tlm_core.ui import log, progress


@dataclass(frozen=True)
class IterateConfig:
    init: str  # the pretrained checkpoint
    store: str  # record store of the demonstration data (round 0 already collected)
    rounds: int = 4
    per_task: int = 4  # programs generated per training subgraph per round
    top: int = 1  # SFT on the fastest `top` programs per subgraph
    sft_epochs: float = 2.0
    sft_lr: float = 3e-4
    temperature: float = 1.0
    seed: int = 0
    tasks: int = 0  # generate for the first N training subgraphs only (smoke runs); 0 = all
    # The training subgraphs of these extraction versions and workloads (`training_entries`): a run on
    # pipeline 5's NHWC convolutions teaches the model what the test workloads now compile to.
    pipeline: int = TRAINING_PIPELINE
    workloads: tuple[str, ...] = ()


def _done(model_dir: Path) -> bool:
    return (model_dir / "summary.json").exists()


def _wait(pred, what: str, poll_s: float = 10.0) -> None:
    if not pred():
        log(f"waiting for {what} ...")
    while not pred():
        time.sleep(poll_s)


def read_convergence(path: str | Path) -> list[dict]:
    """The convergence log, one point per round (the last written): a stop between the log line and
    the round's marker makes the resumed run write that round's point again."""
    lines, bad = [], 0
    for x in Path(path).read_text(errors="replace").splitlines():
        if not x.strip():
            continue
        try:
            point = json.loads(x)
        except json.JSONDecodeError:
            point = None
        if isinstance(point, dict) and isinstance(point.get("round"), int):
            lines.append(point)
        else:
            bad += 1  # a line torn by a stop mid-write (append-only, like the record store)
    if bad and not lines:
        raise UserError(f"{path}: none of its {bad} lines is a round's point (not a convergence log "
                        "`tlm train iterate` wrote): restore it, or run the rounds again with a new --out")
    if bad:
        log(f"warning: {path}: skipped {bad} unreadable line(s)")
    last = {r["round"]: r for r in lines}
    return [last[k] for k in sorted(last)]


def convergence_point(store: str, entries, round_: int, target: ResolvedTarget) -> dict:
    """Best weighted latency of the training subgraphs that have a valid program, and counts: of the
    records measured on `target` only (a store may hold another machine's, not comparable)."""
    # A program measured again counts once; another machine's records are not comparable.
    df = demonstrations.timed_on(demonstrations.current(demonstrations.frame(store)), target.hardware)
    ok = df[df.status == demonstrations.OK]
    best = ok.groupby("task_hash").latency_s.min()
    weights = {t.hash: t.weight for _, t in entries}
    covered = [h for h in weights if h in best.index]
    return {"round": round_, "programs": len(df), "ok": len(ok),
            "weighted_latency_s": float(sum(weights[h] * best[h] for h in covered)),
            "tasks_with_program": len(covered), "tasks": len(weights)}


def sft_data(store: str, top: int, target: ResolvedTarget):
    """The fastest `top` programs per training subgraph among the records measured on `target`."""
    return demonstrations.best_programs(demonstrations.timed_on(demonstrations.frame(store), target.hardware), top)


def sft(init: str, store: str, out: Path, cfg: IterateConfig, target: ResolvedTarget) -> dict:
    """Fine-tune `init` on the fastest programs of every record so far measured on the run's machine
    (the store may hold another CPU's too: a run's rounds keep the recipe they started with)."""
    from tlm_core.train.trainer import TrainConfig, train

    data = sft_data(store, cfg.top, target)
    tc = TrainConfig(stage="sft", size="", init=init, epochs=cfg.sft_epochs, lr=cfg.sft_lr, seed=cfg.seed,
                     warmup_steps=20, eval_sentences=0, eval_every_steps=10**9)
    return train(data, tc, out)


def train_loop(cfg: IterateConfig, out: Path, target: ResolvedTarget) -> None:
    if not _done(out / "model-0"):
        sft(cfg.init, cfg.store, out / "model-0", cfg, target)
    for i in range(1, cfg.rounds + 1):
        if _done(out / f"model-{i}"):
            continue
        _wait(lambda i=i: (out / f"round-{i}.measured").exists(), f"batch {i} to be measured")
        sft(str(out / f"model-{i - 1}"), cfg.store, out / f"model-{i}", cfg, target)


def measure_loop(cfg: IterateConfig, out: Path, target: ResolvedTarget) -> None:
    from tlm_core.measure.harness import Measurer
    from tlm_core.model import checkpoint as M

    entries = demonstrations.training_entries(target, cfg.pipeline, tuple(cfg.workloads))
    entries = entries[:cfg.tasks] if cfg.tasks else entries
    demonstrations.remeasure_stale(cfg.store, target, entries)
    conv = out / "convergence.jsonl"
    if not conv.exists():
        with open(conv, "a") as f:
            f.write(json.dumps({**convergence_point(cfg.store, entries, 0, target), "model": "random"}) + "\n")
    for i in range(1, cfg.rounds + 1):
        if (out / f"round-{i}.measured").exists():
            continue
        need = max(0, i - 2)  # the newest model that may exist while model i-1 is being trained
        _wait(lambda need=need: _done(out / f"model-{need}"), f"model-{need}")
        newest = max(j for j in range(need, i) if _done(out / f"model-{j}"))
        model, _ = M.load(out / f"model-{newest}")
        # The round's measuring wall time (generate, build, run) goes on the model card; a round resumed
        # after a stop counts its last attempt only (what was measured before is served from the store).
        started = time.time()
        cands, invalid = [], 0
        for w, task in progress(entries, f"generate batch {i} (model-{newest})", unit="task"):
            made, res = demonstrations.generated_candidates(model, w, task, target, cfg.per_task,
                                                            seed=cfg.seed * 7919 + i, temperature=cfg.temperature,
                                                            round=i, model=f"model-{newest}")
            cands += made
            invalid += res.invalid  # a bug if ever > 0: reported in the round's marker
        with Measurer(target, cfg.store, demonstrations.DEMO_MEASURE) as m:
            m.measure(cands, desc=f"measure batch {i}")
        with open(conv, "a") as f:
            f.write(json.dumps({**convergence_point(cfg.store, entries, i, target), "model": f"model-{newest}"}) + "\n")
        (out / f"round-{i}.measured").write_text(json.dumps({"candidates": len(cands), "invalid": invalid,
                                                                    "model": newest,
                                                                    "seconds": round(time.time() - started, 1)}))


def _exit_on_sigterm() -> None:
    """SIGTERM ends the process through Python (finally blocks run, the Measurer's workers are closed).

    By default SIGTERM kills a process outright: `kill` of the iterate command then left its measuring
    child running, orphaned, measuring the same candidates as the next run into the same store.
    """
    import signal
    import sys

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def _measure_main(cfg: IterateConfig, out: str, target: ResolvedTarget) -> None:
    import os
    import threading

    _exit_on_sigterm()
    parent = os.getppid()

    def orphaned() -> None:  # the parent was killed outright (SIGKILL): do not measure on alone
        while os.getppid() == parent:
            time.sleep(5)
        os._exit(1)

    threading.Thread(target=orphaned, daemon=True).start()
    measure_loop(cfg, Path(out), target)


def _check_machine(out: Path, target: ResolvedTarget) -> None:
    """A run measures on one machine: its convergence curve and its rounds' latencies mean nothing
    mixed with another CPU's. The first call records the target; a resume on other hardware stops."""
    path = out / "target.json"
    hw = json.loads(target.hardware.to_json())
    if not path.exists():
        path.write_text(json.dumps(hw, indent=2, sort_keys=True) + "\n")
        return
    ran = read_json(path, "the hardware of the run, written by its first round: restore it, or start the run "
                          "again with another --out")
    if ran != hw:
        raise UserError(f"{out} was measured on {describe(ran)}, this machine is {describe(hw)}: its rounds "
                        "cannot go on here; start a run for this machine with another --out (and its own round 0: "
                        "`tlm train collect`)")


def same_run(saved: dict, cfg: IterateConfig) -> bool:
    """Whether `cfg` goes on with the run whose settings were saved: only --rounds may differ (more rounds
    extend it); a setting the saved run predates counts at its default."""
    mine = json.loads(json.dumps(asdict(cfg)))  # as saved: a tuple reads back as a list
    defaults = json.loads(json.dumps({f.name: f.default for f in fields(cfg) if f.default is not MISSING}))
    return {**defaults, **saved, "rounds": cfg.rounds} == mine


def iterate(cfg: IterateConfig, out: str | Path, target: ResolvedTarget) -> dict:
    """Run both loops (the measurer in a child process) until every round is done; resumable."""
    import multiprocessing

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    saved = out / "iterate_config.json"
    # Only --rounds may change on resume: more rounds extend the same run; anything else would mix two runs.
    ran = read_json(saved, "the run's settings, written by its first call: restore it, or start the run again "
                           "with another --out") if saved.exists() else None
    if ran is not None and not same_run(ran, cfg):
        raise UserError(f"{out} holds an iterative run with other settings (only --rounds may change): "
                        "use another --out")
    _check_machine(out, target)
    saved.write_text(json.dumps(asdict(cfg), indent=2))
    # The store itself is not committed: on a fresh clone, seed it from the committed export, or the
    # resumed rounds would measure every program again and the convergence log would restart from 0.
    restored = demonstrations.restore(cfg.store)
    if restored:
        log(f"restored {restored} measured records into {cfg.store} from {demonstrations.EXPORT}")
    # spawn: TVM's thread pools do not survive fork.
    measurer = multiprocessing.get_context("spawn").Process(target=_measure_main, args=(cfg, str(out), target))
    measurer.start()
    _exit_on_sigterm()
    try:
        train_loop(cfg, out, target)
    except BaseException:
        measurer.terminate()  # it would wait for models that will not come
        measurer.join(30)
        raise
    measurer.join()
    if measurer.exitcode != 0:
        raise RuntimeError(f"the measuring process failed (exit code {measurer.exitcode})")
    return {"rounds": cfg.rounds, "convergence": read_convergence(out / "convergence.jsonl"), "final_model": str(out / f"model-{cfg.rounds}")}
