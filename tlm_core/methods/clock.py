"""A tuning run's compile time across the calls that built it: a stopped and resumed run reports
the time of every call, not of the last one.

Why: `--resume` keeps what a stopped call measured (records, searched subgraphs) and the next call
does only the rest, so that call's wall time alone understates the method's cost (a resumed
MetaSchedule row of resnext50 read 647 s where 9 of its 33 subgraphs had been searched before).

Each call appends its elapsed seconds to `compile-seconds.jsonl` in the store folder at every
durable step (a record stored, a subgraph's search noted; at most every 5 s) and at its end. A
call's time is its last mark, so a killed call counts up to (within 5 s of) the last thing it kept:
work it lost, and does again on resume, is counted once. The total is the sum over calls.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

LEDGER = "compile-seconds.jsonl"


def calls(folder: str | Path, run: str) -> dict[str, float]:
    """Call id -> its seconds (its last mark), for every call of `run` noted in `folder`. A torn
    last line (a writer killed mid-line) is skipped."""
    path = Path(folder) / LEDGER
    out: dict[str, float] = {}
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        try:
            mark = json.loads(line)
            if mark["run"] == run:
                out[mark["call"]] = max(out.get(mark["call"], 0.0), float(mark["seconds"]))
        except (ValueError, KeyError, TypeError):
            continue
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
        self.call = uuid.uuid4().hex[:12]
        self.start = time.perf_counter()
        self._last = float("-inf")

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def mark(self, force: bool = False) -> None:
        """Note this call's elapsed seconds (at most every EVERY_S unless `force`)."""
        now = self.elapsed()
        if not force and now - self._last < self.EVERY_S:
            return
        self._last = now
        line = json.dumps({"run": self.run, "call": self.call, "seconds": round(now, 2),
                           "at": datetime.now(UTC).isoformat(timespec="seconds")}) + "\n"
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
