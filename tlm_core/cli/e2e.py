"""`tlm methods`, `tlm tune`, `tlm compile`, `tlm bench`: a whole model, tuned by any method, compiled and timed."""

from __future__ import annotations

from tlm_core.cli.args import add_json, add_source, report
from tlm_core.errors import UserError
from tlm_core.eval.e2e import bench, compile_model, tune_workload
from tlm_core.ui import emit_json, log


def cmd_methods(args) -> None:
    from tlm_core.methods import methods

    rows = [m.to_json() for m in methods()]
    if args.json:
        emit_json(rows)
        return
    for r in rows:
        state = "yes" if r["available"] else "no "
        print(f"{r['name']:<13} {state} {r['description']}" + (f"  [{r['why']}]" if r["why"] else ""))


def cmd_tune(args) -> None:
    from tlm_core.ir import workloads
    from tlm_core.ir.target import resolve_target
    from tlm_core.measure.harness import MeasureConfig

    source = workloads.resolve(args.workload, args.module)
    target = resolve_target(args.target)
    if args.budget < 1:
        raise UserError("--budget must be at least 1")
    if args.max_tasks < 0:
        raise UserError("--max-tasks must be >= 0 (0 = all)")
    config = MeasureConfig(**({"repeat": args.repeat} if args.repeat else {}), flush_caches=args.flush_caches,
                           prune_slower=args.prune_slower)
    out = tune_workload(source, args.method, args.budget, args.out, target, config=config, seed=args.seed,
                        max_tasks=args.max_tasks)
    if args.json:
        emit_json(out)
    else:
        keys = ("method", "tasks", "candidates", "measured", "failed", "slower", "compile_seconds", "weighted_latency_ms")
        log(" ".join(f"{k}={out[k]}" for k in keys))


def cmd_compile(args) -> None:
    from tlm_core.ir import workloads
    from tlm_core.ir.target import resolve_target

    source = workloads.resolve(args.workload, args.module)
    out = compile_model(source, args.db, args.out, resolve_target(args.target))
    emit_json(out) if args.json else log(" ".join(f"{k}={v}" for k, v in out.items() if k != "untuned"))


def cmd_bench(args) -> None:
    from tlm_core.ir import workloads
    from tlm_core.ir.target import resolve_target

    if args.repeat < 1:
        raise UserError("--repeat must be at least 1")
    source = workloads.resolve(args.workload, args.module)
    if args.threads < 0:
        raise UserError("--threads must be >= 0 (0 = one per core of the target)")
    out = bench(source, resolve_target(args.target), db_dir=args.db, method=args.method, repeat=args.repeat,
                inductor=not args.no_inductor, threads=args.threads, switch=args.switch, processes=args.processes,
                fp64=args.fp64)
    report(out, args)


def register(subparsers) -> None:
    """`tlm methods`, `tlm tune`, `tlm compile`, `tlm bench`."""
    p = subparsers.add_parser("methods", help="list the tuning methods and whether each can run here")
    add_json(p)
    p.set_defaults(func=cmd_methods)

    p = subparsers.add_parser("tune", help="tune a workload's subgraphs with a method; measured records into --out")
    add_source(p)
    p.add_argument("--method", required=True, help="see `tlm methods`")
    p.add_argument("--budget", type=int, required=True, help="candidates (trials) measured per subgraph")
    p.add_argument("--out", required=True, metavar="DIR", help="record store folder (run again to resume)")
    p.add_argument("--max-tasks", type=int, default=0, help="only the N heaviest subgraphs (0 = all)")
    p.add_argument("--repeat", type=int, default=0, help="timed repeats per candidate (default: the harness's)")
    p.add_argument("--flush-caches", action="store_true",
                   help="time each candidate's calls with its weights and outputs flushed from the caches, as a "
                        "kernel runs inside the model (CPU; use a store of its own: records are keyed by it)")
    p.add_argument("--prune-slower", type=float, default=0.0, metavar="X",
                   help="stop a candidate's run once its calls take over X times its subgraph's best so far "
                        "(status `slower`; 0 = time every one in full, as a dataset needs). 4 is safe on a noisy machine")
    p.add_argument("--seed", type=int, default=0)
    add_json(p)
    p.set_defaults(func=cmd_tune)

    p = subparsers.add_parser("compile", help="build the whole model with the best record per subgraph")
    add_source(p)
    p.add_argument("--db", metavar="DIR", help="record store of `tlm tune` (omit: TVM default code everywhere)")
    p.add_argument("--out", required=True, metavar="FILE.so", help="the Relax VM library to write")
    add_json(p)
    p.set_defaults(func=cmd_compile)

    p = subparsers.add_parser("bench", help="end-to-end latency and max abs error vs PyTorch eager")
    add_source(p)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--db", metavar="DIR", help="record store of `tlm tune`: compile with its best records")
    g.add_argument("--method", choices=["pytorch", "untuned"], help="PyTorch itself, or TVM default code")
    p.add_argument("--repeat", type=int, default=10, help="timed runs; the median is reported")
    p.add_argument("--no-inductor", action="store_true", help="pytorch: skip torch.compile")
    p.add_argument("--switch", action="store_true",
                   help="also time the compiled model back to back and right after a PyTorch eager call "
                        "(what a switch of runtime costs it: back_to_back_ms, after_switch_ms)")
    p.add_argument("--processes", type=int, default=1,
                   help="time the compiled model in N fresh processes, one after another: medians over them, "
                        "and each one's numbers under per_process (a process can draw a slow mode for its life), "
                        "with how the OS ran it (per_process.scheduling: context switches, each thread's CPU)")
    p.add_argument("--fp64", action="store_true",
                   help="also check the compiled model's and PyTorch eager's outputs against the model run in "
                        "float64 (vs_float64): does it round more than PyTorch, or only differently?")
    p.add_argument("--threads", type=int, default=0,
                   help="threads for PyTorch and the TVM runtime (0 = one per core of the target)")
    add_json(p)
    p.set_defaults(func=cmd_bench)
