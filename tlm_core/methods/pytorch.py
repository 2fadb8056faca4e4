"""`pytorch`: the workload run by PyTorch itself, eager and torch.compile (inductor); no subgraph tuning.

Its numbers come from `tlm bench --method pytorch` (see `tlm_core.eval.e2e.bench_pytorch`).
"""

from __future__ import annotations

from tlm_core.methods import Method, register


def _available() -> tuple[bool, str]:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False, "unavailable: torch is not installed"
    return True, "end to end only: no per-subgraph tuning (numbers from `tlm bench --method pytorch`)"


METHOD = register(Method("pytorch", "PyTorch eager and torch.compile (inductor) end-to-end latency of the workload; "
                "no per-subgraph tuning", False, _available))
