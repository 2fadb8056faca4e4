"""PyTorch's own kernel for a matmul subgraph's shape, timed warm and cold, on this host.

    python -m benchmarks.pytorch_linear --shapes 128x768x768,128x768x3072,128x3072x768 --out FILE.json

Each shape is M x K x N: `torch.nn.functional.linear(x[M, K], w[N, K], b[N])`, what PyTorch runs
(aten::addmm: MKL or oneDNN on CPU) for a transformer's dense layers. *Warm* calls the same weight
again and again, as a tuner times a kernel; *cold* cycles through copies of the weight that together
exceed `--cold-bytes`, so every call reads its weight from memory, as a layer does inside a model.
Set beside `tlm profile`'s `alone_ms` and `alone_flushed_ms` of the tuned kernel of the same shape,
it says whether a compiled model loses in its kernels or around them. Runs alternate warm and cold;
medians of `--runs` runs of `--calls` calls each.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from tlm_core.errors import UserError
from tlm_core.ui import emit_json, progress


def parse_shapes(text: str) -> list[tuple[int, int, int]]:
    shapes = []
    for item in text.split(","):
        parts = item.strip().lower().split("x")
        if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise UserError(f"--shapes: {item!r} is not MxKxN with positive integers (e.g. 128x768x3072)")
        shapes.append(tuple(int(p) for p in parts))
    return shapes


def time_shape(m: int, k: int, n: int, runs: int, calls: int, cold_bytes: int) -> dict:
    import torch

    x = torch.randn(m, k)
    copies = max(2, -(-cold_bytes // (4 * n * k)))  # enough weights that none is still cached when reused
    weights = [torch.randn(n, k) for _ in range(copies)]
    biases = [torch.randn(n) for _ in range(copies)]

    def run(cold: bool) -> float:
        start = time.perf_counter()
        for i in range(calls):
            j = i % copies if cold else 0
            torch.nn.functional.linear(x, weights[j], biases[j])
        return (time.perf_counter() - start) / calls * 1e3

    with torch.no_grad():
        for _ in range(3):  # warm-up: thread pool, MKL's buffers, first touch of every copy
            run(False)
        for _ in range(-(-copies // calls)):
            run(True)
        warm, cold = [], []
        for _ in range(runs):  # alternate, so the host's drift falls on both alike
            warm.append(run(False))
            cold.append(run(True))
    return {"shape": f"{m}x{k}x{n}", "m": m, "k": k, "n": n, "gflop": 2 * m * k * n / 1e9,
            "weight_copies": copies, "warm_ms": statistics.median(warm), "cold_ms": statistics.median(cold),
            "warm_runs_ms": warm, "cold_runs_ms": cold}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.pytorch_linear", description=__doc__.split("\n")[0])
    p.add_argument("--shapes", required=True, help="comma-separated MxKxN (x[M,K] times w[N,K] transposed, plus bias)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = the number of cores)")
    p.add_argument("--runs", type=int, default=15)
    p.add_argument("--calls", type=int, default=50, help="calls per run")
    p.add_argument("--cold-bytes", type=int, default=1 << 30, help="bytes of weight copies cycled through when cold")
    p.add_argument("--out", type=Path, required=True, help="output JSON (a .provenance.json beside it)")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    args = p.parse_args(argv)
    try:
        shapes = parse_shapes(args.shapes)
        if args.runs < 1 or args.calls < 1:
            raise UserError("--runs and --calls must be >= 1")
        import os

        import torch

        from tlm_core.ir.target import resolve_target
        from tlm_core.provenance import provenance

        threads = args.threads or os.cpu_count()
        torch.set_num_threads(threads)
        rows = [time_shape(m, k, n, args.runs, args.calls, args.cold_bytes)
                for m, k, n in progress(shapes, desc="shapes")]
        result = {"threads": threads, "runs": args.runs, "calls": args.calls, "cold_bytes": args.cold_bytes,
                  "torch": torch.__version__, "shapes": rows}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        command = "python -m benchmarks.pytorch_linear " + " ".join(sys.argv[1:] if argv is None else argv)
        Path(f"{args.out}.provenance.json").write_text(json.dumps(
            provenance(resolve_target("host"), command=command, scale="microbenchmark"), indent=1) + "\n")
        if args.json:
            emit_json(result)
        else:
            for r in rows:
                print(f"{r['shape']:>16}  warm {r['warm_ms']:.4f} ms  cold {r['cold_ms']:.4f} ms")
        return 0
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
