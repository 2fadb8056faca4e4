"""`tlm sample` and `tlm roundtrip`: random valid sentences of the tensor language, and the proof that they round-trip."""

from __future__ import annotations

import json
import os
import time

from tlm_core.cli.args import add_sampling, add_source, report
from tlm_core.cli.args import entries as arg_entries
from tlm_core.errors import UserError


def cmd_sample(args) -> None:
    import pandas as pd

    from tlm_core.language import sampling

    if args.n < 1:
        raise UserError("-n must be at least 1")
    if not args.out.endswith(".parquet"):
        raise UserError(f"--out {args.out!r}: the output is a parquet file, name it *.parquet")
    entries, target = arg_entries(args.workload, args.module, args.target)
    workers = args.workers or sampling.default_workers()
    start = time.perf_counter()
    jobs = sampling.plan(entries, args.n, target, args.seed, workers)
    results = sampling.run_jobs(sampling.sample_job, jobs, workers, "sample")
    rows = [r for rs, _ in results for r in rs]
    seconds = time.perf_counter() - start
    df = pd.DataFrame(rows)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    df.to_parquet(args.out, index=False)
    total = df.prompt_tokens + df.decision_tokens
    summary = {"sentences": len(df), "tasks": len(entries), "workloads": sorted({w for w, _ in entries}),
               "seconds": round(seconds, 2), "sentences_per_s": round(len(df) / seconds, 1),
               "rejected_by_postproc": sum(r for _, r in results), "max_tokens": int(total.max()),
               "mean_tokens": round(float(total.mean()), 1), "max_decision_tokens": int(df.decision_tokens.max()),
               "workers": workers, "out": args.out}
    # Provenance sidecar beside the data: what made it, where, with which versions.
    from tlm_core.provenance import provenance

    sidecar = provenance(target, command="tlm sample", seed=args.seed, summary=summary)
    with open(args.out + ".provenance.json", "w") as f:
        json.dump(sidecar, f, indent=2, default=str)
    report(summary, args)


def cmd_roundtrip(args) -> None:
    from tlm_core.language import sampling

    if args.n < 1:
        raise UserError("-n must be at least 1")
    entries, target = arg_entries(args.workload, args.module, args.target)
    workers = args.workers or sampling.default_workers()
    start = time.perf_counter()
    jobs = sampling.plan(entries, args.n * len(entries), target, args.seed, workers)
    parts = sampling.run_jobs(sampling.roundtrip_job, jobs, workers, "roundtrip")
    out = {k: sum(p[k] for p in parts) for k in ("programs", "identical", "different", "rejected_by_postproc")}
    out.update(tasks=len(entries), seconds=round(time.perf_counter() - start, 2),
               failures=[f for p in parts for f in p["failures"]][:10])
    report(out, args)
    if out["different"]:
        raise UserError(f"{out['different']} of {out['programs']} programs did not survive the round trip")


def register(sub) -> None:
    """`tlm sample`, `tlm roundtrip`."""
    p = sub.add_parser("sample", help="random valid sentences (pretraining data) into a parquet file")
    add_source(p, many=True)
    p.add_argument("-n", type=int, required=True, help="sentences in all, spread evenly over the tasks")
    p.add_argument("--out", required=True, help="FILE.parquet")
    add_sampling(p)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("roundtrip", help="sample, encode, decode, compare: proof of losslessness")
    add_source(p, many=True)
    p.add_argument("-n", type=int, default=10, help="programs per task")
    add_sampling(p)
    p.set_defaults(func=cmd_roundtrip)
