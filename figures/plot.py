"""Figures from results/ and data/ only (nothing is measured here): `python -m figures.plot all|figure9|figure10|figure13|methods|tables`.

figure9.png  convergence of the demonstration data: best weighted latency of the training subgraphs
             vs programs measured (data/training/iterate*/convergence.jsonl, the iterative loops' logs:
             one curve per run, each measured on one CPU).
figure10.png, figure13.png, methods.png  end to end per workload and method (results/<figure>/<scale>/e2e.csv):
             speedup over PyTorch eager (timed alternately where the row was), latency, compile time.
table2.png, table3.png  the speedup tables of the newest scale measured (results/<table>/<scale>/table.csv)
             as heat maps, the paper's value beside each cell.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tlm_core.paths import REPO_ROOT

OUT = REPO_ROOT / "figures"
SCALES = ("full", "default", "smoke")  # the table figure shows the largest scale measured


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, out: Path, name: str) -> Path:
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    fig.savefig(path, dpi=150, bbox_inches="tight")  # legends placed outside the axes stay in
    plt.close(fig)
    return path


#: Method names as figures show them (the Ansor-style search is never labelled plain "Ansor").
LABELS = {"tlm": "TLM", "tlm-ranked": "TLM-ranked", "metaschedule": "MetaSchedule", "ansor": "Ansor-style (MetaSchedule impl.)",
          "roller": "Roller-style", "random": "random", "untuned": "TVM untuned", "pytorch-eager": "PyTorch eager",
          "pytorch-inductor": "PyTorch inductor", "tensorrt": "TensorRT"}


def _newest(results: Path, name: str, file: str) -> Path | None:
    """results/<name>/<scale>/<file> of the largest scale measured, if any."""
    return next((results / name / s / file for s in SCALES if (results / name / s / file).exists()), None)


def iterative_runs(data: Path = REPO_ROOT / "data" / "training") -> list[Path]:
    """Every iterative run with a convergence log (data/training/iterate*/): one per CPU it was measured on."""
    return sorted(p.parent for p in data.glob("iterate*/convergence.jsonl"))


def figure9(runs: list[Path] | None = None, out: Path = OUT) -> Path:
    """One curve per iterative run, named by the CPU it measured on: latencies of two CPUs share the axes
    but are not one curve (a run never goes on on another machine, see iterate._check_machine)."""
    from tlm_core.train.iterate import read_convergence

    runs = iterative_runs() if runs is None else runs
    curves = [(run, read_convergence(run / "convergence.jsonl")) for run in runs]
    curves = [(run, rows) for run, rows in curves if rows]
    if not curves:
        raise SystemExit("figures: no iterative run has a convergence log yet (data/training/iterate*/convergence.jsonl)")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for run, rows in curves:
        x = [r["programs"] for r in rows]  # the run's records after the round: already cumulative
        y = [r["weighted_latency_s"] for r in rows]
        cpu = run / "target.json"
        label = json.loads(cpu.read_text()).get("mcpu", "?") if cpu.exists() else "?"
        line, = ax.plot(x, y, marker="o", label=f"{label} ({run.name})")
        for xi, yi, r in zip(x, y, rows):
            ax.annotate(f"{r['round']}", (xi, yi), textcoords="offset points", xytext=(3, 3), fontsize=6,
                        color=line.get_color())
    ax.set_xlabel("programs measured on the run's CPU (cumulative)")
    ax.set_ylabel("best weighted latency of\nthe training subgraphs (s)")
    ax.set_title("Figure 9: convergence of demonstration data (CPU; points labelled by round)", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return _save(plt, fig, out, "figure9")


def table(name: str, results: Path = REPO_ROOT / "results", out: Path = OUT) -> Path | None:
    import pandas as pd

    found = _newest(results, name, "table.csv")
    if found is None:
        return None
    cells = pd.read_csv(found)
    prov = json.loads((found.parent / "provenance.json").read_text())
    rows = list(dict.fromkeys(cells["row"]))
    cols = list(dict.fromkeys(cells["column"]))
    plt = _plt()
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(cols), 0.9 + 0.45 * len(rows)))
    grid = [[cells[(cells.row == r) & (cells.column == c)].overall_speedup.iloc[0] for c in cols] for r in rows]
    ax.imshow([[1.0 if pd.isna(v) else v for v in row] for row in grid], cmap="RdYlGn", vmin=0.5, vmax=1.5, aspect="auto")
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            cell = cells[(cells.row == r) & (cells.column == c)].iloc[0]
            v = cell.overall_speedup
            text = "missing" if pd.isna(v) else f"{v:.2f}"
            if not pd.isna(cell.get("paper")):
                text += f"\n(paper {cell.paper:.2f})"
            ax.text(j, i, text, ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(cols)), cols, fontsize=7)
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    ax.set_title(f"{name}: overall speedup of row over column ({prov['scale']} scale, {prov['subgraphs']} subgraphs)",
                 fontsize=8)
    return _save(plt, fig, out, name)


def speedups(rows):
    """Each ok row's speedup over PyTorch eager (`speedup`, NaN where there is no eager to divide by).

    A compiled row timed alternately with eager in its own process (`eager_paired_ms`) is divided
    into that eager: on a shared host eager's own row, timed minutes apart, drifts by more than
    most of the gaps being shown. Other rows (inductor, or a run before pairing) use eager's row of
    the same workload. Eager's own row is 1."""
    import pandas as pd

    ok = rows[rows.status == "ok"].copy()
    eager = ok[ok.method == "pytorch-eager"].set_index("workload").latency_ms
    own = ok.workload.map(eager)
    paired = ok["eager_paired_ms"] if "eager_paired_ms" in ok else pd.Series(float("nan"), index=ok.index)
    ok["speedup"] = paired.fillna(own) / ok.latency_ms
    return ok


