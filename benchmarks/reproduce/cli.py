"""The command line, `python -m benchmarks.reproduce WHAT [REST...]`: parses the arguments, runs the
job of the module it names, prints the result. A module of its own so that every job is a function
with arguments (what tests call) and only this one reads argv, prints, and turns a UserError into
one line (`reproduce: error: ...`, exit 2) and Ctrl-C into what to run next (exit 130).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.reproduce.e2e import retabulate_e2e, run_e2e
from benchmarks.reproduce.metrics import write_claims
from benchmarks.reproduce.render import compare, retabulate
from benchmarks.reproduce.searchlog import own_cpu, search
from benchmarks.reproduce.selection import cmd_select
from benchmarks.reproduce.sitting import run_tables
from benchmarks.tables import FIGURES, TABLES
from tlm_core.cli.args import comma_list
from tlm_core.errors import UserError
from tlm_core.paths import REPO_ROOT
from tlm_core.ui import emit_json


def main(argv: list[str] | None = None) -> int:
    import benchmarks.reproduce as package  # its docstring's first line is --help's description

    p = argparse.ArgumentParser(prog="python -m benchmarks.reproduce", description=package.__doc__.split("\n")[0])
    p.add_argument("what", help="table2 | table3 | tables (both, one sitting) | claims | figure10 | figure13 | "
                                "methods | select | search | retabulate | compare")
    p.add_argument("rest", nargs="*", help="for `search`: the table whose baseline to search; for `retabulate` "
                                           "and `compare`: directories of finished table runs")
    p.add_argument("--scale", default="default", choices=("smoke", "default", "full"))
    p.add_argument("--out", help="results root (default results/; a table goes to ROOT/<table>/<scale>)")
    p.add_argument("--trials", type=int, default=64, help="for `search`: trials per subgraph to reach")
    p.add_argument("--rpc", metavar="HOST:PORT:KEY",
                   help="for `search` (and --scale full): run the trials on the servers of this TVM RPC tracker")
    p.add_argument("--workloads", metavar="NAME,...", help="figures: run only these of the figure's workloads "
                   "(the others' rows are kept; with --resume, a part of a long sitting first)")
    p.add_argument("--redo", action="store_true", help="figures, with --resume and --workloads: run those "
                   "workloads again although measured (e.g. after their tasks changed; old rows to superseded.csv)")
    p.add_argument("--target", default="host")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="keep the measurements of an interrupted run")
    p.add_argument("--flush-caches", action="store_true",
                   help="figures: choose each subgraph's program by timings with the caches flushed (inside a "
                        "model a kernel's weights come from memory); its own --out")
    p.add_argument("--challenger", metavar="CHECKPOINT", action="append", default=[],
                   help="tables: also measure this model's TLM rows in the same sitting (into <out>-challenger/; "
                        "given again, a second one into <out>-challenger-2/, ...)")
    p.add_argument("--own-cpu", action="store_true",
                   help="for `search`: extend this CPU's own log (data/baselines/TABLE-METHOD-MCPU), which table "
                        "runs on this CPU then read instead of the shared one")
    p.add_argument("--shared-log", action="store_true",
                   help="tables: read the shared baseline log even where this CPU has its own")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    args = p.parse_args(argv)
    try:
        from tlm_core.ir.target import resolve_target
        from tlm_core.methods.metaschedule import Tracker

        rpc = Tracker.parse(args.rpc) if args.rpc else None
        if args.flush_caches and args.what not in FIGURES:
            raise UserError(f"--flush-caches chooses a figure's end-to-end programs by cold timings; {args.what} "
                            f"has none: drop it, or reproduce one of {', '.join(FIGURES)}")
        if args.what == "select":
            cmd_select(args)
            return 0
        if args.what == "search":
            if len(args.rest) != 1 or args.rest[0] not in TABLES:
                raise UserError(f"search which table? one of {', '.join(TABLES)}")
            target = resolve_target(args.target)
            res = search(TABLES[args.rest[0]], args.trials, target, args.seed, rpc,
                         cpu=own_cpu(target) if args.own_cpu else None)
        elif args.what in ("retabulate", "compare"):
            if not args.rest:
                raise UserError(f"{args.what} which runs? give their directories (e.g. results/table2/default)")
            runs = [Path(r) for r in args.rest]
            # An end-to-end run (Figure 13, methods) is re-tabulated from its e2e.csv, a table run from its subgraphs.csv.
            res = [retabulate_e2e(r) if (r / "e2e.csv").exists() else retabulate(r) for r in runs] \
                if args.what == "retabulate" else compare(runs)
        elif args.what in FIGURES:
            out = (Path(args.out) if args.out else REPO_ROOT / "results") / args.what / args.scale
            only = list(comma_list(args.workloads)) or None
            res = run_e2e(FIGURES[args.what], args.scale, out, resolve_target(args.target), args.seed, args.resume,
                          only=only, redo=args.redo, flush_caches=args.flush_caches)
        elif args.what in (*TABLES, "tables", "claims"):
            names = {"tables": list(TABLES), "claims": ["table2"]}.get(args.what, [args.what])
            root = Path(args.out) if args.out else REPO_ROOT / "results"
            outs = {n: root / n / args.scale for n in names}
            for ckpt in args.challenger:
                if not (Path(ckpt) / "config.json").exists():
                    raise UserError(f"--challenger {ckpt}: no trained model there (no config.json)")
            res = run_tables([TABLES[n] for n in names], args.scale, outs, resolve_target(args.target), args.seed,
                             args.resume, challenger=args.challenger, rpc=rpc, shared_log=args.shared_log)
            claims = write_claims(root, args.scale)
            if args.what == "claims":
                res = claims
        else:
            raise UserError(f"unknown artefact {args.what!r}: {', '.join([*TABLES, *FIGURES])}, tables, claims, "
                            "select, search, retabulate, compare")
    except UserError as err:
        print(f"reproduce: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("reproduce: interrupted (" + ("the log keeps every trial committed; run the same command again to "
                                           "go on" if args.what == "search" else
                                           "run again with --resume to keep what was measured") + ")", file=sys.stderr)
        return 130
    if args.json:
        emit_json(res)
    elif args.what in (*TABLES, "tables"):
        for r in res:
            print((Path(r["out"]) / "table.md").read_text())
    elif args.what in FIGURES:
        print(f"wrote {res['out']}/e2e.csv; plot it with `python -m figures.plot {args.what}`")
    elif args.what == "retabulate":
        for r in res:
            print((Path(r["out"]) / "table.md").read_text())
    elif args.what == "compare":
        cols = ["run", "checkpoint", "row", "column", "overall_speedup", "geomean_speedup", "wins", "top3_share"]
        print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
        for r in res:
            print("| " + " | ".join(str(r[c]) for c in cols) + " |")
    return 0
