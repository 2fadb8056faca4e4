"""Append-only, content-keyed record store: one JSON line per measured candidate.

Every record is written with one `write` of a whole line under an exclusive lock, then fsync'd, so
a process killed at any point (kill -9 included) loses at most the line being written; a torn last
line is dropped on the next open. Records are never rewritten: what was measured is never lost.

A finished store may be sealed (`seal`): its records move into `records.jsonl.gz`, read-only, which
the store reads before the plain file (appends go on in the plain file). A record store of a whole
model's tuning is tens of MB of JSON, mostly schedule traces; gzip makes it a tenth of that, which
is what lets measured stores ship in the repository.

A line that is not a record (torn by a killed writer, then followed by later appends; or a file that
is not a record store) is skipped and counted, and a warning says how many; a non-empty file of
which no line is a record is not a record store, and opening it is a UserError.
"""

from __future__ import annotations

import fcntl
import gzip
import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from tlm_core.errors import UserError
from tlm_core.ui import log

RECORDS = "records.jsonl"
#: The sealed records of a store (`seal`), read before RECORDS.
ARCHIVE = RECORDS + ".gz"

#: Unreadable lines already reported by this process, per store file (each count is said once).
_WARNED: dict[Path, int] = {}


class RecordStore:
    """Measured records keyed by content (task, schedule, target, versions, measurement settings)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise UserError(f"{self.folder}: a file, not a record store folder (give a folder: new, or one "
                            f"holding the {RECORDS} a `tlm` command wrote)") from None
        self.path = self.folder / RECORDS
        if self.path.is_dir():
            raise UserError(f"{self.path}: a folder, not the store's file of records (move it away, or give "
                            "another record store folder)")
        self._records: dict[str, dict] = {}
        self._offset = 0
        self._unreadable = 0
        if (self.folder / ARCHIVE).exists():
            try:
                with gzip.open(self.folder / ARCHIVE, "rb") as f:
                    self._read(f.read())
            except (OSError, EOFError):
                raise UserError(f"{self.folder / ARCHIVE}: not a gzip file of records (corrupt or truncated): "
                                "move it away, or give another record store folder") from None
        self.refresh()

    def refresh(self) -> None:
        """Read lines appended since the last read (by this or another process)."""
        if not self.path.exists():
            return
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            data = f.read()
        self._offset += self._read(data)

    def _read(self, data: bytes) -> int:
        """Take the whole lines of `data`; returns how many bytes they span."""
        end = data.rfind(b"\n") + 1  # a line without its newline is still being written, or torn
        for line in data[:end].splitlines():
            try:
                rec = json.loads(line)
            except ValueError:  # not JSON, or not UTF-8
                rec = None
            if not isinstance(rec, dict) or not isinstance(rec.get("key"), str):
                # A torn line followed by later appends (harmless: skip it, keep the rest), or not a record.
                self._unreadable += bool(line.strip())
                continue
            self._records.setdefault(rec["key"], rec)
        self._check()
        return end

    def _check(self) -> None:
        if self._unreadable and not self._records:
            raise UserError(f"{self.path}: none of its {self._unreadable} lines is a record (not a record store "
                            "a `tlm` command wrote, or corrupt): move it away, or give another record store folder")
        if self._unreadable > _WARNED.get(self.path, 0):
            _WARNED[self.path] = self._unreadable
            log(f"warning: {self.path}: skipped {self._unreadable} unreadable line(s) (torn by a killed writer, or "
                f"not records); read {len(self._records)} records")

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


#: A record's status when its program built, checked out and ran (`tlm_core.measure.harness.OK`).
OK = "ok"


def best_ok_per_task(items: Iterable, record: Callable | None = None, task: Callable | None = None) -> dict:
    """Task hash -> the item whose record is ok and fastest (the first of equally fast ones); a task
    without an ok record is absent.

    Items are records (`task_hash`, `status`, `latency_s`) unless `record` (item -> its record, or None
    when it was not measured) and `task` (item -> its task hash) say otherwise, e.g. for candidates.
    """
    best: dict = {}
    fastest: dict[str, float] = {}
    for item in items:
        rec = item if record is None else record(item)
        if not rec or rec.get("status") != OK or rec.get("latency_s") is None:
            continue
        h = rec["task_hash"] if task is None else task(item)
        if h not in best or rec["latency_s"] < fastest[h]:
            best[h], fastest[h] = item, rec["latency_s"]
    return best


def is_store(folder: str | Path) -> bool:
    """Whether a folder holds a record store's records (plain or sealed)."""
    return (Path(folder) / RECORDS).is_file() or (Path(folder) / ARCHIVE).is_file()


def seal(folder: str | Path, compress_over: int = 1 << 20) -> dict:
    """Move a finished store's records into its gzip archive (merged with any earlier one), and gzip
    every other file of the folder over `compress_over` bytes (MetaSchedule's search database).

    Nothing is lost: the archive is written whole beside, then moved over the old one, before the
    plain file is removed; reading the store gives the same records before and after. Not for a
    store another process is still writing to.
    """
    folder = Path(folder)
    store = RecordStore(folder)
    before = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    if store.path.exists():
        tmp = folder / (ARCHIVE + ".tmp")
        with gzip.open(tmp, "wb", compresslevel=9) as f:
            for rec in store:
                f.write((json.dumps(rec, sort_keys=True, separators=(",", ":")) + "\n").encode())
        os.replace(tmp, folder / ARCHIVE)
        store.path.unlink()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.suffix != ".gz" and p.stat().st_size > compress_over:
            with open(p, "rb") as src, gzip.open(p.with_name(p.name + ".gz.tmp"), "wb", compresslevel=9) as dst:
                while chunk := src.read(1 << 24):
                    dst.write(chunk)
            os.replace(p.with_name(p.name + ".gz.tmp"), p.with_name(p.name + ".gz"))
            p.unlink()
    after = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    return {"records": len(store), "bytes_before": before, "bytes_after": after}
