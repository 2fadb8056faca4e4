"""A table run's files: table.csv (one row per cell), subgraphs.csv (each method's latency per
subgraph), claims.json, provenance.json and table.md (the paper's shape). And back: a finished run's
cells from its subgraphs.csv alone, to re-tabulate it after the metrics changed or compare it with
other runs, nothing re-measured.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from benchmarks.reproduce import metrics
from benchmarks.reproduce.searchlog import log_machines
from benchmarks.tables import TABLES
from tlm_core.errors import UserError


def write(out: Path, spec, cells, per_sub, claims, prov) -> None:
    import pandas as pd

    pd.DataFrame(cells).to_csv(out / "table.csv", index=False)
    pd.DataFrame(per_sub).to_csv(out / "subgraphs.csv", index=False)
    (out / "claims.json").write_text(json.dumps(claims, indent=1))
    (out / "provenance.json").write_text(json.dumps(prov, indent=1, default=str))
    (out / "table.md").write_text(markdown(spec, cells, prov))


def _trials(b: int) -> str:
    return f"{b // 1000}K" if b >= 1000 and b % 1000 == 0 else str(b)


def markdown(spec, cells, prov) -> str:
    """The table in the paper's shape, this run's value with the paper's in brackets."""
    cols = list(dict.fromkeys(c["column"] for c in cells))
    rows = list(dict.fromkeys(c["row"] for c in cells))
    label = {spec.baseline: spec.baseline_label.split(" (")[0], "tlm": "TLM"}
    head = ["Times"] + [f"{label[c.split('@')[0]]} {_trials(int(c.split('@')[1]))}" for c in cols]
    lines = [(f"**{spec.title}** — scale `{prov['scale']}`, {prov['subgraphs']} subgraphs, {prov['cpu']} "
             f"({(prov.get('target') or {}).get('mcpu', '?')}), "
             f"commit {prov['git_commit'][:10]}, {prov['date'][:10]}"
             + (f" (re-tabulated from its subgraphs.csv at {prov['retabulated']['git_commit'][:10]})"
                if prov.get("retabulated") else "") + ". Cell: overall speedup of the row over the "
             f"column (this run; the paper's in brackets); each chosen program re-timed {prov.get('retime_rounds', 0)}x, median. "
             "† n: subgraphs without a valid program.")]
    if prov.get("baseline_log_machine", "this machine") != "this machine":
        lines[0] += f" The {label[spec.baseline]} log was {prov['baseline_log_machine']}."
    elif prov.get("baseline_log_folder"):
        lines[0] += (f" The {label[spec.baseline]} log (`{prov['baseline_log_folder']}`) was searched on this "
                     "machine's CPU: its programs were chosen by this CPU's own timings.")
    if prov.get("model_machine", "this machine") != "this machine":
        lines[0] += f" The model was {prov['model_machine']}."

    def grid(field: str, paper: bool) -> list[str]:
        out = ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in rows:
            name = (_trials(int(r.split("@")[1])) if r.startswith("tlm@")
                    else f"TLM-ranked {_trials(int(r.split('@')[1]))}" if r.startswith("tlm-ranked@")
                    else f"{label[spec.baseline]} {_trials(int(r.split('@')[1]))} (row)")
            line = [name]
            for c in cols:
                cell = next(x for x in cells if x["row"] == r and x["column"] == c)
                v = cell.get(field)
                text = "missing" if v is None else f"{v:.2f}"
                fails = cell.get("failures_method", 0) + cell.get("failures_baseline", 0)
                text += f" †{fails}" if fails else ""
                text += f" ({cell['paper']:.2f})" if paper and cell.get("paper") is not None else ""
                line.append(text)
            out.append("| " + " | ".join(line) + " |")
        return out

    lines += grid("overall_speedup", True)
    share = next((c["top3_share"] for c in cells if c.get("top3_share") is not None and c["column"] == cols[0]), None)
    if share is not None:
        lines += ["", (f"The cells above are ratios of total weighted latency (the paper's metric): the three "
                       f"heaviest subgraphs hold {share:.0%} of the first column's time, so they decide them. "
                       "Below, the geometric mean of the per-subgraph speedups (each subgraph counts once):")]
        lines += grid("geomean_speedup", False)
    return "\n".join(lines) + "\n"


