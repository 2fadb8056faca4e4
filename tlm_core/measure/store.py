"""Append-only, content-keyed record store: one JSON line per measured candidate.

Every record is written with one `write` of a whole line under an exclusive lock, then fsync'd, so
a process killed at any point (kill -9 included) loses at most the line being written; a torn last
line is dropped on the next open. Records are never rewritten: what was measured is never lost.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path

RECORDS = "records.jsonl"


class RecordStore:
    """Measured records keyed by content (task, schedule, target, versions, measurement settings)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / RECORDS
        self._records: dict[str, dict] = {}
        self._offset = 0
        self.refresh()

    def refresh(self) -> None:
        """Read lines appended since the last read (by this or another process)."""
        if not self.path.exists():
            return
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            data = f.read()
        end = data.rfind(b"\n") + 1  # a line without its newline is still being written, or torn
        for line in data[:end].splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn line followed by later appends: skip it, keep the rest
            self._records.setdefault(rec["key"], rec)
        self._offset += end

    def __contains__(self, key: str) -> bool:
        return key in self._records

    def get(self, key: str) -> dict | None:
        return self._records.get(key)

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[dict]:
        return iter(self._records.values())

    def add(self, record: dict) -> None:
        """Append one record durably (fsync) unless its key is already stored."""
        line = (json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self.refresh()
            if record["key"] in self._records:
                return
            size = os.fstat(fd).st_size
            if size:  # a torn tail (killed writer) would glue onto our line: end it first
                with open(self.path, "rb") as f:
                    f.seek(size - 1)
                    if f.read(1) != b"\n":
                        line = b"\n" + line
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)  # closing releases the lock
        self._records[record["key"]] = record