def end_to_end(name: str, results: Path = REPO_ROOT / "results", out: Path = OUT) -> Path | None:
    """Grouped bars per workload and method: speedup over PyTorch eager, latency, compile time;
    unavailable methods named in the title."""
    import pandas as pd

    found = _newest(results, name, "e2e.csv")
    if found is None:
        return None
    rows = pd.read_csv(found)
    prov = json.loads((found.parent / "provenance.json").read_text())
    ok = speedups(rows)
    workloads = list(dict.fromkeys(rows.workload))
    # One bar per (method, budget): a method may be run at several budgets (TLM at 10 and 64).
    series = list(dict.fromkeys(zip(ok.method, [None if pd.isna(b) else int(b) for b in ok.budget])))
    # The speedup first: latencies of workloads 1 ms to 100 s apart only show as bars on a log scale.
    # Last, each method's compile time (search or generation, builds, measurements) where the run
    # has them: a latency is only half of a tuning method's result.
    panels = (["speedup"] if ok.speedup.notna().any() else []) + ["latency_ms"] + (
        ["compile_seconds"] if "compile_seconds" in ok and ok.compile_seconds.notna().any() else [])
    plt = _plt()
    fig, axes = plt.subplots(len(panels), 1, figsize=(4 + 1.6 * len(workloads), 3.4 * len(panels)), squeeze=False)
    width = 0.8 / max(1, len(series))
    for ax, col in zip(axes[:, 0], panels):
        for j, (m, b) in enumerate(series):
            same = (ok.method == m) & (ok.budget.isna() if b is None else ok.budget == b)
            vals = [ok[same & (ok.workload == w)][col] for w in workloads]
            ys = [v.iloc[0] if len(v) else float("nan") for v in vals]
            label = LABELS.get(m, m) if b is None else f"{LABELS.get(m, m)} (budget {int(b)})"
            bars = ax.bar([i + j * width for i in range(len(workloads))], ys, width, label=label)
            if col == "compile_seconds" and "compile_seconds_partial" in ok:
                for bar, w in zip(bars, workloads):  # a lower bound: a resumed call's time, not the first's
                    if ok[same & (ok.workload == w)].compile_seconds_partial.fillna(False).astype(bool).any():
                        bar.set_hatch("//")
        ax.set_xticks([i + width * (len(series) - 1) / 2 for i in range(len(workloads))], workloads)
        ax.set_ylabel({"speedup": "speedup over PyTorch eager\n(tuned: timed alternately)", "latency_ms": "end-to-end latency (ms)",
                       "compile_seconds": "compile time (s)"}[col])
        finite = ok[col].dropna()
        if col == "compile_seconds" and "compile_seconds_partial" in ok and ok.compile_seconds_partial.fillna(
                False).astype(bool).any():
            ax.set_title("hatched: a lower bound (a resumed run; the first call's time was not kept)", fontsize=7)
        if col == "speedup":  # faster and slower alike as factors: 2x and 0.5x equally far from the line
            ax.axhline(1.0, color="black", linewidth=0.8)
            ax.set_yscale("log", base=2)
        elif len(finite) and finite.max() > 20 * finite.min():  # log only where the bars span decades
            ax.set_yscale("log")
    missing = rows[rows.status != "ok"]
    note = "; ".join(sorted({f"{LABELS.get(r.method, r.method)}: {r.status}" for r in missing.itertuples()}))
    cpu = prov.get("cpu", "?") + (f" ({prov['target']['mcpu']})" if isinstance(prov.get("target"), dict) else "")
    axes[0, 0].set_title(f"{name} ({prov['scale']} scale, {cpu}, {prov.get('date', '?')[:10]})"
                         + (f"\n{note}" if note else ""), fontsize=8)
    axes[0, 0].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))  # outside: bars span the axes
    return _save(plt, fig, out, name)


PLOTS = ("all", "figure9", "tables", "table2", "table3", "figure10", "figure13", "methods")


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="plot", description="figures from results/ (or a per-CPU folder such as "
                                     "results/znver4 with --results)")
    parser.add_argument("what", nargs="*", metavar="NAME", help=f"one of {', '.join(PLOTS)} (default all)")
    parser.add_argument("--results", type=Path, default=REPO_ROOT / "results", metavar="DIR",
                        help="where the runs are: DIR/<figure>/<scale>/ (default results/)")
    parser.add_argument("--out", type=Path, default=OUT, metavar="DIR", help="where the .png files go (default figures/)")
    args = parser.parse_args(argv if argv is not None else sys.argv[1:])
    what = args.what or ["all"]
    unknown = [w for w in what if w not in PLOTS]
    if unknown:  # once, `plot table2` silently drew nothing
        print(f"plot: unknown {' '.join(unknown)}; choose from {', '.join(PLOTS)}", file=sys.stderr)
        return 2
    if "all" in what:
        what = ["figure9", "tables", "figure10", "figure13", "methods"]
    made = []
    for w in dict.fromkeys(what):
        if w == "figure9":
            made.append(figure9(out=args.out))
        elif w in ("tables", "table2", "table3"):
            made += [p for p in (table(t, args.results, args.out) for t in (("table2", "table3") if w == "tables" else (w,)))
                     if p]
        else:
            made += [p for p in [end_to_end(w, args.results, args.out)] if p]
    for p in dict.fromkeys(made):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
