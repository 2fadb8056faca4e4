"""Decision domains: the valid values of each decision space, in the current schedule state.

The generator masks the model's logits with these; random sampling draws from them.
"""

from __future__ import annotations

from functools import cache


@cache
def tile_domain(extent: int, n: int, max_innermost: int) -> list[tuple[int, ...]]:
    """Every n-tuple of positive factors with product `extent` and innermost <= max_innermost."""
    out: list[tuple[int, ...]] = []

    def rec(prefix: tuple[int, ...], rest: int) -> None:
        if len(prefix) == n - 1:
            if rest <= max_innermost:
                out.append(prefix + (rest,))
            return
        for f in _divisors(rest):
            rec(prefix + (f,), rest // f)

    rec((), extent)
    return out


@cache
def _divisors(value: int) -> tuple[int, ...]:
    small = [d for d in range(1, int(value ** 0.5) + 1) if value % d == 0]
    return tuple(sorted(set(small + [value // d for d in small])))


def categorical_domain(candidates: tuple[int, ...]) -> list[tuple[int]]:
    """Indices of the candidates."""
    return [(i,) for i in range(len(candidates))]


def location_domain(sch, block_rv) -> list[tuple[int]]:
    """Valid compute locations of a block here: -2 inline, -1 root, or a loop index.

    TVM snaps an invalid location to a valid one: a value is valid when it comes back unchanged.
    """
    out = []
    for loc in range(-2, _count_loops(sch.mod["main"].body)):
        trial = sch.copy()
        try:
            trial.sample_compute_location(block_rv, decision=loc)
        except Exception:  # noqa: BLE001 - TVM raises a generic error for an impossible location
            continue
        if int(trial.trace.decisions[trial.trace.insts[-1]]) == loc:
            out.append((loc,))
    return out


def _count_loops(stmt) -> int:
    """Loops in a statement: an upper bound on compute-location indices."""
    name = type(stmt).__name__
    if name == "SeqStmt":
        return sum(_count_loops(s) for s in stmt.seq)
    if name == "SBlockRealize":
        return _count_loops(stmt.block)
    if name == "IfThenElse":
        return _count_loops(stmt.then_case) + (_count_loops(stmt.else_case) if stmt.else_case else 0)
    body = getattr(stmt, "body", None)
    return (name == "For") + (_count_loops(body) if body is not None else 0)


def extent_domain(kind: str, limit: int, hardware) -> list[tuple[int]]:
    """Parallel / vectorize extents: powers of two up to the sketch's limit (1 = off)."""
    out, v = [], 1
    while v <= limit:
        out.append((v,))
        v *= 2
    if (limit,) not in out:
        out.append((limit,))
    return out
