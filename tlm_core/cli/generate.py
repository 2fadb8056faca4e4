"""`tlm generate`: K candidate schedules of every task of a workload, from the model, into a record store."""

from __future__ import annotations

import json
import time

from tlm_core.cli.args import add_json, add_source, report
from tlm_core.cli.args import entries as arg_entries
from tlm_core.model.generate import candidate_key, generate, task_seed


def cmd_generate(args) -> None:
    from tlm_core.errors import UserError
    from tlm_core.ir.space import design_space
    from tlm_core.language.sentence import decision_tokens
    from tlm_core.measure.harness import trace_to_json
    from tlm_core.measure.store import RecordStore
    from tlm_core.model.checkpoint import load, shipped
    from tlm_core.ui import log, progress

    if args.k < 1:
        raise UserError("--k must be at least 1")
    if args.temperature < 0:
        raise UserError("--temperature must be >= 0 (0 = greedy)")
    if args.top_k < 0:
        raise UserError("--top-k must be >= 0 (0 = off)")
    if not 0 < args.top_p <= 1:
        raise UserError("--top-p must be in (0, 1]")
    entries, target = arg_entries([args.workload] * bool(args.workload), args.module, args.target)
    checkpoint = str(args.checkpoint or shipped(target.hardware))
    store = RecordStore(f"{args.out}/candidates")  # a bad store is said before the model loads
    model, _ = load(checkpoint)
    hw = target.hardware
    hw_json = json.loads(hw.to_json())
    start = time.perf_counter()
    totals = {"candidates": 0, "invalid": 0, "duplicates": 0, "decisions": 0}
    for workload, task in progress(entries, "generate", unit="task"):
        res = generate(model, task, design_space(task, target), hw, args.k, temperature=args.temperature,
                       top_k=args.top_k, top_p=args.top_p, seed=task_seed(args.seed, task.hash))
        for err in res.errors[:3]:
            log(f"invalid candidate of {task.name}: {err}")
        for (sch, program), score in zip(res.programs, res.scores):
            trace = trace_to_json(sch.trace)
            store.add({"key": candidate_key(task.hash, trace), "status": "generated", "workload": workload,
                       "task_name": task.name, "task_hash": task.hash, "sketch": program.sketch,
                       "decisions": " ".join(decision_tokens(program)), "trace": trace, "method": "tlm",
                       "target": hw_json, "score": round(score, 4), "checkpoint": checkpoint})
        totals["candidates"] += len(res.programs)
        totals["invalid"] += res.invalid
        totals["duplicates"] += res.duplicates
        totals["decisions"] += res.decisions
    seconds = time.perf_counter() - start
    out = {"tasks": len(entries), **{k: v for k, v in totals.items() if k != "decisions"},
           "seconds": round(seconds, 2), "candidates_per_s": round(totals["candidates"] / seconds, 1),
           "decisions_per_s": round(totals["decisions"] / seconds, 1), "checkpoint": checkpoint,
           "out": f"{args.out}/candidates"}
    report(out, args)


def register(subparsers) -> None:
    """`tlm generate`: K candidates of every task of a workload, into a record store."""
    p = subparsers.add_parser("generate", help="generate candidate schedules of every task with the model")
    add_source(p)
    p.add_argument("--k", type=int, required=True, help="candidates per task")
    p.add_argument("--checkpoint", metavar="DIR", help="model folder (default: the shipped model for the target's CPU, data/model[-MCPU])")
    p.add_argument("--temperature", type=float, default=1.0, help="0 = greedy")
    p.add_argument("--top-k", type=int, default=0, help="sample among the k likeliest valid tokens (0 = off)")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (1 = off)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, metavar="DIR", help="candidates go to DIR/candidates (a record store)")
    add_json(p)
    p.set_defaults(func=cmd_generate)
