"""`untuned`: TVM's default code for each subgraph, the task's PrimFunc built as it is (no schedule).

On llvm this is the unscheduled loop nest (no tiling, no parallel loops, no vectorization): the
baseline every tuned schedule is compared with. One candidate per subgraph: the empty trace.
"""

from __future__ import annotations

from tlm_core.measure.harness import Candidate, trace_to_json
from tlm_core.methods import Method, extra_json, register


def _available() -> tuple[bool, str]:
    return True, ""


def _tune(tasks, target, budget, measurer, workload, seed):
    from tvm.s_tir import Schedule

    cands = [Candidate(t, trace_to_json(Schedule(t.mod).trace), workload, "untuned", extra_json(sketch=-1))
             for t in tasks]
    return cands, {"candidates_per_task": 1, "budget_ignored": budget != 1}


METHOD = register(Method("untuned", "TVM default: each subgraph's PrimFunc built unscheduled (naive loops on CPU); "
                "one candidate per subgraph whatever the budget", True, _available, _tune))
