"""The baseline's search log (data/baselines/<table>-<method>/): reading it, extending it, timing it.

The log is MetaSchedule's JSON database (the trials in the order tried) plus search.json, which
accounts for its trials in segments (one subgraph's search each: trials, wall seconds, machine). A
module of its own because the log outlives any one table run: `search` extends it (resumable, over
days and machines), and every table run reads the programs and the search seconds back from it.
A log file that is truncated, corrupted or not a search log is a UserError naming the file and
what to do, never a traceback.
"""

from __future__ import annotations

import gzip
import json
import math
import shutil
import time
import zlib
from pathlib import Path

from benchmarks.reproduce.selection import subgraphs
from benchmarks.tables import TableSpec
from tlm_core.errors import UserError, read_json
from tlm_core.paths import data_dir
from tlm_core.ui import log, progress


def log_dir(spec: TableSpec, cpu: str | None = None) -> Path:
    """The table's shared log (searched over the project's history, on several machines), or with
    `cpu` (LLVM's CPU name) that CPU's own: its trials all searched on it, so its programs were chosen
    by its own timings (a fair baseline for a model measured there)."""
    return data_dir() / "baselines" / (f"{spec.name}-{spec.baseline}" + (f"-{cpu}" if cpu else ""))


def own_cpu(target) -> str:
    """The CPU name a log of the target's own is keyed by (LLVM's -mcpu, e.g. znver4)."""
    return json.loads(target.hardware.to_json())["mcpu"]


def table_log(spec: TableSpec, target, shared: bool = False) -> str | None:
    """The cpu key of the log a table run reads: the target CPU's own log when one was searched
    (`search TABLE --own-cpu`) and `shared` is not asked for, else None (the shared log)."""
    cpu = own_cpu(target)
    return cpu if not shared and (log_dir(spec, cpu) / "search.json").exists() else None


def _restore(path: Path) -> str:
    """What to do about a broken file of a log (all but the working copy are committed)."""
    return f"restore it with `git checkout -- {path}`, or move {path.parent} away to search from scratch"


def _why(err: ValueError) -> str:
    """What is wrong with a line that json.loads refused, in a few words."""
    if isinstance(err, json.JSONDecodeError):
        return f"{err.msg}, column {err.colno}"
    return str(err)  # not text: UnicodeDecodeError


def log_info(spec: TableSpec, cpu: str | None = None) -> dict:
    path = log_dir(spec, cpu) / "search.json"
    if not path.exists():
        return {"trials": 0, "segments": []}
    info = read_json(path, _restore(path))
    if not (isinstance(info.get("trials"), int) and isinstance(info.get("segments"), list)):
        raise UserError(f"{path}: not a search log's search.json, it has no trials and segments ({_restore(path)})")
    return info


#: MetaSchedule's JSONDatabase appends its records to RECORDS in the log's folder, a working copy (not
#: committed); the log shipped in data/ is SHIPPED, that file gzip-compressed (~47x smaller: Table 3's
#: log at 1K trials per subgraph is 73 MB of JSON, 1.6 MB compressed), written at each segment's end.
#: Readers read SHIPPED only, so they see exactly the trials search.json's segments account for.
RECORDS, SHIPPED = "database_tuning_record.json", "database_tuning_record.json.gz"
WORKLOADS = "database_workload.json"  # the log's subgraphs, one a line; a record names its own by index


def _read_gzip(path: Path, mode: str):
    """The whole of a gzip file (text for mode "rt"); one that is truncated or corrupted is a UserError."""
    try:
        with gzip.open(path, mode) as f:
            return f.read()
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as err:  # BadGzipFile is an OSError
        raise UserError(f"{path}: truncated or not gzip: {err} ({_restore(path)})") from None


def _shipped_lines(folder: Path) -> list[tuple[int, str]]:
    """(line number, line) of the shipped log's non-blank lines."""
    path = folder / SHIPPED
    if not path.exists():
        return []
    return [(n, line) for n, line in enumerate(_read_gzip(path, "rt").splitlines(), 1) if line.strip()]


def log_records(folder: Path) -> list[str]:
    """The shipped log's records, one JSON line each, in the order tried ([] when there is none)."""
    return [line for _, line in _shipped_lines(folder)]


