"""`tlm workloads` and `tlm tasks`: what can be tuned."""

from __future__ import annotations

import time

from tlm_core.cli.args import add_json, add_source
from tlm_core.ui import emit_json, log


def cmd_workloads(args) -> None:
    from tlm_core.ir.workloads import all_workloads

    rows = [w.to_json() for w in all_workloads() if args.split in (None, w.split)]
    if args.json:
        emit_json(rows)
        return
    for r in rows:
        shapes = " ".join("x".join(map(str, s)) for s in r["input_shapes"])
        print(f"{r['name']:<28} {r['split']:<5} {shapes:<24} {r['description']}")


def cmd_tasks(args) -> None:
    from tlm_core.ir import workloads
    from tlm_core.ir.target import resolve_target
    from tlm_core.ir.tasks import extract_tasks

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


def register(sub) -> None:
    """`tlm workloads`, `tlm tasks`."""
    p = sub.add_parser("workloads", help="list the workload zoo (Table-1 test set and training set)")
    p.add_argument("--split", choices=["test", "train"], help="only this split")
    add_json(p)
    p.set_defaults(func=cmd_workloads)

    p = sub.add_parser("tasks", help="extract the tuning tasks (fused subgraphs) of a model")
    add_source(p)
    p.add_argument("--no-cache", action="store_true", help="extract again even if cached")
    add_json(p)
    p.set_defaults(func=cmd_tasks)
