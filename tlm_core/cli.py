"""The `tlm` command. `--json` prints one JSON document on stdout; progress and logs go to stderr."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from tlm_core.errors import UserError
from tlm_core.ui import emit_json, log


def _add_source(p: argparse.ArgumentParser, many: bool = False) -> None:
    if many:
        p.add_argument("workload", nargs="*", help="workload names (see `tlm workloads`)")
    else:
        p.add_argument("workload", nargs="?", help="a workload name (see `tlm workloads`)")
    p.add_argument("--module", metavar="FILE.py:FN", help="your model: FN() returns (torch.nn.Module, example_inputs)")
    p.add_argument("--target", default="host", help="'host', 'cuda', or a JSON TVM target dict (default: host)")


def _add_sampling(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=0, help="processes (default: one per core)")
    p.add_argument("--json", action="store_true", help="print JSON on stdout")


def cmd_workloads(args) -> None:
    from tlm_core.workloads import all_workloads

    rows = [w.to_json() for w in all_workloads() if args.split in (None, w.split)]
    if args.json:
        emit_json(rows)
        return
    for r in rows:
        shapes = " ".join("x".join(map(str, s)) for s in r["input_shapes"])
        print(f"{r['name']:<28} {r['split']:<5} {shapes:<24} {r['description']}")


def cmd_tasks(args) -> None:
    from tlm_core import workloads
    from tlm_core.target import resolve_target
    from tlm_core.tasks import extract_tasks

    source = workloads.resolve(args.workload, args.module)
    target = resolve_target(args.target)
    start = time.perf_counter()
    log(f"extracting tasks of {source.name} for {target.hardware.tvm_target_dict()} ...")
    tasks = extract_tasks(source, target, use_cache=not args.no_cache)
    seconds = time.perf_counter() - start
    if args.json:
        emit_json([t.summary() for t in tasks])
        return
    total = sum(t.weight * t.flops for t in tasks)
    for t in tasks:
        print(f"{t.hash}  w={t.weight:<4} {t.flops * t.weight / max(total, 1):6.1%} of FLOPs  {t.name}")
    log(f"{len(tasks)} tasks, {sum(t.weight for t in tasks)} subgraph instances, {seconds:.1f} s")


def _sources(names: list[str], module: str | None):
    from tlm_core import workloads

    if module and names:
        raise UserError("give WORKLOAD names or --module FILE.py:FN, not both")
    if module:
        return [workloads.parse_module(module)]
    if not names:
        raise UserError("give at least one WORKLOAD (see `tlm workloads`) or --module FILE.py:FN")
    return [workloads.get_workload(n) for n in names]


def _entries(args):
    """(workload name, task) pairs of the command's workloads, tasks extracted (cached)."""
    from tlm_core.target import resolve_target
    from tlm_core.tasks import extract_tasks, held_out_hashes

    sources = _sources(args.workload, args.module)
    target = resolve_target(args.target)
    # Training workloads never contribute a subgraph that a test workload has (the held-out set).
    held = held_out_hashes(target) if any(s.split == "train" for s in sources) else set()
    pairs = [(s, t) for s in sources for t in extract_tasks(s, target)]
    kept = [(s.name, t) for s, t in pairs if s.split != "train" or t.hash not in held]
    if len(kept) < len(pairs):
        log(f"held out {len(pairs) - len(kept)} training tasks that a test workload has")
    return kept, target


def cmd_sample(args) -> None:
    import pandas as pd

    from tlm_core.language import sampling

    if args.n < 1:
        raise UserError("-n must be at least 1")
    if not args.out.endswith(".parquet"):
        raise UserError(f"--out {args.out!r}: the output is a parquet file, name it *.parquet")
    entries, target = _entries(args)
    workers = args.workers or sampling.default_workers()
    start = time.perf_counter()
    jobs = sampling.plan(entries, args.n, target, args.seed, workers)
    results = sampling.run_jobs(sampling.sample_job, jobs, workers, "sample")
    rows = [r for rs, _ in results for r in rs]
    seconds = time.perf_counter() - start
    df = pd.DataFrame(rows)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    df.to_parquet(args.out, index=False)
    total = df.prompt_tokens + df.decision_tokens
    summary = {"sentences": len(df), "tasks": len(entries), "workloads": sorted({w for w, _ in entries}),
               "seconds": round(seconds, 2), "sentences_per_s": round(len(df) / seconds, 1),
               "rejected_by_postproc": sum(r for _, r in results), "max_tokens": int(total.max()),
               "mean_tokens": round(float(total.mean()), 1), "max_decision_tokens": int(df.decision_tokens.max()),
               "workers": workers, "out": args.out}
    # Provenance sidecar beside the data: what made it, where, with which versions.
    from tlm_core.provenance import provenance

    sidecar = provenance(target, command="tlm sample", seed=args.seed, summary=summary)
    with open(args.out + ".provenance.json", "w") as f:
        json.dump(sidecar, f, indent=2, default=str)
    emit_json(summary) if args.json else log(" ".join(f"{k}={v}" for k, v in summary.items()))


