"""The tables' subgraphs: drawn once by the rule of `benchmarks.tables.select` into
data/tables/subgraphs.json, and read back in that order by every table run and search.

A module of its own because the draw (`select`, which extracts every test workload) runs rarely and
everything else only reads its file.
"""

from __future__ import annotations

import json

from benchmarks.tables import TABLES, TableSpec, select
from tlm_core.errors import UserError
from tlm_core.paths import data_dir
from tlm_core.ui import log, progress

SUBGRAPHS = "tables/subgraphs.json"


def cmd_select(args) -> None:
    """Extract the test workloads' tasks and write the seeded selection (largest table's size)."""
    from tlm_core.ir.target import resolve_target
    from tlm_core.ir.tasks import extract_tasks
    from tlm_core.ir.workloads.zoo import TEST
    from tlm_core.provenance import provenance

    target = resolve_target(args.target)
    entries = [(w.name, t) for w in progress(TEST, "extract test workloads") for t in extract_tasks(w, target)]
    n = max(s.subgraphs for s in TABLES.values())
    chosen = select(entries, n)
    doc = {"rule": "benchmarks/tables.py (module docstring)", "provenance": provenance(target),
           "subgraphs": [{"workload": w, **t.summary(), "mod": t.mod_json} for w, t in chosen]}
    out = data_dir() / SUBGRAPHS
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1))
    log(f"wrote {len(chosen)} subgraphs to {out}")


def subgraphs(spec: TableSpec, n: int | None = None) -> list[tuple[str, object]]:
    """(workload, Task) of a table, in selection order (the first n when n is given)."""
    from tlm_core.ir.tasks import Task

    path = data_dir() / SUBGRAPHS
    if not path.exists():
        raise UserError(f"{path} is missing; run `python -m benchmarks.reproduce select`")
    rows = json.loads(path.read_text())["subgraphs"][: spec.subgraphs]
    rows = rows[:n] if n else rows
    return [(r["workload"], Task(r["name"], r["weight"], r["flops"], r["hash"], r["mod"])) for r in rows]
