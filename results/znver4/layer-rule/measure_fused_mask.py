"""Ad-hoc (2026-12-07 09:25, Zen 4): the harness's time for the one subgraph of llama's 1-layer build
that no task covers (the attention mask fused with the residual add), run unscheduled there."""

from tvm.s_tir import Schedule

from tlm_core.ir.target import resolve_target
from tlm_core.ir.tasks import extract_tasks
from tlm_core.ir.workloads import get_workload
from tlm_core.measure.harness import Candidate, MeasureConfig, Measurer, trace_to_json

source = get_workload("llama")
target = resolve_target("host")
fused = next(t for t in extract_tasks(source.layers(1), target) if t.hash == "b541a1066a912cee")
with Measurer(target, "results/znver4/layer-rule/store", MeasureConfig()) as m:
    record, = m.measure([Candidate(fused, trace_to_json(Schedule(fused.mod).trace), "llama", "untuned")])
print(record["status"], record["latency_s"], record["error"][:200])
