"""`tlm train collect|pretrain|sft|iterate|ship|ranker`: demonstration data, pretraining, SFT, the iterative loop,
the ranker of `tlm-ranked`."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from tlm_core.cli.args import add_json, add_target, comma_list, report
from tlm_core.errors import UserError
from tlm_core.ui import emit_json, log


def _pipeline(args) -> int:
    from tlm_core.ir.tasks import PIPELINE_VERSION

    if args.pipeline not in range(1, PIPELINE_VERSION + 1):
        raise UserError(f"--pipeline {args.pipeline}: extraction versions 1 to {PIPELINE_VERSION} exist")
    return args.pipeline


def _workloads(args) -> tuple[str, ...]:
    """--workloads, checked now: iterate's measuring process would otherwise find a wrong name only after
    model-0's training."""
    from tlm_core.train.demonstrations import training_workloads

    chosen = comma_list(args.workloads)
    training_workloads(chosen)
    return chosen


def _add_subgraph_choice(p) -> None:
    from tlm_core.ir.tasks import PIPELINE_VERSION, TRAINING_PIPELINE

    p.add_argument("--pipeline", type=int, default=TRAINING_PIPELINE,
                   help=f"extraction version of the training subgraphs (default {TRAINING_PIPELINE}, the shipped "
                        f"records'; {PIPELINE_VERSION}: the NHWC subgraphs the test workloads compile to)")
    p.add_argument("--workloads", default="", metavar="A,B", help="only these training workloads (default: all)")


def cmd_train_collect(args) -> None:
    from tlm_core.ir.target import resolve_target
    from tlm_core.train import demonstrations

    if args.per_task < 1:
        raise UserError("--per-task must be at least 1")
    if args.max_tasks < 0 or (args.max_tasks and args.method == "random"):
        raise UserError("--max-tasks: a number >= 0, and only with --method (round 0 measures every subgraph)")
    target = resolve_target(args.target)
    start = time.perf_counter()
    if args.method == "random":
        out = demonstrations.collect_random(target, args.store, args.per_task, args.seed,
                                            pipeline=_pipeline(args), workloads=_workloads(args))
    else:
        from tlm_core.eval.collect import collect_with

        out = collect_with(args.method, target, args.store, args.per_task, args.seed, _pipeline(args),
                           _workloads(args), args.max_tasks)
    out.update(seconds=round(time.perf_counter() - start, 1), store=args.store)
    if args.export:
        out.update(demonstrations.export(args.store, args.export))
    report(out, args)


def cmd_train_pretrain(args) -> None:
    from tlm_core.train.demonstrations import read_parquet
    from tlm_core.train.trainer import TrainConfig, train

    if not os.path.exists(args.data):
        raise UserError(f"--data {args.data}: no such file (make one with `tlm sample`)")
    df = read_parquet(args.data, "a table of sentences", "give the parquet `tlm sample` wrote",
                      columns=["prompt", "decisions"], folder=True)
    if args.max_sentences:
        df = df.sample(n=min(args.max_sentences, len(df)), random_state=args.seed)
    cfg = TrainConfig(stage="pretrain", size=args.config, epochs=args.epochs, lr=args.lr, seed=args.seed)
    summary = train(df, cfg, args.out)
    summary.update(data=args.data, out=args.out)
    report(summary, args)


def cmd_train_sft(args) -> None:
    from tlm_core.model.checkpoint import TRAINED_ON, check
    from tlm_core.train import demonstrations
    from tlm_core.train.trainer import TrainConfig, train

    check(args.init)  # a bad checkpoint is said before the records are read
    records = demonstrations.load_records(args.records)
    if not len(records):
        raise UserError(f"--records {' '.join(map(str, args.records))}: no measured records there (measure "
                        "some with `tlm train collect`, or give the exported parquet)")
    if args.without_cpu and args.cpu:
        raise UserError("--cpu and --without-cpu: give one of them")
    if args.without_cpu:
        records = demonstrations.without_cpu(records, args.without_cpu)
    if args.cpu:
        records = demonstrations.on_cpu(records, args.cpu)
    sft = demonstrations.best_programs(records, args.top)
    machines = sft.target.nunique() if len(sft) else 0
    log(f"SFT on {len(sft)} programs: the best {args.top} of each of {sft.task_hash.nunique()} subgraphs"
        + (f" on each of {machines} machines" if machines > 1 else ""))
    cfg = TrainConfig(stage="sft", size="", init=args.init, epochs=args.epochs, lr=args.lr, seed=args.seed,
                      warmup_steps=20, eval_sentences=0, eval_every_steps=10**9)
    # Which CPUs taught it: what a table run says of a model measured on a CPU it never saw.
    os.makedirs(args.out, exist_ok=True)
    Path(args.out, TRAINED_ON).write_text(json.dumps(demonstrations.cpus_of(sft), indent=1))
    summary = train(sft, cfg, args.out)
    summary.update(records=len(records), sft_programs=len(sft), out=args.out)
    report(summary, args)