def _record(value) -> bool:
    """Whether a parsed line has a search record's shape: [workload index, record]."""
    return (isinstance(value, list) and len(value) == 2 and isinstance(value[0], int)
            and not isinstance(value[0], bool) and value[0] >= 0)


def _entries(path: Path, lines, workloads: int, fix: str) -> list[tuple[int, int, object]]:
    out = []
    for n, line in lines:
        try:
            value = json.loads(line)
        except ValueError as err:
            raise UserError(f"{path}: line {n} is not JSON: {_why(err)} ({fix})") from None
        if not _record(value) or value[0] >= workloads:
            raise UserError(f"{path}: line {n} is not a search record of this log, [index of one of its "
                            f"{workloads} workloads, record] ({fix})")
        out.append((n, value[0], value[1]))
    return out


def log_entries(folder: Path, workloads: int) -> list[tuple[int, int, object]]:
    """The shipped log's records parsed, in the order tried: (line, workload index, record JSON) each.

    `workloads`: how many the log's database_workload.json holds (an index past them is no record of it).
    """
    return _entries(folder / SHIPPED, _shipped_lines(folder), workloads, _restore(folder / SHIPPED))


def log_workloads(folder: Path) -> list:
    """The log's workloads (MetaSchedule's), in the order its records index them."""
    from tvm.s_tir import meta_schedule as ms

    path = folder / WORKLOADS
    if not path.exists():
        raise UserError(f"{path}: no such file; the log's records name their subgraphs by its lines ({_restore(path)})")
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(ms.database.Workload.from_json(json.loads(line)))
        except ValueError as err:
            raise UserError(f"{path}: line {n} is not JSON: {_why(err)} ({_restore(path)})") from None
        except (RuntimeError, TypeError):  # TVM's: not a workload
            raise UserError(f"{path}: line {n} is not a MetaSchedule workload ({_restore(path)})") from None
    return out


def _check_lines(work: Path, data: bytes, first: int) -> None:
    """The lines of the working copy about to be shipped are search records: a torn or foreign line
    is a UserError before it reaches the shipped log."""
    fix = f"remove that line, or move {work.name} away to go on from the shipped log"
    for n, line in enumerate(data.splitlines(), first):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as err:
            raise UserError(f"{work}: line {n} is not JSON: {_why(err)} ({fix})") from None
        if not _record(value):
            raise UserError(f"{work}: line {n} is not a search record, [workload index, record] ({fix})")


def working_log(folder: Path) -> None:
    """Make RECORDS the shipped log or a continuation of it (trials of a search killed mid-subgraph).

    A fresh clone, or a shipped log that went on elsewhere (pulled), replaces a working copy it
    extends. A working copy ahead of the shipped log (its search was killed before its segment was
    written) is shipped as it is: those trials were measured, though no segment times them. One that
    disagrees with the shipped log is a user error rather than a silent loss of either's trials, and
    so is one whose new lines are not search records (a torn line).
    """
    shipped, work = folder / SHIPPED, folder / RECORDS
    if not shipped.exists():
        if work.exists():
            _check_lines(work, work.read_bytes(), 1)
            ship_log(folder)
        return
    ours = _read_gzip(shipped, "rb")
    theirs = work.read_bytes() if work.exists() else b""
    if theirs.startswith(ours):
        if len(theirs) > len(ours):
            _check_lines(work, theirs[len(ours):], ours.count(b"\n") + 1)
            ship_log(folder)
        return
    if not ours.startswith(theirs):
        raise UserError(f"{work} is not a continuation of {shipped} (each holds trials the other lacks); "
                        f"move {work.name} away to go on from the shipped log")
    tmp = work.with_suffix(".tmp")
    tmp.write_bytes(ours)
    tmp.replace(work)


def ship_log(folder: Path) -> None:
    """Compress the working copy into the shipped log: deterministic (no timestamp), replaced atomically."""
    tmp = folder / (SHIPPED + ".tmp")
    with (folder / RECORDS).open("rb") as src, tmp.open("wb") as raw, \
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as out:
        shutil.copyfileobj(src, out, 1 << 20)
    tmp.replace(folder / SHIPPED)


