"""Argument helpers shared by every `tlm` command: the model source, sampling options, `--json`, output."""

from __future__ import annotations

import argparse

from tlm_core.errors import UserError
from tlm_core.ui import emit_json, log


def comma_list(text: str | None) -> tuple[str, ...]:
    """The names of a comma-separated option (`--workloads a,b`), blanks dropped."""
    return tuple(n.strip() for n in (text or "").split(",") if n.strip())


def add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON on stdout")


def add_target(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", default="host", help="'host', 'cuda', or a JSON TVM target dict (default: host)")


def add_source(p: argparse.ArgumentParser, many: bool = False) -> None:
    """A workload name (or several) or `--module FILE.py:FN`, and `--target`."""
    if many:
        p.add_argument("workload", nargs="*", help="workload names (see `tlm workloads`)")
    else:
        p.add_argument("workload", nargs="?", help="a workload name (see `tlm workloads`)")
    p.add_argument("--module", metavar="FILE.py:FN", help="your model: FN() returns (torch.nn.Module, example_inputs)")
    add_target(p)


def add_sampling(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=0, help="processes (default: one per core)")
    add_json(p)


def report(out: dict, args, keys=None) -> None:
    """A command's summary: JSON on stdout with --json, else `key=value ...` on stderr."""
    if args.json:
        emit_json(out)
    else:
        log(" ".join(f"{k}={out[k]}" for k in (keys or out)))


def sources(names: list[str], module: str | None):
    """The workloads a command names, or the user's module."""
    from tlm_core.ir import workloads

    if module and names:
        raise UserError("give WORKLOAD names or --module FILE.py:FN, not both")
    if module:
        return [workloads.parse_module(module)]
    if not names:
        raise UserError("give at least one WORKLOAD (see `tlm workloads`) or --module FILE.py:FN")
    return [workloads.get_workload(n) for n in names]


def entries(names: list[str], module: str | None, target_spec: str):
    """(workload name, task) pairs of the command's workloads, tasks extracted (cached), and the target."""
    from tlm_core.ir.target import resolve_target
    from tlm_core.ir.tasks import extract_tasks, without_held_out

    srcs = sources(names, module)
    target = resolve_target(target_spec)
    pairs = [(s, t) for s in srcs for t in extract_tasks(s, target)]
    kept = without_held_out(pairs, target)
    if len(kept) < len(pairs):
        log(f"held out {len(pairs) - len(kept)} training tasks that a test workload has")
    return [(s.name, t) for s, t in kept], target
