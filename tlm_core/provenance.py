"""Where a number came from: commit, package versions, CPU, target, date. Saved beside every result."""

from __future__ import annotations

import platform
import subprocess
from dataclasses import asdict
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from tlm_core.paths import REPO_ROOT
from tlm_core.tvm_env import versions


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], check=False, cwd=REPO_ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


@cache
def code_state() -> tuple[str, bool]:
    """(commit, dirty) of the code this process runs: read at the first call and kept, so that a run
    which commits happen beside (hours of measuring) names the commit it started from, not a later
    one. Long drivers call it when they start."""
    return _git("rev-parse", "HEAD") or "unknown", bool(_git("status", "--porcelain", "--untracked-files=no"))


def cpu_model() -> str:
    """The CPU's marketing name (from /proc/cpuinfo on Linux)."""
    info = Path("/proc/cpuinfo")
    if info.exists():
        for line in info.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def provenance(target=None, **extra) -> dict:
    """The provenance sidecar of a result: add scale, seeds and settings as keyword arguments."""
    return {
        "git_commit": code_state()[0],
        "git_dirty": code_state()[1],
        "versions": versions(),
        "cpu": cpu_model(),
        "machine": platform.machine(),
        "target": None if target is None else {**asdict(target.hardware), "tvm": target.hardware.tvm_target_dict()},
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        **extra,
    }


def checkpoint_identity(folder) -> dict:
    """Which model made a result: its folder, weights digest, and what its card says it was trained on.

    A path alone (data/model) names a different model after every re-ship; the digest does not.
    """
    import hashlib
    import json

    folder = Path(folder)
    weights = folder / "model.safetensors"
    out = {"path": str(folder), "sha256": hashlib.sha256(weights.read_bytes()).hexdigest()[:16]
           if weights.exists() else None}
    facts = folder / "training.json"
    if facts.exists():
        f = json.loads(facts.read_text())
        out.update(measured_programs=f.get("measured_programs"),
                   sft_rounds=[r.get("model") for r in f.get("sft_rounds", [])],
                   shipped_from=f.get("model_dir"))
    return out

