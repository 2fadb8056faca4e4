"""Diagnosis: are TLM@64's bert_base matmuls slow for their parallel/vectorize extents?

MetaSchedule fixes both annotations at their limits (32 jobs, 64 lanes); the tensor language makes
them decisions, and the Intel model's best programs of bert_base's matmuls chose small ones
(vectorize 2, parallel 8). Here the 5 fastest TLM@64 programs of each of the 3 matmul subgraphs are
measured again as they are and with (parallel, vectorize) set to (32, 64), side by side in one
Measurer, each timed 3 more times (median of 4). Run from the repository root:

    python results/rocketlake/kernel-bound/extents.py
"""

import dataclasses
import gzip
import json
import statistics
import sys
from pathlib import Path

from tlm_core.ir.space import design_space
from tlm_core.ir.target import resolve_target
from tlm_core.ir.tasks import extract_tasks
from tlm_core.ir.workloads import get_workload
from tlm_core.language.program import Program, apply_program
from tlm_core.language.sentence import decode
from tlm_core.measure.harness import OK, MeasureConfig, Measurer
from tlm_core.provenance import provenance
from tlm_core.train.demonstrations import candidate

HERE = Path(__file__).parent
STORE = Path("results/rocketlake/figure13/full/stores/bert_base-tlm-64")
NAMES = ["fused_matmul3_add41", "fused_matmul_add21", "fused_matmul4_add21"]
TOP = 5

target = resolve_target("host")
tasks = {t.name: t for t in extract_tasks(get_workload("bert_base"), target)}
records = [json.loads(line) for line in gzip.open(STORE / "records.jsonl.gz", "rt")]
rows, cands = [], []
for name in NAMES:
    task = tasks[name]
    space = design_space(task, target)
    best = sorted((r for r in records if r["task_name"] == name and r["status"] == OK), key=lambda r: r["latency_s"])
    for rank, rec in enumerate(best[:TOP]):
        program = decode((rec["prompt"] + " " + rec["decisions"]).split())
        maxed = Program(program.sketch, tuple(
            dataclasses.replace(d, value=(d.header[0],)) if d.kind in ("parallel", "vectorize") else d
            for d in program.decisions))
        for variant, prog in (("as generated", program), ("extents at their limits", maxed)):
            sch = apply_program(space, prog, target.hardware)
            cands.append(candidate("bert_base", task, "tlm", sch, prog, prompt=rec["prompt"], variant=variant))
            rows.append({"subgraph": name, "weight": task.weight, "rank": rank, "variant": variant,
                         "extents": [d.value[0] for d in prog.decisions if d.kind in ("parallel", "vectorize")],
                         "tlm64_ms": rec["latency_s"] * 1e3})
with Measurer(target, HERE / "extents-store", MeasureConfig()) as m:
    first = m.measure(cands, desc="measure")
    again = m.retime(cands, 3, "re-time")
for row, rec, more in zip(rows, first, again):
    ok = [r["latency_s"] * 1e3 for r in [rec, *more] if r and r["status"] == OK]
    row.update(status=rec["status"], median_ms=statistics.median(ok) if ok else None, timings=len(ok))
(HERE / "extents.json").write_text(json.dumps(rows, indent=1) + "\n")
(HERE / "extents.json.provenance.json").write_text(json.dumps(provenance(
    target, command="python " + " ".join(sys.argv), scale="bert_base's 3 matmul subgraphs, 5 programs each"),
    indent=1) + "\n")
for name in NAMES:
    for variant in ("as generated", "extents at their limits"):
        ms = [r["median_ms"] for r in rows if r["subgraph"] == name and r["variant"] == variant and r["median_ms"]]
        print(f"{name:24} {variant:24} best {min(ms):.4f} ms  median of {len(ms)}: {statistics.median(ms):.4f}")