def log_machines(info: dict, hardware) -> str | None:
    """None when every segment of the log was searched on this `hardware`, else where its trials were, in words.

    A log searched on another CPU still gives programs to re-measure here, but its choice of them (by
    that machine's timings) and its search seconds (the claims' baseline time) are that machine's. A log
    searched partly here and partly elsewhere (Table 2's and 3's, to 1K) is both: each part says which
    trials.
    """
    from tlm_core.ir.target import describe, other_than

    parts: dict[str, dict] = {}  # machine in words -> what it searched
    for seg in info["segments"]:
        other = other_than([seg.get("provenance", {}).get("target")], hardware)
        part = parts.setdefault(other[0] if other else "this machine", {"first": 0, "more": 0, "of": set()})
        if "hash" in seg:  # one subgraph's segment: the trials it committed
            part["more"] += seg.get("trials", 0)
            part["of"].add(seg["hash"])
        else:  # a segment that searched every subgraph at once, to its `trials`
            part["first"] = max(part["first"], seg.get("trials", 0))
    if set(parts) <= {"this machine"}:
        return None

    def what(part: dict) -> str:
        return " and ".join(([f"the first {part['first']} trials of every subgraph"] if part["first"] else [])
                            + ([f"{part['more']:,} trials of {len(part['of'])} subgraphs"] if part["of"] else []))
    other, here = sorted(m for m in parts if m != "this machine"), describe(json.loads(hardware.to_json()))
    if "this machine" not in parts:
        return (f"searched on {', '.join(other)}; this machine is {here}: the log's programs are "
                "re-measured here, but which ones (chosen by that machine's timings) and the search seconds (the "
                "claims' baseline time) are that machine's")
    return (f"searched partly on {', '.join(f'{m} ({what(parts[m])})' for m in other)}, the rest on this machine, "
            f"{here} ({what(parts['this machine'])}); every program is re-measured here, but which ones "
            "the log offers were chosen by the timings of the machine that searched them, and each part's search "
            "seconds (the claims' baseline time) are its machine's")


#: MetaSchedule keeps searching a subgraph whose space it has exhausted (an element-wise subgraph with
#: one distinct program is asked for 63 more, a population of 2048 at a time, and commits nothing): a
#: search that commits no trial for this long (from its start or its last commit) is stopped, timed to
#: its last committed trial, and the subgraph marked exhausted.
STALL_SECONDS = 300


def log_counts(folder: Path) -> dict[str, int]:
    """Subgraph hash -> trials its log holds (records of workloads the log has not seen count 0)."""
    from tlm_core.ir.tasks import structural_hash

    lines = _shipped_lines(folder)
    if not lines:
        return {}
    hashes = [structural_hash(w.mod) for w in log_workloads(folder)]
    counts: dict[str, int] = {}
    for _, index, _ in _entries(folder / SHIPPED, lines, len(hashes), _restore(folder / SHIPPED)):
        h = hashes[index]
        counts[h] = counts.get(h, 0) + 1
    return counts


def reached(info: dict, counts: dict[str, int]) -> tuple[dict[str, int], set[str]]:
    """Per subgraph: the trials its searches were asked for and reached, and the exhausted ones.

    Logs searched all subgraphs at once before per-subgraph entries existed: every subgraph reached the
    log's trials, and one holding fewer ended short because MetaSchedule found no new program for it.
    """
    if "reached" in info:
        return dict(info["reached"]), set(info.get("exhausted", []))
    n = info.get("trials", 0)
    return ({h: n for h in counts}, {h for h, c in counts.items() if c < n}) if n else ({}, set())


