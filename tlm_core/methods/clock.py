"""A tuning run's compile time across the calls that built it: a stopped and resumed run reports
the time of every call, not of the last one.

Why: `--resume` keeps what a stopped call measured (records, searched subgraphs) and the next call
does only the rest, so that call's wall time alone understates the method's cost (a resumed
MetaSchedule row of resnext50 read 647 s where 9 of its 33 subgraphs had been searched before).

Each call appends its elapsed seconds to `compile-seconds.jsonl` in the store folder at every
durable step (a record stored, a subgraph's search noted; at most every 5 s) and at its end. A
call's time is its last mark, so a killed call counts up to (within 5 s of) the last thing it kept:
work it lost, and does again on resume, is counted once. The total is the sum over calls.

Work kept in the store from a call before this clock existed has no time on it: the total then
leaves it out, and says so (`partial`). A call learns that once it knows what it kept (`settle`)
and notes it in its marks from then on, so that every later call of the run inherits it: a row's
flag must not fall back to "complete" because a second call came after the unclocked one (gpt2's
untuned row on Zen 4, 2026-12-07, read 6.63 s, unflagged, over a first call that was not clocked).
Earlier calls that never noted it (killed before they knew, or written before the flag existed)
leave the question open, and a call that finds kept work then says "partial": a total may be
flagged as a lower bound when it is complete, never the other way round.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

LEDGER = "compile-seconds.jsonl"


def _marks(folder: str | Path, run: str) -> list[dict]:
    """The marks of `run` noted in `folder`, in order; a torn last line (a writer killed mid-line)
    is skipped."""
    path = Path(folder) / LEDGER
    out = []
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        try:
            mark = json.loads(line)
            if mark["run"] == run:
                out.append({"call": str(mark["call"]), "seconds": float(mark["seconds"]),
                            "unclocked": mark.get("unclocked")})
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
    return out


def calls(folder: str | Path, run: str) -> dict[str, float]:
    """Call id -> its seconds (its last mark), for every call of `run` noted in `folder`."""
    out: dict[str, float] = {}
    for mark in _marks(folder, run):
        out[mark["call"]] = max(out.get(mark["call"], 0.0), mark["seconds"])
    return out


def unclocked_calls(folder: str | Path, run: str) -> dict[str, bool]:
    """Call id -> whether it found work from before the clock, for the calls of `run` that noted it."""
    out: dict[str, bool] = {}
    for mark in _marks(folder, run):
        if mark["unclocked"] is not None:
            out[mark["call"]] = out.get(mark["call"], False) or bool(mark["unclocked"])
    return out


class CompileClock:
    """One tuning call's clock, noted in a store folder beside the earlier calls' of the same `run`
    (what the calls tune: one store may hold several, as demonstration collection's does)."""

    #: Seconds between two marks of one call at most as often: a mark per record of a fast method
    #: would grow the file by a line per second.
    EVERY_S = 5.0

    def __init__(self, folder: str | Path, run: str):
        self.folder = Path(folder)
        self.run = run
        self.earlier = calls(self.folder, run)  # before this call started
        self._earlier_unclocked = unclocked_calls(self.folder, run)
        self.unclocked: bool | None = None  # unknown until `settle`
        self.call = uuid.uuid4().hex[:12]
        self.start = time.perf_counter()
        self._last = float("-inf")

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def settle(self, kept: int) -> None:
        """Note that this call found `kept` units of the run's work in the store (records,
        subgraphs searched) when it started: whether the total leaves time out (`partial`). May be
        called again as more is known; once partial, partial. Marks at once, so that a call killed
        right after still tells the next one."""
        known = self._earlier_unclocked
        found = any(known.values()) or (not known and kept > 0)
        self.unclocked = bool(self.unclocked) or found
        self.mark(force=True)

    @property
    def partial(self) -> bool:
        """Whether the total leaves out the time of work done before the clock (see the module)."""
        if self.unclocked is None:  # never settled: what the earlier calls said, or unknown
            known = self._earlier_unclocked
            return any(known.values()) or (bool(self.earlier) and not known)
        return self.unclocked

    def mark(self, force: bool = False) -> None:
        """Note this call's elapsed seconds (at most every EVERY_S unless `force`)."""
        now = self.elapsed()
        if not force and now - self._last < self.EVERY_S:
            return
        self._last = now
        mark = {"run": self.run, "call": self.call, "seconds": round(now, 2),
                "at": datetime.now(UTC).isoformat(timespec="seconds")}
        if self.unclocked is not None:
            mark["unclocked"] = self.unclocked
        line = json.dumps(mark) + "\n"
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / LEDGER, "a+b") as f:
            f.seek(0, os.SEEK_END)
            if f.tell():  # a torn tail (a killed writer) would glue onto our line: end it first
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    line = "\n" + line
            f.write(line.encode())
            f.flush()
            os.fsync(f.fileno())

    def total(self) -> float:
        """Every earlier call's seconds plus this call's at its last mark (what the ledger keeps, so
        that a later call reads the same total back)."""
        return sum(self.earlier.values()) + max(self._last, 0.0)
