"""The sums and bests every table and figure reports, written once so that they cannot drift apart.

`weighted_sum`: a model's (or a table's) latency is the sum of weight x latency over every one of its
subgraphs, weight = occurrences in the model. A subgraph without a latency makes the sum None: a
sum over part of the model would read as the whole, and a method's failure would be summed away.

`best_ok_per_task`: per task, the fastest record that measured ok. It lives beside the record store
(`tlm_core.measure.store`), below the methods that use it too; it is re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterable

from tlm_core.measure.store import best_ok_per_task

__all__ = ["best_ok_per_task", "weighted_sum"]


def weighted_sum(weights_and_latencies: Iterable[tuple[float, float | None]]) -> float | None:
    """Sum of weight x latency over every (weight, latency) pair; None when any latency is None."""
    pairs = list(weights_and_latencies)
    if any(lat is None for _, lat in pairs):
        return None
    return sum(w * lat for w, lat in pairs)
