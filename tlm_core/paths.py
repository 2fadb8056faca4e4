"""Where the project keeps shipped data and on-disk caches."""

from __future__ import annotations

import os
from pathlib import Path

#: The source checkout (holds data/, results/, figures/) when the package runs from one.
REPO_ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """Shipped data: `data/` of the checkout."""
    return REPO_ROOT / "data"


def cache_dir() -> Path:
    """Writable cache root: $TLM_CACHE, else `.cache/` in the checkout, else ~/.cache/tlm."""
    if "TLM_CACHE" in os.environ:
        root = Path(os.environ["TLM_CACHE"])
    elif (REPO_ROOT / "pyproject.toml").exists():
        root = REPO_ROOT / ".cache"
    else:
        root = Path.home() / ".cache" / "tlm"
    root.mkdir(parents=True, exist_ok=True)
    return root
