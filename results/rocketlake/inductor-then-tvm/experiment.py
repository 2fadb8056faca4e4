"""Does a torch.compile (inductor) run earlier in the process slow PyTorch eager's later timings?

A figure sitting benches PyTorch (eager, then inductor) and later, in the same process, the tuned
model timed alternately with eager (`eager_paired_ms`). Here one fresh process does the same two
benches in that order (`--inductor-first`), another only the second; their eager_paired_ms differ
if inductor's leftovers (its compile workers, its threads) slow eager.

python results/rocketlake/inductor-then-tvm/experiment.py WORKLOAD STORE [--inductor-first] > OUT.json
"""
import json
import sys

from tlm_core.eval import e2e
from tlm_core.ir.target import resolve_target
from tlm_core.ir.workloads import resolve
from tlm_core.provenance import provenance

workload, store = sys.argv[1], sys.argv[2]
first = "--inductor-first" in sys.argv
target = resolve_target("host")
source = resolve(workload, None)
out = {"workload": workload, "store": store, "inductor_first": first}
if first:
    out["pytorch"] = e2e.bench(source, target, method="pytorch")
out["tuned"] = e2e.bench(source, target, db_dir=store)
out["provenance"] = provenance(target, command=" ".join(["python", *sys.argv]), scale="full",
                               note="ad-hoc: inductor's leftovers and eager's paired timing")
print(json.dumps(out, indent=1, default=str))
