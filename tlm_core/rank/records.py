"""The ranker's data: measured demonstration records as (feature matrix, query group, latency).

A query group is one subgraph on one CPU (task_hash, target): latencies of two machines are not
comparable, and the ranker only ever orders candidates of one subgraph on one machine. Records
measured on older inputs (`stale`) are left out; failed records stay in (the ranker should learn to
avoid a program that times out) with the label of the group's slowest program.

Per-store features need each record's schedule rebuilt (`features.rebuild`, ~13 ms) and extracted
(~8 ms): about 20 minutes for the 57k records on one core. They are cached per group under
.cache/rank/rows-v<FEATURE_VERSION>/, by record key, so a run that stops (a time limit) resumes.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tlm_core.rank import features as F
from tlm_core.ui import log, progress


def usable(df):
    """The records a ranker learns from: measured on current inputs, with a program."""
    from tlm_core.train.demonstrations import current

    df = current(df)
    return df[df.decisions.notna() & df.prompt.notna()].reset_index(drop=True)


def group_keys(df) -> list[tuple[str, str]]:
    """(target JSON, task hash) of every query group, sorted."""
    return sorted(set(zip(df.target, df.task_hash)))


def _cache_file(folder: Path, target_json: str, task_hash: str) -> Path:
    return folder / f"{hashlib.sha256(target_json.encode()).hexdigest()[:12]}-{task_hash}.npz"


def rows_folder() -> Path:
    from tlm_core.paths import cache_dir

    return cache_dir() / "rank" / f"rows-v{F.FEATURE_VERSION}"


def _read(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        return {}
    z = np.load(path)
    keys, offsets, rows = z["keys"], z["offsets"], z["rows"]
    return {str(k): rows[offsets[i]:offsets[i + 1]] for i, k in enumerate(keys)}


def _write(path: Path, done: dict[str, np.ndarray]) -> None:
    keys = sorted(done)
    offsets = np.cumsum([0] + [len(done[k]) for k in keys])
    rows = np.concatenate([done[k] for k in keys]) if keys else np.zeros((0, F.STORE_WIDTH), np.float32)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, keys=np.array(keys), offsets=offsets, rows=rows.astype(np.float32))
    tmp.replace(path)


def tasks_by_hash() -> dict:
    """Task hash -> Task of every training subgraph (extraction cached on disk; the hash does not
    depend on the CPU, so the host target finds the tasks of records measured elsewhere)."""
    from tlm_core.ir.target import resolve_target
    from tlm_core.train.demonstrations import training_entries

    return {t.hash: t for _, t in training_entries(resolve_target("host"))}


def store_rows_of(df, tasks: dict, folder: Path | None = None, seconds: float | None = None
                  ) -> tuple[dict[str, np.ndarray], bool]:
    """(record key -> per-store rows, complete): every record's per-store features, from the cache or
    computed (and cached). `seconds`: stop starting new groups after that long (complete False then).
    A record whose program no longer rebuilds gets no rows (and is left out of the table)."""
    from tlm_core.ir.space import design_space
    from tlm_core.language.sentence import decode
    from tlm_core.train.demonstrations import _target_of

    folder = folder or rows_folder()
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    out: dict[str, np.ndarray] = {}
    complete = True
    groups = df.groupby(["target", "task_hash"], sort=True)
    for (target_json, task_hash), g in progress(groups, "ranker features", total=groups.ngroups, unit="group"):
        path = _cache_file(folder, target_json, task_hash)
        done = _read(path)
        todo = g[~g.key.isin(done)]
        if len(todo):
            if seconds is not None and time.perf_counter() - start > seconds:
                complete = False
                continue
            task, target = tasks[task_hash], _target_of(target_json)
            space = design_space(task, target)
            scheds, keys, failed = [], [], []
            for row in todo.itertuples():
                sch = F.rebuild(space, decode(row.prompt.split() + row.decisions.split()))
                (failed if sch is None else keys).append(row.key)
                if sch is not None:
                    scheds.append(sch)
            for k, r in zip(keys, F.store_rows(task, target, scheds)):
                done[k] = r
            for k in failed:  # remembered as "no rows" (an empty matrix) so it is not retried
                done[k] = np.zeros((0, F.STORE_WIDTH), np.float32)
            _write(path, done)
        out.update(done)
    return out, complete


@dataclass
class Table:
    """Records as a learning problem, sorted by query group."""

    X: np.ndarray  # (n, features.width())
    group: np.ndarray  # (n,) group index (0..G-1), non-decreasing
    latency: np.ndarray  # (n,) seconds; inf for a failed record
    keys: np.ndarray  # (n,) record keys
    group_ids: list  # G (target JSON, task hash)
    validation: np.ndarray  # (n,) bool: the record's subgraph is in the SFT hold-out
    method: np.ndarray  # (n,) what made the program: "random" (round 0) or "tlm" (a model's generation)

    def sizes(self) -> np.ndarray:
        return np.bincount(self.group, minlength=len(self.group_ids))

    def subset(self, mask: np.ndarray) -> Table:
        keep = np.flatnonzero(mask)
        old = self.group[keep]
        uniq, new = np.unique(old, return_inverse=True)
        return Table(self.X[keep], new.astype(np.int64), self.latency[keep], self.keys[keep],
                     [self.group_ids[i] for i in uniq], self.validation[keep], self.method[keep])


def table(df, tasks: dict, rows: dict[str, np.ndarray] | None) -> Table:
    """The feature table of the records that have store rows (records sorted by group, then key).

    rows None: no per-store features (that block all zeros), every record kept: for rankers that do
    not read the stores block, which then need no TVM replay at all."""
    from tlm_core.language.sentence import decode
    from tlm_core.measure.harness import OK
    from tlm_core.train.demonstrations import _target_of

    if rows is not None:
        df = df[df.key.map(lambda k: k in rows and len(rows[k]) > 0)]
    df = df.sort_values(["target", "task_hash", "key"], kind="stable").reset_index(drop=True)
    X = np.empty((len(df), F.width()), dtype=np.float32)
    ids, group = [], np.empty(len(df), dtype=np.int64)
    at, empty = 0, np.zeros((0, F.STORE_WIDTH), np.float32)
    for (target_json, task_hash), g in df.groupby(["target", "task_hash"], sort=True):
        hardware = _target_of(target_json).hardware
        programs = [decode(p.split() + d.split()) for p, d in zip(g.prompt, g.decisions)]
        X[at:at + len(g)] = F.assemble(tasks[task_hash], hardware, programs, [empty] * len(g) if rows is None else [rows[k] for k in g.key])
        group[at:at + len(g)] = len(ids)
        ids.append((target_json, task_hash))
        at += len(g)
    latency = np.where(df.status == OK, df.latency_s.astype(float), np.inf)
    return Table(X, group, latency, df.key.to_numpy(), ids, df.validation.to_numpy(bool),
                 df.method.to_numpy().astype(str))


def describe_groups(t: Table) -> dict:
    """Counts for a card: records, groups, subgraphs, per CPU."""
    cpus: dict[str, int] = {}
    for target_json, _ in t.group_ids:
        mcpu = json.loads(target_json)["mcpu"]
        cpus[mcpu] = cpus.get(mcpu, 0) + 1
    return {"records": int(len(t.latency)), "groups": len(t.group_ids),
            "subgraphs": len({h for _, h in t.group_ids}), "failed_records": int(np.isinf(t.latency).sum()),
            "groups_per_cpu": dict(sorted(cpus.items()))}


def log_counts(t: Table, what: str) -> None:
    log(f"{what}: {describe_groups(t)}")
