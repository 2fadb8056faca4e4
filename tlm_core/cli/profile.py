"""`tlm profile`: each kernel's time inside the compiled model beside its measured latency."""

from __future__ import annotations

from pathlib import Path

from tlm_core.cli.args import add_json, add_source
from tlm_core.errors import UserError
from tlm_core.eval.profile import beside, profile, profile_pytorch
from tlm_core.ui import emit_json, log


def cmd_profile(args) -> None:
    from tlm_core.ir import workloads
    from tlm_core.ir.target import resolve_target

    if args.threads < 0:
        raise UserError("--threads must be >= 0 (0 = one per core of the target)")
    source = workloads.resolve(args.workload, args.module)
    target = resolve_target(args.target)
    out = profile(source, args.db, target, runs=args.runs, threads=args.threads, flag=args.flag,
                  min_share=args.min_share, alone=args.alone)
    if args.pytorch:
        out["pytorch"] = profile_pytorch(source, runs=args.runs, threads=args.threads, cores=target.hardware.num_cores)
        out["beside_pytorch"] = beside(out, out["pytorch"])
    if args.out:
        import json

        from tlm_core.provenance import provenance

        path = Path(args.out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=2))
        sidecar = provenance(target, command="tlm profile", workload=source.name, db=args.db, runs=args.runs,
                             threads=args.threads, pytorch=args.pytorch, alone=args.alone)
        Path(str(path) + ".provenance.json").write_text(json.dumps(sidecar, indent=2, default=str))
    if args.json:
        emit_json(out)
        return
    def ms(v):
        return "-" if v is None else f"{v:.4f}"

    print(f"{'kernel':<58} {'calls':>5} {'ms/call':>9} {'measured':>9} {'ratio':>6}"
          + (f" {'alone':>9} {'flushed':>9}" if args.alone else ""))
    for r in out["kernels"]:
        if r["calls"] == 0:
            continue
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        print(f"{r['kernel'][:58]:<58} {r['calls']:>5} {r['model_ms_per_call']:>9.4f} {ms(r['measured_ms']):>9} {ratio:>6}"
              + (f" {ms(r['alone_ms']):>9} {ms(r['alone_flushed_ms']):>9}" if args.alone else "")
              + ("  <-- slower in the model" if r["flag"] else ""))
    print(f"end to end {out['end_to_end_ms']:.3f} ms = kernels {out['kernels_ms']:.3f} + outside kernels "
          f"{out['outside_kernels_ms']:.3f} (the VM's {out['vm_calls_per_run']} other calls {out['vm_calls_ms']:.3f}, "
          f"dispatch and entry {out['dispatch_ms']:.3f}); measured latencies x calls {out['measured_sum_ms']:.3f} ms")
    print(f"with the profiling hook the model takes {out['hooked_end_to_end_ms']:.3f} ms: {out['hook_us_per_call']:.2f} us "
          "a call, part of it inside each timed call (small kernels read high)")
    if args.alone:
        s = out["alone_sums"]
        print(f"the {s['kernels']} tuned kernels of {s['of']}, x calls: measured {s['measured_ms']:.3f} ms -> alone now "
              f"{s['alone_warm_ms']:.3f} -> caches flushed {s['alone_flushed_ms']:.3f} -> in the model {s['in_model_ms']:.3f}")
    if args.pytorch:
        print(f"\nbeside PyTorch eager's profiler (self CPU time of its ops: {out['pytorch']['ops_ms']:.3f} ms per run)")
        print(f"{'operator class':<16} {'compiled ms':>11} {'pytorch ms':>10} {'ratio':>6}")
        for r in out["beside_pytorch"]:
            ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
            print(f"{r['class']:<16} {r['tvm_ms']:>11.3f} {r['pytorch_ms']:>10.3f} {ratio:>6}")
    if out["not_called"]:
        log(f"not kernels in the model (the VM runs them as views): {', '.join(out['not_called'])}")
    if out["flagged"]:
        log(f"{len(out['flagged'])} kernel(s) ran over {out['flag_ratio']}x their measured latency in the model, "
            f"costing at least {out['min_share']:.0%} of its latency each: their measurements do not stand for the "
            "model (look at the inputs the harness gives them)")


def register(subparsers) -> None:
    """`tlm profile`."""
    p = subparsers.add_parser("profile", help="each kernel's time in the compiled model vs its measured latency")
    add_source(p)
    p.add_argument("--db", metavar="DIR", help="record store of `tlm tune` (omit: TVM default code everywhere)")
    p.add_argument("--runs", type=int, default=20, help="profiled runs of the model; medians per call")
    p.add_argument("--threads", type=int, default=0, help="TVM runtime (and PyTorch) threads (0 = one per core of the target)")
    p.add_argument("--flag", type=float, default=2.0,
                   help="mark kernels whose in-model time per call exceeds their measured latency this many times")
    p.add_argument("--min-share", type=float, default=0.02,
                   help="...and whose excess over it is at least this fraction of the model's latency")
    p.add_argument("--pytorch", action="store_true",
                   help="also profile PyTorch eager (its own profiler) and compare per operator class")
    p.add_argument("--alone", action="store_true",
                   help="also time each kernel on its own (warm, and with the caches flushed before every call): "
                        "where the model's time goes beyond the measured latencies")
    p.add_argument("--out", metavar="FILE.json", help="also write the profile there, with a provenance sidecar")
    add_json(p)
    p.set_defaults(func=cmd_profile)
