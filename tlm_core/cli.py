"""The `tlm` command. `--json` prints one JSON document on stdout; progress and logs go to stderr."""

from __future__ import annotations

import argparse
import sys
import time

from tlm_core.errors import UserError
from tlm_core.ui import emit_json, log


def _add_source(p: argparse.ArgumentParser) -> None:
    p.add_argument("workload", nargs="?", help="a workload name (see `tlm workloads`)")
    p.add_argument("--module", metavar="FILE.py:FN", help="your model: FN() returns (torch.nn.Module, example_inputs)")
    p.add_argument("--target", default="host", help="'host', 'cuda', or a JSON TVM target dict (default: host)")


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