# -- re-tabulating and comparing finished table runs ------------------------------------------------
def run_cells(run: Path) -> tuple:
    """(spec, cells, provenance) of a finished table run, from its subgraphs.csv: nothing re-measured."""
    import pandas as pd

    from benchmarks.tables import Scale

    if not (run / "subgraphs.csv").exists() or not (run / "provenance.json").exists():
        raise UserError(f"{run} is not a table run (no subgraphs.csv and provenance.json there)")
    prov = json.loads((run / "provenance.json").read_text())
    spec = TABLES[prov["table"]]
    scale = Scale(**{k: tuple(v) if isinstance(v, list) else v for k, v in prov["scale_settings"].items()})
    subs = pd.read_csv(run / "subgraphs.csv")
    first = subs[subs.label == subs.label.iloc[0]]
    tasks = [Sub(r.subgraph, r.hash, int(r.weight)) for r in first.itertuples()]
    methods = {label: {r.hash: r.best_ms / 1e3 for r in g.itertuples() if r.best_ms == r.best_ms}
               for label, g in subs.groupby("label", sort=False)}
    points = [int(lb.split("@")[1]) for lb in methods if lb.startswith(spec.baseline + "@")]
    if prov.get("baseline_log", {}).get("segments") and isinstance(prov.get("target"), dict):
        # Where the log was searched is worded from its segments: say it as this code does.
        from tlm_core.ir.target import Hardware

        here = Hardware.from_json(json.dumps({k: v for k, v in prov["target"].items() if k != "tvm"}))
        prov["baseline_log_machine"] = log_machines(prov["baseline_log"], here) or "this machine"
    elsewhere = prov.get("baseline_log_machine")
    elsewhere = None if elsewhere in (None, "this machine") else elsewhere
    return spec, metrics.cells(spec, scale, tasks, methods, points, prov["baseline_log"], elsewhere), prov


@dataclass(frozen=True)
class Sub:
    """A subgraph as subgraphs.csv names it (what `metrics.speedup` reads of a task)."""

    name: str
    hash: str
    weight: int


def retabulate(run: Path) -> dict:
    """Rewrite a run's table.csv and table.md from its measured subgraphs.csv (after the table's
    metrics changed); provenance.json keeps the measurement's commit and records this one."""
    import pandas as pd

    from tlm_core.provenance import provenance

    spec, cells, prov = run_cells(run)  # re-words where the baseline's log was searched, too
    claims = run / "claims.json"
    if claims.exists() and "baseline_log_machine" in prov:
        doc = json.loads(claims.read_text())
        head = doc.setdefault("compile_time_speedup_at_equal_performance", {})
        head["baseline_searched_on"] = prov["baseline_log_machine"]
        if prov.get("baseline_log", {}).get("segments"):  # from the segments' load averages
            head["baseline_search_conditions"] = metrics.search_conditions(prov["baseline_log"])
        claims.write_text(json.dumps(doc, indent=1))
    now = provenance(None)
    prov["retabulated"] = {"git_commit": now["git_commit"], "date": now["date"]}
    pd.DataFrame(cells).to_csv(run / "table.csv", index=False)
    (run / "provenance.json").write_text(json.dumps(prov, indent=1, default=str))
    (run / "table.md").write_text(markdown(spec, cells, prov))
    return {"table": spec.name, "out": str(run), "cells": cells}


def compare(runs: list[Path]) -> list[dict]:
    """Side by side, several finished runs of a table (other checkpoints, other sittings): each TLM and
    TLM-ranked row against the baseline's largest measured column, by total weighted latency and by geometric mean."""
    rows = []
    for run in runs:
        spec, cells, prov = run_cells(run)
        ok = [c for c in cells if c["baseline"] == spec.baseline and c.get("overall_speedup") is not None]
        col = max(c["baseline_trials"] for c in ok)
        for c in ok:
            if c["baseline_trials"] == col and c["method"] in ("tlm", "tlm-ranked"):
                rows.append({"run": str(run), "table": spec.name, "checkpoint": (prov.get("checkpoint") or {}).get(
                    "sha256", "")[:16], "row": c["row"], "column": c["column"],
                    **{k: c[k] for k in ("overall_speedup", "geomean_speedup", "wins", "subgraphs_compared",
                                         "top3_share")}})
    return rows
