"""What users see: progress bars and logs on stderr, one JSON document on stdout."""

from __future__ import annotations

import json
import os
import sys


def progress(iterable=None, desc: str = "", total: int | None = None, unit: str = "it", **kw):
    """A tqdm progress bar on stderr (TLM_PROGRESS=0 turns bars off); kw go to tqdm."""
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, total=total, unit=unit, file=sys.stderr, dynamic_ncols=True,
                disable=os.environ.get("TLM_PROGRESS") == "0", **kw)


def log(message: str) -> None:
    """One line for humans, on stderr so that stdout stays machine-readable."""
    print(message, file=sys.stderr, flush=True)


def emit_json(obj) -> None:
    """The command's result as one JSON document on stdout."""
    json.dump(obj, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
    sys.stdout.flush()