def cmd_roundtrip(args) -> None:
    from tlm_core.language import sampling

    if args.n < 1:
        raise UserError("-n must be at least 1")
    entries, target = _entries(args)
    workers = args.workers or sampling.default_workers()
    start = time.perf_counter()
    jobs = sampling.plan(entries, args.n * len(entries), target, args.seed, workers)
    parts = sampling.run_jobs(sampling.roundtrip_job, jobs, workers, "roundtrip")
    out = {k: sum(p[k] for p in parts) for k in ("programs", "identical", "different", "rejected_by_postproc")}
    out.update(tasks=len(entries), seconds=round(time.perf_counter() - start, 2),
               failures=[f for p in parts for f in p["failures"]][:10])
    emit_json(out) if args.json else log(" ".join(f"{k}={v}" for k, v in out.items()))
    if out["different"]:
        raise UserError(f"{out['different']} of {out['programs']} programs did not survive the round trip")


def cmd_train_collect(args) -> None:
    from tlm_core.target import resolve_target
    from tlm_core.train import demonstrations

    if args.per_task < 1:
        raise UserError("--per-task must be at least 1")
    target = resolve_target(args.target)
    start = time.perf_counter()
    out = demonstrations.collect_random(target, args.store, args.per_task, args.seed)
    out.update(seconds=round(time.perf_counter() - start, 1), store=args.store)
    if args.export:
        out.update(demonstrations.export(args.store, args.export))
    emit_json(out) if args.json else log(" ".join(f"{k}={v}" for k, v in out.items()))


def cmd_train_pretrain(args) -> None:
    import pandas as pd

    from tlm_core.train.trainer import TrainConfig, train

    if not os.path.exists(args.data):
        raise UserError(f"--data {args.data}: no such file (make one with `tlm sample`)")
    df = pd.read_parquet(args.data, columns=["prompt", "decisions"])
    if args.max_sentences:
        df = df.sample(n=min(args.max_sentences, len(df)), random_state=args.seed)
    cfg = TrainConfig(stage="pretrain", size=args.config, epochs=args.epochs, lr=args.lr, seed=args.seed)
    summary = train(df, cfg, args.out)
    summary.update(data=args.data, out=args.out)
    emit_json(summary) if args.json else log(" ".join(f"{k}={v}" for k, v in summary.items()))


def cmd_train_sft(args) -> None:
    from tlm_core.train import demonstrations
    from tlm_core.train.trainer import TrainConfig, train

    records = demonstrations.load_records(args.records)
    sft = demonstrations.best_programs(records, args.top)
    machines = sft.target.nunique() if len(sft) else 0
    log(f"SFT on {len(sft)} programs: the best {args.top} of each of {sft.task_hash.nunique()} subgraphs"
        + (f" on each of {machines} machines" if machines > 1 else ""))
    cfg = TrainConfig(stage="sft", size="", init=args.init, epochs=args.epochs, lr=args.lr, seed=args.seed,
                      warmup_steps=20, eval_sentences=0, eval_every_steps=10**9)
    summary = train(sft, cfg, args.out)
    summary.update(records=len(records), sft_programs=len(sft), out=args.out)
    emit_json(summary) if args.json else log(" ".join(f"{k}={v}" for k, v in summary.items()))


def cmd_train_iterate(args) -> None:
    from tlm_core.target import resolve_target
    from tlm_core.train.iterate import IterateConfig, iterate

    if not os.path.exists(os.path.join(args.init, "config.json")):
        raise UserError(f"--init {args.init}: no checkpoint there (run `tlm train pretrain` first)")
    if args.rounds < 1 or args.per_task < 1:
        raise UserError("--rounds and --per-task must be at least 1")
    cfg = IterateConfig(init=args.init, store=args.store, rounds=args.rounds, per_task=args.per_task,
                        top=args.top, sft_epochs=args.sft_epochs, temperature=args.temperature, seed=args.seed)
    out = iterate(cfg, args.out, resolve_target(args.target))
    emit_json(out) if args.json else log(json.dumps(out["convergence"][-1]))


