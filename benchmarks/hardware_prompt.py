"""Does the model's program depend on the hardware its prompt names? Measured on this host.

    python -m benchmarks.hardware_prompt --table table2 --other data/training/iterate/target.json \
        [--checkpoint data/model] [--subgraphs NAME,...] --out DIR

For every subgraph of a table: the greedy program the model generates for this host's design space
with the prompt naming (a) this host's hardware and (b) another machine's (`--other`: a hardware JSON,
e.g. the CPU the model's demonstration data was measured on). Both programs are built for and timed
on this host, side by side, and each program's timing is repeated (`--retime`, median). A model that
has never seen this host's hardware tokens is out of distribution; (b) shows what it would choose for
the machine it knows. Outputs: DIR/programs.csv (one row per subgraph and prompt), DIR/summary.json
(weighted totals and geometric mean of per-subgraph ratios), DIR/provenance.json.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from tlm_core.errors import UserError
from tlm_core.ui import emit_json, log, progress


def run(table: str, other_json: Path, checkpoint: Path, names: list[str], out: Path, retime: int, seed: int) -> dict:
    import pandas as pd

    from benchmarks.reproduce import subgraphs
    from benchmarks.tables import TABLES
    from tlm_core.ir.space import design_space
    from tlm_core.ir.target import Hardware, resolve_target
    from tlm_core.language.sentence import decision_tokens
    from tlm_core.measure.harness import OK, MeasureConfig, Measurer
    from tlm_core.model import checkpoint as M
    from tlm_core.model.generate import generate
    from tlm_core.provenance import checkpoint_identity, code_state, provenance
    from tlm_core.train.demonstrations import candidate

    code_state()
    host = resolve_target("host")
    try:
        other = Hardware.from_json(other_json.read_text())
    except (OSError, ValueError, TypeError) as err:
        raise UserError(f"--other {other_json}: not a hardware JSON file ({err})") from None
    entries = subgraphs(TABLES[table], 0)
    if names:
        unknown = set(names) - {t.name for _, t in entries}
        if unknown:
            raise UserError(f"--subgraphs: {sorted(unknown)} are not subgraphs of {table}")
        entries = [(w, t) for w, t in entries if t.name in names]
    lm, _ = M.load(checkpoint)
    prompts = {"this host": host.hardware, "other": other}
    rows, cands = [], []
    for w, t in progress(entries, "greedy programs", unit="subgraph"):
        space = design_space(t, host)  # this host's space either way: only the prompt's hardware differs
        for label, hw in prompts.items():
            (sch, prog), = generate(lm, t, space, hw, 1, temperature=0.0, seed=seed).programs
            cands.append(candidate(w, t, "tlm", sch, prog, prompt_hardware=label))
            rows.append({"workload": w, "subgraph": t.name, "hash": t.hash, "weight": t.weight,
                         "prompt": label, "prompt_mcpu": hw.mcpu, "sketch": prog.sketch,
                         "decisions": " ".join(decision_tokens(prog))})
    store = out / "store"
    with Measurer(host, store, MeasureConfig()) as m:
        first = m.measure(cands, desc="measure")
        again = m.retime(cands, retime, "re-time") if retime else [[] for _ in cands]
    for row, rec, more in zip(rows, first, again):
        ok = sorted(r["latency_s"] for r in [rec, *more] if r and r["status"] == OK)
        row.update(status=rec["status"], latency_ms=round(ok[len(ok) // 2] * 1e3, 6) if ok else None,
                   timings=len(ok))
    df = pd.DataFrame(rows)
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "programs.csv", index=False)
    wide = df.pivot_table(index=["workload", "subgraph", "hash", "weight"], columns="prompt",
                          values="latency_ms", aggfunc="first").reset_index()
    complete = wide.dropna(subset=list(prompts))
    total = {label: float((complete.weight * complete[label]).sum()) for label in prompts}
    ratios = complete["this host"] / complete["other"]
    summary = {"table": table, "subgraphs": len(wide), "measured_both": len(complete),
               "weighted_total_ms": {k: round(v, 3) for k, v in total.items()},
               "total_ratio_this_host_over_other": round(total["this host"] / total["other"], 4),
               "geomean_ratio_this_host_over_other": round(math.exp(sum(map(math.log, ratios)) / len(ratios)), 4),
               "this_host_faster": int((ratios < 1).sum()), "other_faster": int((ratios > 1).sum()),
               "this_host": host.hardware.mcpu, "other": other.mcpu}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    prov = provenance(host, command="python -m benchmarks.hardware_prompt " + " ".join(sys.argv[1:]),
                      checkpoint=checkpoint_identity(checkpoint), other_hardware=json.loads(other.to_json()),
                      seed=seed, retime=retime)
    (out / "provenance.json").write_text(json.dumps(prov, indent=2, default=str) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.hardware_prompt", description=__doc__.split("\n")[0])
    p.add_argument("--table", default="table2", choices=["table2", "table3"])
    p.add_argument("--other", required=True, type=Path, help="hardware JSON of the other machine")
    p.add_argument("--checkpoint", type=Path, default=Path("data/model"))
    p.add_argument("--subgraphs", default="", help="comma-separated subgraph names (default: all of the table)")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--retime", type=int, default=3, help="extra timings of every program (median)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    try:
        summary = run(args.table, args.other, args.checkpoint, [n for n in args.subgraphs.split(",") if n],
                      args.out, args.retime, args.seed)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    emit_json(summary) if args.json else log(" ".join(f"{k}={v}" for k, v in summary.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