def search(spec: TableSpec, trials: int, target, seed: int = 0, rpc=None, cpu: str | None = None) -> dict:
    """Extend the table's baseline log to `trials` per subgraph, one subgraph at a time.

    MetaSchedule continues from the log (its database), so the search resumes wherever it stopped: a
    subgraph's records are appended as they are measured, and each subgraph's segment (trials, wall
    seconds, machine) is written when it ends, also when stopped (Ctrl-C, SIGTERM: the log stays valid,
    and the next `search` goes on from the trials it holds). A subgraph whose space ran out is not
    searched again. The log's `trials` is what every subgraph reached: the tables' columns up to it.
    With `rpc` (a metaschedule.Tracker) the trials run on the tracker's servers, several at a time.
    With `cpu` (`own_cpu(target)`) it extends that CPU's own log instead of the shared one.
    Each subgraph's search is a forked child: call this from a process whose OpenMP pool has not
    started (the CLI's), as a fork of a running libgomp pool crashes in the child's XGBoost.
    """
    import multiprocessing
    import os
    import signal

    from tlm_core.provenance import provenance

    folder = log_dir(spec, cpu)
    folder.mkdir(parents=True, exist_ok=True)
    working_log(folder)
    records = folder / RECORDS
    entries = subgraphs(spec)
    tasks, workload_of = [t for _, t in entries], {t.hash: w for w, t in entries}
    hashes = [t.hash for t in tasks]
    info = log_info(spec, cpu)
    counts = log_counts(folder)
    done, exhausted = reached(info, counts)
    todo = [t for t in tasks if done.get(t.hash, 0) < trials and t.hash not in exhausted
            and counts.get(t.hash, 0) < trials]
    for t in tasks:  # an exhausted space reaches any number of trials (and a full one its own)
        if t not in todo:
            done[t.hash] = max(done.get(t.hash, 0), trials)
    if not todo:
        return _write_log_info(folder, spec, info, hashes, done, exhausted)
    asked = {t.hash: trials - counts.get(t.hash, 0) for t in todo}
    runner = rpc.describe(rpc.servers()) if rpc else "local"
    log(f"{spec.baseline}: searching {sum(asked.values())} more trials on {len(todo)} of {len(tasks)} subgraphs "
        f"(to {trials} each, one at a time, resumable) into {folder}")

    def stop(*_):
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGTERM, stop)  # a stopped search still writes its segment
    try:
        with progress(desc=f"{spec.baseline}: search (trials committed)", total=sum(asked.values()),
                      unit="trial") as bar:
            for i, t in enumerate(todo):
                offset = sum(asked[u.hash] for u in todo[:i])
                lines = sum(1 for _ in records.open()) if records.exists() else 0
                start = last = time.time()
                # A child process in its own process group: a stalled search is stopped with its worker pools.
                child = multiprocessing.get_context("fork").Process(
                    target=search_child,
                    args=(spec.baseline, [t], target, asked[t.hash], str(folder), seed + len(info["segments"]), rpc))
                child.start()
                how, n = "completed", 0
                try:
                    while child.is_alive():
                        child.join(10)
                        now = (sum(1 for _ in records.open()) if records.exists() else 0) - lines
                        if now > n:
                            n, last = now, time.time()
                            bar.n = offset + n
                            bar.refresh()
                        if time.time() - last > STALL_SECONDS:
                            os.killpg(child.pid, signal.SIGKILL)
                            child.join()
                            how = f"stopped: no trial committed for {STALL_SECONDS} s; timed to its last trial"
                except KeyboardInterrupt:
                    os.killpg(child.pid, signal.SIGKILL)
                    child.join()
                    how = "interrupted; timed to its last committed trial"
                if how == "completed" and child.exitcode != 0:
                    raise UserError(f"the {spec.baseline} search of {t.name} failed (exit {child.exitcode}); "
                                    "see the messages above")
                new = (sum(1 for _ in records.open()) if records.exists() else 0) - lines
                end = time.time() if how == "completed" else (records.stat().st_mtime if new else start)
                if how.startswith("stopped") or (how == "completed" and new < asked[t.hash]):
                    exhausted.add(t.hash)  # MetaSchedule found no new program: its space ran out
                if not how.startswith("interrupted"):
                    done[t.hash] = trials
                if records.exists():
                    ship_log(folder)  # before search.json: it never counts trials the shipped log lacks
                info = _add_segment(spec, info, workload_of[t.hash], t, trials, asked[t.hash], new,
                                    round(end - start, 1), provenance(target, seed=seed), how, runner)
                info = _write_log_info(folder, spec, info, hashes, done, exhausted)
                if how.startswith("interrupted"):
                    raise KeyboardInterrupt
    finally:
        signal.signal(signal.SIGTERM, previous)
    return info