def cmd_train_iterate(args) -> None:
    from tlm_core.ir.target import resolve_target
    from tlm_core.model.checkpoint import check
    from tlm_core.train.iterate import IterateConfig, iterate

    if not os.path.exists(os.path.join(args.init, "config.json")):
        raise UserError(f"--init {args.init}: no checkpoint there (run `tlm train pretrain` first)")
    check(args.init)  # before the measuring process starts: a bad file is said here, in one line
    if args.rounds < 1 or args.per_task < 1:
        raise UserError("--rounds and --per-task must be at least 1")
    cfg = IterateConfig(init=args.init, store=args.store, rounds=args.rounds, per_task=args.per_task,
                        top=args.top, sft_epochs=args.sft_epochs, temperature=args.temperature, seed=args.seed,
                        pipeline=_pipeline(args), workloads=_workloads(args))
    out = iterate(cfg, args.out, resolve_target(args.target))
    emit_json(out) if args.json else log(json.dumps(out["convergence"][-1]))


def cmd_train_ship(args) -> None:
    from tlm_core.ir.target import describe, resolve_target
    from tlm_core.model.checkpoint import check, trained_on
    from tlm_core.train import card, demonstrations

    if not os.path.exists(os.path.join(args.model, "model.safetensors")):
        raise UserError(f"--model {args.model}: no trained model there")
    target = resolve_target(args.target)
    hardware, there = card.hardware_of(args.iterate, target, args.model), trained_on(args.to)
    # Never replace a model of a CPU the new one was not tuned on (a model of every CPU replaces one of any).
    if there and any(h not in hardware for h in there):
        raise UserError(f"{args.to} holds the model for {', '.join(map(describe, there))}; this one is for "
                        f"{', '.join(map(describe, hardware))}: ship it to another folder"
                        + (f", e.g. --to data/model-{hardware[0]['mcpu']}" if len(hardware) == 1 else ""))
    check(args.model)  # never ship a model whose files do not load
    records = demonstrations.load_records(args.records)
    if not len(records):
        raise UserError(f"--records {' '.join(args.records)}: no measured records there (give the demonstration records "
                        "the model was trained on)")
    facts = card.ship(args.model, args.to, args.pretrain, args.iterate, records, target)
    out = {k: facts[k] for k in ("measured_programs", "measured_ok", "training_hours", "size_mb")}
    out.update(to=args.to)
    report(out, args)


def cmd_train_ranker(args) -> None:
    from pathlib import Path

    from tlm_core.rank.ranker import BLOCKS, RankerConfig
    from tlm_core.rank.training import compare, train_ranker

    blocks = tuple(b for b in args.features.split(",") if b)
    if not blocks or set(blocks) - set(BLOCKS):
        raise UserError(f"--features: a comma list of {', '.join(BLOCKS)}")
    if args.rounds < 1:
        raise UserError("--rounds must be at least 1")
    cfg = RankerConfig(objective=args.objective, label=args.label, blocks=blocks, rounds=args.rounds, seed=args.seed)
    seconds = args.max_seconds or None
    out = Path(args.out)
    if args.compare:
        out.mkdir(parents=True, exist_ok=True)
        sel = compare(args.records, cfg, seconds, out / "selection.json")
        best = {name: c["generated_records"]["k"].get("1", {}).get("ranker_regret") for name, c in sel["configs"].items()}
        report({"selection": str(out / "selection.json"), "complete": sel["complete"], "dev_regret_at_1": best}, args)
        return
    selection = json.loads((out / "selection.json").read_text()) if (out / "selection.json").exists() else None
    doc = train_ranker(args.records, out, cfg, seconds, selection)
    held = doc["heldout"]["generated_records"]["k"]
    report({"out": str(out), "fit_seconds": doc["fit_seconds"], "records": doc["train"]["records"],
            "heldout_regret_at_1": held.get("1", {}).get("ranker_regret"),
            "random_regret_at_1": held.get("1", {}).get("random_regret"), "sha256": doc["ranker"]["sha256"]}, args)