def cmd_train_ship(args) -> None:
    from tlm_core.model import trained_for
    from tlm_core.target import describe, resolve_target
    from tlm_core.train import card, demonstrations

    if not os.path.exists(os.path.join(args.model, "model.safetensors")):
        raise UserError(f"--model {args.model}: no trained model there")
    target = resolve_target(args.target)
    hardware, there = card.hardware_of(args.iterate, target), trained_for(args.to)
    if there and there != hardware:  # a model per CPU: never replace another CPU's model
        raise UserError(f"{args.to} holds the model for {describe(there)}; this one is for {describe(hardware)}: "
                        f"ship it with --to data/model-{hardware['mcpu']}")
    records = demonstrations.load_records(args.records)
    facts = card.ship(args.model, args.to, args.pretrain, args.iterate, records, target)
    out = {k: facts[k] for k in ("measured_programs", "measured_ok", "training_hours", "size_mb")}
    out.update(to=args.to)
    emit_json(out) if args.json else log(" ".join(f"{k}={v}" for k, v in out.items()))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tlm", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("workloads", help="list the workload zoo (Table-1 test set and training set)")
    p.add_argument("--split", choices=["test", "train"], help="only this split")
    p.add_argument("--json", action="store_true", help="print JSON on stdout")
    p.set_defaults(func=cmd_workloads)

    p = sub.add_parser("tasks", help="extract the tuning tasks (fused subgraphs) of a model")
    _add_source(p)
    p.add_argument("--no-cache", action="store_true", help="extract again even if cached")
    p.add_argument("--json", action="store_true", help="print JSON on stdout")
    p.set_defaults(func=cmd_tasks)

    p = sub.add_parser("sample", help="random valid sentences (pretraining data) into a parquet file")
    _add_source(p, many=True)
    p.add_argument("-n", type=int, required=True, help="sentences in all, spread evenly over the tasks")
    p.add_argument("--out", required=True, help="FILE.parquet")
    _add_sampling(p)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("roundtrip", help="sample, encode, decode, compare: proof of losslessness")
    _add_source(p, many=True)
    p.add_argument("-n", type=int, default=10, help="programs per task")
    _add_sampling(p)
    p.set_defaults(func=cmd_roundtrip)

    train = sub.add_parser("train", help="train the TLM: demonstration data, pretraining, SFT, the iterative loop")
    tsub = train.add_subparsers(dest="train_command", required=True)
    p = tsub.add_parser("collect", help="measure random programs of every training subgraph (round 0)")
    p.add_argument("--per-task", type=int, default=8, help="random programs per subgraph")
    p.add_argument("--store", default="data/demonstrations/store", help="record store folder")
    p.add_argument("--export", metavar="FILE.parquet", help="then write the records as parquet")
    p.add_argument("--target", default="host", help="'host', 'cuda', or a JSON TVM target dict")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print JSON on stdout")
    p.set_defaults(func=cmd_train_collect)
    p = tsub.add_parser("pretrain", help="pretrain on random sentences (loss on decision values only)")
    p.add_argument("--data", default="data/pretrain/sentences.parquet", help="parquet written by `tlm sample`")
    p.add_argument("--config", default="small", help="model size: tiny, small or paper")
    p.add_argument("--out", required=True, help="output folder (run again to resume)")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--max-sentences", type=int, default=0, help="train on a random subset")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print JSON on stdout")
    p.set_defaults(func=cmd_train_pretrain)
    p = tsub.add_parser("sft", help="fine-tune on the fastest measured programs (demonstration data)")
    p.add_argument("--init", required=True, help="checkpoint folder to start from (the pretrained model)")
    p.add_argument("--records", default="data/demonstrations/records.parquet",
                   help="record-store folder or exported parquet of measured programs")
    p.add_argument("--top", type=int, default=1, help="programs per subgraph: the fastest ones")
    p.add_argument("--out", required=True, help="output folder (run again to resume)")
    p.add_argument("--epochs", type=float, default=3.0)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print JSON on stdout")
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
    p.add_argument("--target", default="host", help="'host', 'cuda', or a JSON TVM target dict")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print JSON on stdout")
    p.set_defaults(func=cmd_train_iterate)
    p = tsub.add_parser("ship", help="copy a trained model to data/model (or data/model-MCPU for another CPU) "
                        "with a card made from its runs")
    p.add_argument("--model", required=True, help="the final checkpoint folder (e.g. the last iterate model)")
    p.add_argument("--pretrain", required=True, help="the pretraining run folder")
    p.add_argument("--iterate", help="the iterate run folder (SFT rounds, convergence log)")
    p.add_argument("--records", default="data/demonstrations/records.parquet", help="the demonstration records")
    p.add_argument("--to", default="data/model", help="data/model, or data/model-MCPU for a model of another CPU "
                   "(the default model on that CPU)")
    p.add_argument("--target", default="host")
    p.add_argument("--json", action="store_true", help="print JSON on stdout")
    p.set_defaults(func=cmd_train_ship)

    from tlm_core.e2e import register_cli as register_e2e
    from tlm_core.generate import register_cli as register_generate
    from tlm_core.hub import register_cli as register_dataset
    from tlm_core.profile import register_cli as register_profile

    register_generate(sub)
    register_dataset(sub)
    register_e2e(sub)
    register_profile(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `tlm` console script."""
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except UserError as err:
        print(f"tlm: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `tlm ... | head`: the reader left, nothing is wrong
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("tlm: interrupted (measured records are kept; run again to resume)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