def search_pace(info: dict, counts: dict[str, int]) -> dict[str, list[tuple[int, float]]]:
    """Per subgraph, its trials in the order searched as (trials, seconds per trial) pieces.

    A segment of one subgraph has its own pace; a segment that searched all subgraphs at once (the logs
    before per-subgraph search) shares its seconds over the trials it committed, which are those the
    per-subgraph segments did not. A log continued on another machine is timed piece by piece.
    """
    own = [s for s in info["segments"] if "hash" in s]
    shared = [s for s in info["segments"] if "hash" not in s]
    later = {h: sum(s["trials"] for s in own if s["hash"] == h) for h in counts}
    first = {h: max(n - later[h], 0) for h, n in counts.items()}
    shared_pace = sum(s["seconds"] for s in shared) / max(sum(first.values()), 1)
    return {h: [(first[h], shared_pace)] + [(s["trials"], s["seconds"] / s["trials"])
                                           for s in own if s["hash"] == h and s["trials"]] for h in counts}


def seconds_to(pace: list[tuple[int, float]], trials: int) -> float:
    """Wall seconds a subgraph's search took to its first `trials` trials."""
    total, left = 0.0, trials
    for n, per in pace:
        total += min(left, n) * per
        left -= min(left, n)
    return total


def search_child(name, tasks, target, budget, folder, seed, rpc=None) -> None:
    """The forked child of `search`: one subgraph's MetaSchedule search, in a process group of its own."""
    import os

    from tlm_core.methods import metaschedule

    os.setpgrp()
    metaschedule.search(name, metaschedule.CONFIGS[name], tasks, target, budget, folder, seed, rpc)


def _add_segment(spec: TableSpec, info: dict, workload: str, task, trials: int, asked: int, new: int, seconds: float,
                 prov: dict, how: str, runner: str = "local") -> dict:
    """A finished (or stopped) search of one subgraph: its wall time per trial is the claims' baseline time."""
    import os

    from tlm_core.methods import metaschedule

    cfg = metaschedule.CONFIGS[spec.baseline]
    # The load average at its end says whether it ran alone (about 2 on 2 cores: the search's own
    # builder and runner) or beside other work, which inflates its seconds per trial.
    seg = {"workload": workload, "subgraph": task.name, "hash": task.hash, "to": trials, "asked": asked, "trials": new,
           "seconds": seconds, "how": how, "runner": runner, "load_average": [round(x, 2) for x in os.getloadavg()],
           "search": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__}, "provenance": prov}
    return {**info, "segments": [*info["segments"], seg]}


def _write_log_info(folder: Path, spec: TableSpec, info: dict, hashes: list[str], done: dict[str, int], exhausted: set[str]) -> dict:
    """search.json: segments, per subgraph (`hashes`, the table's) the trials reached, and the log's trials."""
    info = {"method": spec.baseline, "trials": min(done.get(h, 0) for h in hashes), "subgraphs": len(hashes),
            "reached": {h: done.get(h, 0) for h in hashes}, "exhausted": sorted(exhausted & set(hashes)),
            "segments": info["segments"]}
    (folder / "search.json").write_text(json.dumps(info, indent=1))
    return info


def trials_in_order(spec: TableSpec, cpu: str | None = None) -> dict[str, list[tuple[str, float]]]:
    """Task hash -> [(trace JSON, mean seconds by the search's runner)] in the order tried."""
    from tvm.s_tir import meta_schedule as ms

    from tlm_core.ir.tasks import structural_hash
    from tlm_core.measure.harness import trace_to_json

    folder = log_dir(spec, cpu)
    workloads = log_workloads(folder)
    hashes = [structural_hash(w.mod) for w in workloads]
    out: dict[str, list] = {}
    for n, index, obj in log_entries(folder, len(workloads)):
        try:
            rec = ms.database.TuningRecord.from_json(obj, workloads[index])
        except (RuntimeError, TypeError, ValueError):  # TVM's: not a tuning record
            raise UserError(f"{folder / SHIPPED}: line {n} is not a MetaSchedule tuning record "
                            f"({_restore(folder / SHIPPED)})") from None
        secs = [float(x) for x in rec.run_secs] if rec.run_secs is not None else []
        mean = sum(secs) / len(secs) if secs else math.inf
        out.setdefault(hashes[index], []).append((trace_to_json(rec.trace), mean))
    return out