def register(sub) -> None:
    """`tlm train ...`."""
    train = sub.add_parser("train", help="train the TLM: demonstration data, pretraining, SFT, the iterative loop")
    tsub = train.add_subparsers(dest="train_command", required=True)
    p = tsub.add_parser("collect", help="measure random programs of every training subgraph (round 0), or "
                                         "what a tuning method finds for them")
    p.add_argument("--per-task", type=int, default=8,
                   help="random programs per subgraph (with --method: its budget, trials per subgraph)")
    p.add_argument("--method", default="random",
                   help="random (round 0), or a method of `tlm methods` whose best programs become "
                        "demonstrations (metaschedule: MetaSchedule's search)")
    p.add_argument("--max-tasks", type=int, default=0,
                   help="with --method: only each workload's N heaviest training subgraphs (0 = all)")
    p.add_argument("--store", default="data/demonstrations/store", help="record store folder")
    p.add_argument("--export", metavar="FILE.parquet", help="then write the records as parquet")
    add_target(p)
    p.add_argument("--seed", type=int, default=0)
    add_json(p)
    _add_subgraph_choice(p)
    p.set_defaults(func=cmd_train_collect)
    p = tsub.add_parser("pretrain", help="pretrain on random sentences (loss on decision values only)")
    p.add_argument("--data", default="data/pretrain/sentences.parquet", help="parquet written by `tlm sample`")
    p.add_argument("--config", default="small", help="model size: tiny, small or paper")
    p.add_argument("--out", required=True, help="output folder (run again to resume)")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--max-sentences", type=int, default=0, help="train on a random subset")
    p.add_argument("--seed", type=int, default=0)
    add_json(p)
    p.set_defaults(func=cmd_train_pretrain)
    p = tsub.add_parser("sft", help="fine-tune on the fastest measured programs (demonstration data)")
    p.add_argument("--init", required=True, help="checkpoint folder to start from (the pretrained model)")
    p.add_argument("--records", nargs="+", default=["data/demonstrations/records.parquet"],
                   help="record-store folders or exported parquets of measured programs (several: one table, "
                        "each record once; e.g. the store and a search's `records-metaschedule.parquet`)")
    p.add_argument("--top", type=int, default=1, help="programs per subgraph: the fastest ones")
    p.add_argument("--without-cpu", metavar="MCPU", help="leave out the records measured on this CPU (LLVM name, "
                   "e.g. znver4): a leave-one-CPU-out model, the honest figure for a CPU the model never saw")
    p.add_argument("--cpu", metavar="MCPU", help="only the records measured on this CPU (LLVM name, e.g. "
                   "rocketlake): a model of one CPU, as `tlm train iterate` trains")
    p.add_argument("--out", required=True, help="output folder (run again to resume)")
    p.add_argument("--epochs", type=float, default=3.0)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--seed", type=int, default=0)
    add_json(p)
    p.set_defaults(func=cmd_train_sft)
    p = tsub.add_parser("iterate", help="generate -> measure -> SFT rounds; measuring overlaps training")
    p.add_argument("--init", required=True, help="the pretrained checkpoint folder")
    p.add_argument("--store", default="data/demonstrations/store", help="demonstration record store (round 0 in it)")
    p.add_argument("--out", required=True, help="output folder: models, markers, convergence log (resumable)")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--per-task", type=int, default=4, help="programs generated per subgraph per round")
    p.add_argument("--top", type=int, default=1, help="SFT on the fastest programs per subgraph")
    p.add_argument("--sft-epochs", type=float, default=2.0)
    p.add_argument("--temperature", type=float, default=1.0)
    add_target(p)
    p.add_argument("--seed", type=int, default=0)
    add_json(p)
    _add_subgraph_choice(p)
    p.set_defaults(func=cmd_train_iterate)
    p = tsub.add_parser("ship", help="copy a trained model to data/model (or data/model-MCPU for another CPU) "
                        "with a card made from its runs")
    p.add_argument("--model", required=True, help="the final checkpoint folder (e.g. the last iterate model)")
    p.add_argument("--pretrain", required=True, help="the pretraining run folder")
    p.add_argument("--iterate", help="the iterate run folder (SFT rounds, convergence log)")
    p.add_argument("--records", nargs="+", default=["data/demonstrations/records.parquet"],
                   help="the demonstration records (several: one table, e.g. the export and a search's parquet)")
    p.add_argument("--to", default="data/model", help="data/model, or data/model-MCPU for a model of another CPU "
                   "(the default model on that CPU)")
    add_target(p)
    add_json(p)
    p.set_defaults(func=cmd_train_ship)
    p = tsub.add_parser("ranker", help="train the ranker of tlm-ranked (XGBoost, ranking objective) on the measured "
                        "records; held out: the validation subgraphs")
    p.add_argument("--records", default="data/demonstrations/records.parquet",
                   help="record-store folder or exported parquet of measured programs")
    p.add_argument("--out", default="data/ranker", help="output folder (the shipped ranker: data/ranker)")
    p.add_argument("--objective", default="rank:ndcg", choices=("rank:ndcg", "rank:pairwise", "reg:squarederror"))
    p.add_argument("--label", default="graded", choices=("graded", "log_speedup", "speed"),
                   help="graded (for rank:ndcg), log_speedup (pairwise) or speed (best / latency, for regression)")
    p.add_argument("--features", default="task,hardware,decisions,stores", help="feature blocks, comma separated")
    p.add_argument("--rounds", type=int, default=400, help="boosting rounds")
    p.add_argument("--compare", action="store_true",
                   help="instead: compare configurations on a dev split of the training subgraphs (selection.json)")
    p.add_argument("--max-seconds", type=float, default=0,
                   help="stop computing per-store features (or --compare's fits) after this long; a rerun resumes")
    p.add_argument("--seed", type=int, default=0)
    add_json(p)
    p.set_defaults(func=cmd_train_ranker)
