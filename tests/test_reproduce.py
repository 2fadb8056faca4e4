"""The reproduction driver: subgraph selection, speedup arithmetic, and a whole smoke-scale Table 2."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from benchmarks import reproduce
from benchmarks.reproduce import searchlog
from benchmarks.tables import FIGURES, MAX_GFLOPS, TABLES, kind, select
from tlm_core.ir.tasks import PIPELINE_VERSION
from tlm_core.paths import data_dir


@dataclass(frozen=True)
class FakeTask:
    name: str
    hash: str
    weight: int = 1
    flops: float = 1e6


def test_selection_interleaves_kinds_caps_flops_and_dedups():
    entries = [("w1", FakeTask(f"conv2d{i}", f"c{i}")) for i in range(5)]
    entries += [("w2", FakeTask(f"fused_matmul{i}_add", f"m{i}")) for i in range(5)]
    entries += [("w2", FakeTask(f"softmax{i}", f"o{i}")) for i in range(5)]
    entries += [("w3", FakeTask("conv2d_dup", "c0")), ("w3", FakeTask("conv2d_big", "big", flops=2 * MAX_GFLOPS * 1e9))]
    chosen = select(entries, 7, seed=1)
    assert [kind(t.name) for _, t in chosen] == ["conv", "matmul", "other"] * 2 + ["conv"]
    hashes = [t.hash for _, t in chosen]
    assert len(set(hashes)) == 7 and "big" not in hashes
    assert chosen == select(entries, 7, seed=1)  # seeded: the same draw every time
    assert select(entries, 12, seed=1)[:7] == chosen  # a bigger table extends a smaller one
    assert select(entries, 7, seed=2) != chosen


def test_shipped_selection_follows_the_rule():
    doc = json.loads((data_dir() / reproduce.SUBGRAPHS).read_text())
    subs = doc["subgraphs"]
    assert len(subs) == max(t.subgraphs for t in TABLES.values())
    assert len({s["hash"] for s in subs}) == len(subs)
    assert all(s["flops"] <= MAX_GFLOPS * 1e9 for s in subs)
    assert [kind(s["name"]) for s in subs[:6]] == ["conv", "matmul", "other"] * 2


def test_speedup_counts_failures_and_weights():
    a, b, c = FakeTask("a", "a", weight=2), FakeTask("b", "b"), FakeTask("c", "c")
    method = {"a": 1.0, "b": 2.0}  # no program for c
    baseline = {"a": 2.0, "b": 2.0, "c": 5.0}
    out = reproduce.speedup([a, b, c], method, baseline)
    assert out["overall_speedup"] == pytest.approx((2 * 2 + 2) / (2 * 1 + 2))
    assert out["failures_method"] == 1 and out["failures_baseline"] == 0
    assert out["failed_subgraphs"] == "method:c"
    # Each subgraph once: speedups 2 (a) and 1 (b); a holds 4 of the baseline's 6 weighted seconds.
    assert out["geomean_speedup"] == pytest.approx(2**0.5, rel=1e-3) and out["wins"] == 1
    assert out["top3_share"] == pytest.approx(1.0)
    assert reproduce.weighted([a, b, c], method) is None  # a failure is never summed away


def test_top_takes_fastest_distinct_in_prefix():
    trials = [("t1", 3.0), ("t2", 1.0), ("t1", 0.5), ("t3", 0.1)]
    assert reproduce.top(trials, 3, 2) == [("t1", 0.5), ("t2", 1.0)]
    assert reproduce.top(trials, 1, 3) == [("t1", 3.0)]


def test_unknown_artefact_is_a_clear_error(capsys):
    assert reproduce.main(["table9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("reproduce: error:") and "table2" in err and "Traceback" not in err


def test_flush_caches_outside_a_figure_is_a_clear_error(tmp_path, capsys):
    """--flush-caches only changes a figure's end-to-end tuning: on a table it would be ignored."""
    assert reproduce.main(["table2", "--flush-caches", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("reproduce: error: --flush-caches") and "figure13" in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())


def test_smoke_table2(tmp_path):
    """The whole pipeline at smoke scale: generate, measure, re-measure the shipped log, tabulate."""
    out = tmp_path / "table2" / "smoke"
    # The same model again as the challenger: the same programs, so the same cells (below).
    res, res_c = reproduce.run_tables([TABLES["table2"]], "smoke", {"table2": out}, _host(),
                                      challenger=reproduce.checkpoint(_host()))
    scale = TABLES["table2"].scales["smoke"]
    cells = pd.read_csv(out / "table.csv")
    assert len(cells) == (len(scale.tlm_times) + len(scale.ranked_times) + 1) * (len(scale.trials) + 1)
    assert {f"tlm-ranked@{k}" for k in scale.ranked_times} <= set(cells.row)  # its rows beside TLM's
    assert set(cells.columns) >= {"method", "measurements", "baseline", "baseline_trials", "overall_speedup"}
    ok = cells[cells.status == "ok"]
    assert len(ok) == len(cells)  # every smoke subgraph has a valid program from both methods
    assert (ok.overall_speedup > 0).all()
    # TLM's largest row against its own column is exactly 1.
    top = cells[(cells.row == f"tlm@{max(scale.tlm_times)}") & (cells.baseline == "tlm")]
    assert top.overall_speedup.iloc[0] == pytest.approx(1.0)
    subs = pd.read_csv(out / "subgraphs.csv")
    assert subs.groupby("label").size().eq(scale.subgraphs).all()  # every subgraph counted in every sum
    # Values come from re-timing the chosen program, not from the timing that chose it.
    assert subs.best_ms.notna().all() and subs.selected_ms.notna().all() and (subs.best_ms != subs.selected_ms).any()
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["scale"] == "smoke" and prov["tlm_invalid"] == 0 and prov["git_commit"]
    assert prov["tlm_ranked_invalid"] == 0 and prov["ranker"]["sha256"]
    # tlm-ranked's compile time holds its pool's generation and ranking, then its measurements.
    ranked = [r for r in prov["tlm_rows"] if r["label"].startswith("tlm-ranked@")]
    assert [r["measurements"] for r in ranked] == list(scale.ranked_times)
    assert all(r["compile_seconds"] > r["generation_seconds"] > 0 for r in ranked)
    assert prov["retime_rounds"] == 3 and prov["retime_failed"] == []
    assert prov["checkpoint"]["sha256"] and prov["checkpoint"]["measured_programs"] > 0
    assert (out / "table.md").read_text().count("| Times |") == 2  # total-latency and geometric-mean grids
    # Re-tabulating from subgraphs.csv alone gives the cells the run computed from its records.
    again = tmp_path / "again"
    shutil.copytree(out, again)
    reproduce.retabulate(again)
    redone = pd.read_csv(again / "table.csv")
    for col in ("overall_speedup", "geomean_speedup", "wins"):
        assert redone[col].tolist() == pytest.approx(cells[col].tolist(), rel=1e-3, nan_ok=True)
    assert json.loads((again / "provenance.json").read_text())["retabulated"]["git_commit"]
    rows = reproduce.compare([out, again])
    # A challenger measured in the same sitting is tabulated beside the run, from the same records.
    assert res_c["out"] == str(out.with_name("smoke-challenger"))
    challenged = pd.read_csv(out.with_name("smoke-challenger") / "table.csv")
    assert challenged.overall_speedup.tolist() == pytest.approx(cells.overall_speedup.tolist(), nan_ok=True)
    assert [r["row"] for r in rows] == ([f"tlm@{k}" for k in scale.tlm_times]
                                        + [f"tlm-ranked@{k}" for k in scale.ranked_times]) * 2
    assert res["claims"]["compile_time_speedup_at_equal_performance"]["tlm_compile_seconds"] > 0
    # The figure is drawn from these results alone.
    from figures.plot import table

    assert table("table2", results=tmp_path, out=tmp_path).stat().st_size > 10_000


def _host():
    from tlm_core.ir.target import resolve_target

    return resolve_target("host")


def test_figures_from_results_only(tmp_path):
    """Figure 9 from the shipped convergence log; an end-to-end figure from an e2e.csv, unavailable rows named."""
    from figures.plot import end_to_end, figure9

    assert figure9(out=tmp_path).stat().st_size > 10_000
    # One curve per iterative run (one per CPU); a run without rounds yet draws nothing, none at all is an error.
    for name, cpu in (("iterate", "znver3"), ("iterate-b", "znver4")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "target.json").write_text(json.dumps({"mcpu": cpu}))
        (tmp_path / name / "convergence.jsonl").write_text("")
    with pytest.raises(SystemExit, match="no iterative run"):
        figure9(runs=[tmp_path / "iterate", tmp_path / "iterate-b"], out=tmp_path)
    (tmp_path / "iterate-b" / "convergence.jsonl").write_text(
        json.dumps({"round": 0, "programs": 10, "weighted_latency_s": 2.0}) + "\n")
    assert figure9(runs=[tmp_path / "iterate", tmp_path / "iterate-b"], out=tmp_path).exists()
    run = tmp_path / "figure13" / "smoke"
    run.mkdir(parents=True)
    pd.DataFrame([
        {"workload": "bert_tiny", "method": "tlm", "budget": 2, "status": "ok", "latency_ms": 8.4},
        {"workload": "bert_tiny", "method": "pytorch-eager", "budget": None, "status": "ok", "latency_ms": 9.3},
        {"workload": "bert_tiny", "method": "tensorrt", "budget": None, "status": "unavailable: no CUDA device",
         "latency_ms": None},
    ]).to_csv(run / "e2e.csv", index=False)
    (run / "provenance.json").write_text(json.dumps({"scale": "smoke", "cpu": "test"}))
    assert end_to_end("figure13", results=tmp_path, out=tmp_path).stat().st_size > 10_000
    # Speedups over eager: a tuned row over the eager timed alternately with it, where it was;
    # inductor (never paired) over eager's own row; failed rows have none.
    from figures.plot import speedups

    got = speedups(pd.DataFrame([
        {"workload": "w", "method": "pytorch-eager", "status": "ok", "latency_ms": 10.0, "eager_paired_ms": None},
        {"workload": "w", "method": "pytorch-inductor", "status": "ok", "latency_ms": 5.0, "eager_paired_ms": None},
        {"workload": "w", "method": "tlm", "status": "ok", "latency_ms": 5.0, "eager_paired_ms": 8.0},
        {"workload": "w", "method": "roller", "status": "failed: x", "latency_ms": None, "eager_paired_ms": None},
    ])).set_index("method").speedup.to_dict()
    assert got == {"pytorch-eager": 1.0, "pytorch-inductor": 2.0, "tlm": 1.6}
    # The command draws a per-CPU folder's runs (results/znver4) where --results says, into --out.
    from figures.plot import main

    out = tmp_path / "drawn"
    out.mkdir()
    assert main(["figure13", "--results", str(tmp_path), "--out", str(out)]) == 0
    assert (out / "figure13.png").stat().st_size > 10_000


def test_figure13_smoke_rows(tmp_path):
    """End to end at smoke scale: TLM compiled and benched, PyTorch rows, TensorRT says why it is not there."""
    res = reproduce.run_e2e(FIGURES["figure13"], "smoke", tmp_path, _host())
    rows = {r["method"]: r for r in res["rows"]}
    assert rows["tlm"]["status"] == "ok" and rows["tlm"]["max_abs_err"] <= 1e-3
    assert rows["tlm"]["latency_ms"] > 0 and rows["tlm"]["untuned_subgraphs"] == 0
    assert rows["tlm"]["pipeline"] == PIPELINE_VERSION  # the tasks' version, for a row kept across a change
    assert rows["pytorch-eager"]["latency_ms"] > 0
    assert rows["tensorrt"]["status"].startswith("unavailable:") and "latency_ms" not in rows["tensorrt"]
    assert (tmp_path / "e2e.csv").exists() and (tmp_path / "provenance.json").exists()


def test_e2e_resume_keeps_finished_rows_and_runs_the_rest(tmp_path):
    """A stopped end-to-end run resumes: finished (workload, method) rows are kept, not run again."""
    from benchmarks.tables import EndToEndSpec

    spec = EndToEndSpec("methods", "t", {"smoke": ("bert_tiny",)}, (("untuned", {"smoke": 1}), ("tensorrt", {})))
    kept = {"figure": "methods", "scale": "smoke", "workload": "bert_tiny", "method": "untuned", "budget": 1,
            "status": "ok", "latency_ms": 87.8, "max_abs_err": 1e-6}
    pd.DataFrame([kept]).to_csv(tmp_path / "e2e.csv", index=False)
    res = reproduce.run_e2e(spec, "smoke", tmp_path, _host(), resume=True)  # untuned would take a minute
    rows = {r["method"]: r for r in res["rows"]}
    assert rows["untuned"]["latency_ms"] == 87.8 and rows["tensorrt"]["status"].startswith("unavailable:")
    again = pd.read_csv(tmp_path / "e2e.csv")
    assert list(again.method) == ["untuned", "tensorrt"]


def test_e2e_records_a_failing_model_and_goes_on(tmp_path, monkeypatch):
    """A (workload, method) that raises becomes a `failed: ...` row; the sitting goes on to the next, and a
    resume runs the failed row again."""
    from benchmarks.reproduce import e2e as driver
    from benchmarks.tables import EndToEndSpec

    spec = EndToEndSpec("methods", "t", {"smoke": ("bert_tiny", "resnet50")}, (("untuned", {"smoke": 1}),))
    calls = []

    def fake(row, source, method, out, target, seed, resume, flush_caches=False):
        calls.append(row["workload"])
        if row["workload"] == "bert_tiny" and len(calls) == 1:
            raise RuntimeError("LLVM ERROR: out of registers\nmore lines")
        return [{**row, "status": "ok", "latency_ms": 1.0}]

    monkeypatch.setattr(driver, "_e2e_rows", fake)
    res = reproduce.run_e2e(spec, "smoke", tmp_path, _host())
    assert [r["status"] for r in res["rows"]] == ["failed: RuntimeError: LLVM ERROR: out of registers", "ok"]
    res = reproduce.run_e2e(spec, "smoke", tmp_path, _host(), resume=True)
    assert calls == ["bert_tiny", "resnet50", "bert_tiny"]
    assert [r["status"] for r in res["rows"]] == ["ok", "ok"]


def test_a_cold_cache_sitting_says_so_and_keeps_to_its_protocol(tmp_path, monkeypatch):
    """--flush-caches reaches each tuned row (its programs chosen by cold timings), the provenance says
    it, and a folder measured one way does not resume the other way (its rows would mix protocols)."""
    from benchmarks.reproduce import e2e as driver
    from benchmarks.tables import EndToEndSpec
    from tlm_core.errors import UserError

    spec = EndToEndSpec("figure13", "t", {"smoke": ("bert_tiny",)}, (("untuned", {"smoke": 1}),))
    seen = []

    def fake(row, source, method, out, target, seed, resume, flush_caches=False):
        seen.append(flush_caches)
        return [{**row, "status": "ok", "latency_ms": 1.0}]

    monkeypatch.setattr(driver, "_e2e_rows", fake)
    reproduce.run_e2e(spec, "smoke", tmp_path / "cold", _host(), flush_caches=True)
    reproduce.run_e2e(spec, "smoke", tmp_path / "warm", _host())
    assert seen == [True, False]
    assert json.loads((tmp_path / "cold" / "provenance.json").read_text())["flush_caches"] is True
    assert "flush_caches" not in json.loads((tmp_path / "warm" / "provenance.json").read_text())
    with pytest.raises(UserError, match="cold-cache timings; drop --flush-caches"):
        reproduce.run_e2e(spec, "smoke", tmp_path / "cold", _host(), resume=True)
    with pytest.raises(UserError, match="warm-cache timings; add --flush-caches"):
        reproduce.run_e2e(spec, "smoke", tmp_path / "warm", _host(), resume=True, flush_caches=True)
    assert seen == [True, False]


def test_a_resumed_table_shows_the_rows_kept_before_the_entry_in_progress(tmp_path, monkeypatch):
    """A resume that re-runs a workload's failed TLM row: the table written while it runs (or after it is
    stopped) still has that workload's PyTorch rows measured before."""
    from benchmarks.reproduce import e2e as driver
    from benchmarks.tables import EndToEndSpec

    spec = EndToEndSpec("figure13", "t", {"smoke": ("bert_tiny", "resnet50")},
                        (("untuned", {"smoke": 1}), ("pytorch", {})))
    base = {"figure": "figure13", "scale": "smoke", "workload": "resnet50"}
    pd.DataFrame([{**base, "method": "untuned", "budget": 1, "status": "failed: RuntimeError: x"},
                  {**base, "method": "pytorch-eager", "status": "ok", "latency_ms": 132.4, "max_abs_err": 0.0},
                  {**base, "method": "pytorch-inductor", "status": "ok", "latency_ms": 97.1}]
                 ).to_csv(tmp_path / "e2e.csv", index=False)

    def fake(row, *args):
        if row["workload"] == "resnet50":  # stopped while the failed row runs again
            raise KeyboardInterrupt
        return [{**row, "status": "ok", "latency_ms": 1.0}]

    monkeypatch.setattr(driver, "_e2e_rows", fake)
    with pytest.raises(KeyboardInterrupt):
        reproduce.run_e2e(spec, "smoke", tmp_path, _host(), resume=True)
    resnet = next(line for line in (tmp_path / "table.md").read_text().splitlines() if line.startswith("| resnet50"))
    assert "| 132.40 | 97.10 |" in resnet, resnet
    csv = pd.read_csv(tmp_path / "e2e.csv")
    assert list(zip(csv.workload, csv.method)) == [("bert_tiny", "untuned"), ("bert_tiny", "pytorch"),
                                                   ("resnet50", "pytorch-eager"), ("resnet50", "pytorch-inductor")]


def test_the_table_states_the_error_bound_every_tuned_model_met():
    """Correctness is relative to the output's size (float32 sums in another order differ by ulps, which
    near 100 exceed 1e-4 absolute); a model outside the bound is counted, and the absolute worst named."""
    from benchmarks.reproduce.e2e import summary_markdown

    def row(w, method, abs_err, rel_err, budget=10):
        return {"figure": "figure13", "scale": "full", "workload": w, "method": method, "status": "ok",
                "latency_ms": 1.0, "max_abs_err": abs_err, "max_rel_err": rel_err,
                "budget": budget if method == "tlm" else None}

    rows = [{**row("wide", "tlm", 1.5e-4, 1.9e-6), "eager_paired_ms": 0.9, "paired_protocol": 2},
            row("wide", "pytorch-eager", 0.0, 0.0),
            row("wide", "pytorch-inductor", 3.9e-5, 4.8e-7), row("bad", "tlm", 2e-3, 2e-3)]
    prov = {"figure": "figure13", "scale": "full", "cpu": "c", "target": {"mcpu": "m", "num_cores": 2},
            "methods": [["tlm", {"full": 10}], ["pytorch", {}]], "workloads": ["wide", "bad", "later"]}
    table = summary_markdown(rows, prov)
    # A workload the run has not reached yet is in the table, and counted as not run.
    assert "| later | not run | not run | not run | - | - |" in table
    assert "- tlm@10 is faster than PyTorch eager on 0 of 3 workloads and than inductor on 0 of 3 (1 not run yet)" \
        in table
    # The speedup over eager timed alternately with the tuned model (a row without it is left out).
    assert "- tlm@10 over eager timed alternately with it in one process: wide 0.90x (faster on 0 of 1)\n" in table
    # A row benched by the first paired protocol (the switch from PyTorch timed) is marked as such.
    rows[0]["paired_protocol"] = float("nan")  # the CSV of a row from before the column
    assert "wide 0.90x* (faster on 0 of 1); * timed by paired protocol 1" in summary_markdown(rows, prov)
    assert "- 1 of 2 tuned models within 1e-4 of eager relative to the output's largest value (worst 2.0e-03, " \
           "bad); largest absolute error 2.0e-03 (bad, outputs up to 1); inductor's largest 3.9e-05" in table
    assert "unscheduled" not in table and "lower bound" not in table


def test_an_e2e_table_says_what_its_numbers_leave_out_and_is_retabulated_from_its_csv(tmp_path, capsys):
    """A row whose model ran some subgraphs as unscheduled loops (no record for them) and a compile time
    that leaves out work from before the clock are named under the table; `retabulate` rewrites
    table.md from e2e.csv alone, nothing re-measured."""
    from benchmarks.reproduce.cli import main

    rows = [{"figure": "methods", "scale": "full", "workload": "gpt2", "method": m, "budget": 2, "status": "ok",
             "latency_ms": lat, "eager_paired_ms": 300.0, "max_abs_err": 1e-6, "max_rel_err": 1e-7, "tasks": 31,
             "untuned_subgraphs": u, "compile_seconds_partial": p}
            for m, lat, u, p in (("untuned", 39000.0, 1, True), ("tlm", 11030.0, 1, False),
                                 ("tlm-ranked", 423.0, 0, False))]
    rows.append({"figure": "methods", "scale": "full", "workload": "gpt2", "method": "pytorch-eager",
                 "status": "ok", "latency_ms": 291.7})
    pd.DataFrame(rows).to_csv(tmp_path / "e2e.csv", index=False)
    (tmp_path / "provenance.json").write_text(json.dumps(
        {"figure": "methods", "scale": "full", "cpu": "c", "target": {"mcpu": "m", "num_cores": 2},
         "workloads": ["gpt2"], "methods": [["untuned", {"full": 2}], ["tlm", {"full": 2}], ["tlm-ranked", {"full": 2}], ["pytorch", {}]]}))
    assert main(["retabulate", str(tmp_path)]) == 0
    table = (tmp_path / "table.md").read_text()
    assert table in capsys.readouterr().out
    assert "so no record): gpt2 untuned@2 1 of 31, gpt2 tlm@2 1 of 31\n" in table
    assert "before the compile-time clock): gpt2 untuned@2\n" in table
    assert "tlm-ranked@2 1" not in table
    assert json.loads((tmp_path / "provenance.json").read_text())["retabulated"]["git_commit"]
    # A folder that is no run says so.
    assert main(["retabulate", str(tmp_path / "nothing")]) == 2
    assert "is not a table run" in capsys.readouterr().err


def test_e2e_runs_every_workload_at_the_small_budget_first(tmp_path, monkeypatch):
    """Passes of rising budget (PyTorch with the first), every workload in each: a sitting stopped early
    has the whole table at the small budget. The CSV keeps the spec's order."""
    from benchmarks.reproduce import e2e as driver
    from benchmarks.tables import EndToEndSpec

    spec = EndToEndSpec("figure13", "t", {"smoke": ("bert_tiny", "resnet50")},
                        (("untuned", {"smoke": 1}), ("untuned", {"smoke": 2}), ("pytorch", {})))
    calls = []

    def fake(row, source, method, out, target, seed, resume, flush_caches=False):
        calls.append((row["workload"], method, row["budget"]))
        return [{**row, "status": "ok", "latency_ms": 1.0}]

    def stopped(row, *args):  # the sitting stopped when the second pass began
        if row["budget"] == 2:
            raise KeyboardInterrupt
        return fake(row, *args)

    monkeypatch.setattr(driver, "_e2e_rows", stopped)
    with pytest.raises(KeyboardInterrupt):
        reproduce.run_e2e(spec, "smoke", tmp_path / "stopped", _host())
    table = (tmp_path / "stopped" / "table.md").read_text()  # written with every entry, not only at the end
    assert "untuned@1 is faster than PyTorch eager on 0 of 2 workloads and than inductor on 0 of 2\n" in table
    assert "untuned@2 is faster than PyTorch eager on 0 of 2 workloads and than inductor on 0 of 2 (2 not run " \
           "yet)" in table and "`--resume` runs what is missing" in table
    calls.clear()
    monkeypatch.setattr(driver, "_e2e_rows", fake)
    reproduce.run_e2e(spec, "smoke", tmp_path, _host())
    assert calls == [("bert_tiny", "untuned", 1), ("bert_tiny", "pytorch", None), ("resnet50", "untuned", 1),
                     ("resnet50", "pytorch", None), ("bert_tiny", "untuned", 2), ("resnet50", "untuned", 2)]
    table = (tmp_path / "table.md").read_text()
    assert "untuned@2 is faster than PyTorch eager on 0 of 2 workloads and than inductor on 0 of 2\n" in table
    csv = pd.read_csv(tmp_path / "e2e.csv")
    assert list(zip(csv.workload, csv.method)) == [("bert_tiny", "untuned"), ("bert_tiny", "untuned"),
                                                   ("bert_tiny", "pytorch"), ("resnet50", "untuned"),
                                                   ("resnet50", "untuned"), ("resnet50", "pytorch")]


def test_e2e_runs_only_the_workloads_asked_for_and_keeps_the_rest(tmp_path, monkeypatch):
    """`--workloads`: a part of a long sitting first (the rows that decide a claim); the other workloads'
    rows are kept, the table still lists every workload of the spec, and a name not in it is an error.
    With `--redo` those workloads run again, and the rows they replace go to superseded.csv."""
    from benchmarks.reproduce import e2e as driver
    from benchmarks.tables import EndToEndSpec
    from tlm_core.errors import UserError

    spec = EndToEndSpec("figure13", "t", {"smoke": ("bert_tiny", "resnet50", "dcgan")},
                        (("untuned", {"smoke": 1}), ("untuned", {"smoke": 2})))
    pd.DataFrame([{"figure": "figure13", "scale": "smoke", "workload": "bert_tiny", "method": "untuned",
                   "budget": 1, "status": "ok", "latency_ms": 7.0}]).to_csv(tmp_path / "e2e.csv", index=False)
    calls = []

    def fake(row, *args):
        calls.append((row["workload"], row["budget"]))
        return [{**row, "status": "ok", "latency_ms": 1.0}]

    monkeypatch.setattr(driver, "_e2e_rows", fake)
    res = reproduce.run_e2e(spec, "smoke", tmp_path, _host(), resume=True, only=["resnet50", "bert_tiny"])
    assert calls == [("resnet50", 1), ("bert_tiny", 2), ("resnet50", 2)]
    assert ("bert_tiny", 1) in [(r["workload"], r["budget"]) for r in res["rows"]]  # kept, not run again
    table = (tmp_path / "table.md").read_text()
    assert "| dcgan | not run |" in table and "(1 not run yet)" in table
    prov = json.loads((tmp_path / "provenance.json").read_text())
    assert prov["only"] == ["resnet50", "bert_tiny"] and prov["finished"] is False
    with pytest.raises(UserError, match="--workloads: llama not in figure13 at scale smoke"):
        reproduce.run_e2e(spec, "smoke", tmp_path, _host(), resume=True, only=["llama"])
    # --redo: a workload whose tasks changed runs again; the rows it replaces are kept beside.
    calls.clear()
    res = reproduce.run_e2e(spec, "smoke", tmp_path, _host(), resume=True, only=["bert_tiny"], redo=True)
    assert calls == [("bert_tiny", 1), ("bert_tiny", 2)]
    old = pd.read_csv(tmp_path / "superseded.csv")
    assert list(zip(old.workload, old.budget, old.latency_ms)) == [("bert_tiny", 1, 7.0), ("bert_tiny", 2, 1.0)]
    assert sorted((r["workload"], r["budget"], r["latency_ms"]) for r in res["rows"]) == [
        ("bert_tiny", 1, 1.0), ("bert_tiny", 2, 1.0), ("resnet50", 1, 1.0), ("resnet50", 2, 1.0)]
    with pytest.raises(UserError, match="--redo runs the entries of the --workloads named again"):
        reproduce.run_e2e(spec, "smoke", tmp_path, _host(), resume=True, redo=True)


def test_e2e_runs_a_method_at_several_budgets_and_counts_its_wins(tmp_path):
    """One method at two budgets is two entries (resumed apart, tlm apart from tlm-ranked); table.md puts
    each beside PyTorch eager and inductor and counts the workloads it beats them on."""
    from benchmarks.reproduce.e2e import _key
    from benchmarks.tables import EndToEndSpec

    spec = EndToEndSpec("figure13", "t", {"smoke": ("bert_tiny",)},
                        (("untuned", {"smoke": 1}), ("untuned", {"smoke": 2}), ("untuned", {"default": 3}),
                         ("pytorch", {}), ("tensorrt", {})))
    row = {"figure": "figure13", "scale": "smoke", "workload": "bert_tiny", "status": "ok", "max_abs_err": 1e-6}
    done = [{**row, "method": "untuned", "budget": 1, "latency_ms": 5.0},
            {**row, "method": "untuned", "budget": 2, "latency_ms": 3.0},
            {**row, "method": "pytorch-eager", "budget": None, "latency_ms": 4.0},
            {**row, "method": "pytorch-inductor", "budget": None, "latency_ms": 2.5}]
    pd.DataFrame(done).to_csv(tmp_path / "e2e.csv", index=False)
    (tmp_path / "provenance.json").write_text(json.dumps({"git_commit": "earlier", "wall_seconds": 99.0}))
    res = reproduce.run_e2e(spec, "smoke", tmp_path, _host(), resume=True)  # nothing tuned again
    # The run that measured the kept rows keeps its provenance inside the resumed run's.
    assert json.loads((tmp_path / "provenance.json").read_text())["earlier_runs"] == [
        {"git_commit": "earlier", "wall_seconds": 99.0}]
    assert [_key(r) for r in res["rows"]][:4] == [_key(d) for d in done]
    assert res["rows"][-1]["status"].startswith("unavailable:")  # tensorrt; untuned@3 is not a smoke entry
    # Resumed again: every row is kept, in the spec's order (tensorrt's still unavailable here), none run.
    again = reproduce.run_e2e(spec, "smoke", tmp_path, _host(), resume=True)
    assert [_key(r) for r in again["rows"]] == [_key(r) for r in res["rows"]]
    table = (tmp_path / "table.md").read_text()
    assert "| bert_tiny | 4.00 | 2.50 | 5.00 (0.80x, 0.50x) | 3.00 (1.33x, 0.83x) | 1.0e-06 |" in table
    assert "untuned@1 is faster than PyTorch eager on 0 of 1 workloads and than inductor on 0 of 1" in table
    assert "untuned@2 is faster than PyTorch eager on 1 of 1 workloads and than inductor on 0 of 1" in table
    assert _key({"workload": "w", "method": "tlm", "budget": 10.0}) != _key({"workload": "w", "method": "tlm-ranked",
                                                                             "budget": 10.0})


def test_methods_spec_covers_the_registry():
    """The `methods` comparison runs every registered method (a new method cannot be left out silently)."""
    from tlm_core.methods import methods

    assert {m for m, _ in FIGURES["methods"].methods} == {m.name for m in methods()}


def test_plot_command_refuses_an_unknown_name(capsys):
    from figures.plot import main

    assert main(["tabel2"]) == 2  # once, an unknown name drew nothing and exited 0
    assert "unknown tabel2" in capsys.readouterr().err


def test_a_table_on_a_cpu_with_its_own_log_reads_it_and_says_so(tmp_path, monkeypatch, host):
    """`search --own-cpu` keeps a log per CPU (data/baselines/TABLE-METHOD-MCPU); a table run on that
    CPU reads it rather than the shared one (unless --shared-log), and its header says so."""
    from benchmarks.reproduce.render import markdown

    monkeypatch.setattr(searchlog, "data_dir", lambda: tmp_path)
    spec, cpu = TABLES["table3"], host.hardware.mcpu
    assert searchlog.own_cpu(host) == cpu
    assert searchlog.table_log(spec, host) is None  # no log of this CPU's: the shared one
    own = searchlog.log_dir(spec, cpu)
    assert own == tmp_path / "baselines" / f"table3-metaschedule-{cpu}" != searchlog.log_dir(spec)
    own.mkdir(parents=True)
    (own / "search.json").write_text(json.dumps({"trials": 64, "segments": []}))
    assert searchlog.table_log(spec, host) == cpu and searchlog.table_log(spec, host, shared=True) is None
    assert searchlog.log_info(spec, cpu)["trials"] == 64 and searchlog.log_info(spec)["trials"] == 0
    prov = {"scale": "default", "subgraphs": 40, "cpu": "x", "target": {"mcpu": cpu}, "git_commit": "0" * 10,
            "date": "2026-12-02", "baseline_log_machine": "this machine", "baseline_log_folder": str(own)}
    head = markdown(spec, [{"row": "tlm@1", "column": "metaschedule@64", "overall_speedup": 1.0}], prov)
    assert "searched on this machine's CPU: its programs were chosen by this CPU's own timings" in head


def test_search_conditions_come_from_each_segments_load_average():
    """A segment that ended with the load above its machine's cores was searched beside other work."""
    from benchmarks.reproduce.metrics import search_conditions

    seg = {"provenance": {"target": {"num_cores": 2}}}
    assert search_conditions({"segments": [{**seg, "load_average": [2.1, 2, 2]}]}) == ["alone"]
    assert search_conditions({"segments": [{**seg, "load_average": [2.1, 2, 2]}, {**seg, "load_average": [3.9, 3, 2]},
                                           {"trials": 64}]}) == ["alone", "beside other work", "unknown"]


def test_a_log_searched_on_another_cpu_says_so(host):
    """The shipped search logs name the machine they were searched on; on another CPU the table says
    its baseline programs were chosen (and its search seconds timed) there."""
    from dataclasses import asdict

    from benchmarks.reproduce import log_info, log_machines

    here = {**asdict(host.hardware), "features": list(host.hardware.features), "tvm": {}}
    same = {"segments": [{"provenance": {"target": here}}]}
    assert log_machines(same, host.hardware) is None
    other = {"segments": [{"provenance": {"target": {**here, "mcpu": "elsewhere", "l2_kb": 1}}}]}
    assert "searched on elsewhere" in log_machines(other, host.hardware)
    # Continued here to 1K (Table 2's log): each machine's part says which trials it searched.
    mixed = {"segments": [{"trials": 64, **other["segments"][0]},
                          {"hash": "a", "trials": 936, "provenance": {"target": here}},
                          {"hash": "b", "trials": 100, "provenance": {"target": here}},
                          {"hash": "b", "trials": 836, "provenance": {"target": here}}]}
    words = log_machines(mixed, host.hardware)
    assert words.startswith("searched partly on elsewhere") and "(the first 64 trials of every subgraph)" in words
    assert "the rest on this machine" in words and "(1,872 trials of 2 subgraphs)" in words
    for spec in TABLES.values():  # every shipped log says where it was searched
        assert all(seg["provenance"]["target"]["mcpu"] for seg in log_info(spec)["segments"])


def test_a_model_trained_on_another_cpu_says_so(host, tmp_path):
    """A model whose demonstration data was measured on another CPU (a shipped card's "hardware", or an
    iterative run's target.json) is named as such in the table; one of this machine, or one that names
    no hardware (pretrained only), is not."""
    from tlm_core.model.checkpoint import trained_elsewhere

    here = json.loads(host.hardware.to_json())
    shipped, run = tmp_path / "model", tmp_path / "iterate"
    shipped.mkdir()
    (run / "model-3").mkdir(parents=True)
    (shipped / "training.json").write_text(json.dumps({"hardware": {**here, "mcpu": "elsewhere", "l2_kb": 1}}))
    (run / "target.json").write_text(json.dumps(here))
    elsewhere = trained_elsewhere(shipped, host.hardware)
    assert elsewhere.startswith("trained on programs measured on elsewhere") and host.hardware.mcpu in elsewhere
    assert trained_elsewhere(run / "model-3", host.hardware) is None
    assert trained_elsewhere(tmp_path, host.hardware) is None
    spec, cells, prov = reproduce.run_cells(Path(__file__).parents[1] / "results" / "table2" / "default")
    assert "The model was" not in reproduce.markdown(spec, cells, {**prov, "model_machine": "this machine"})
    assert f"The model was {elsewhere}." in reproduce.markdown(spec, cells, {**prov, "model_machine": elsewhere})


def test_hardware_prompt_measures_both_prompts_side_by_side(host, tmp_path):
    """Greedy programs for this host's space, prompted with this host's hardware and another's, both
    measured here; a subgraph name that is not in the table is a one-line error."""
    import dataclasses

    from benchmarks import hardware_prompt

    other = tmp_path / "other.json"
    other.write_text(dataclasses.replace(host.hardware, mcpu="elsewhere", simd_bits=128).to_json())
    out = tmp_path / "run"
    model = Path(__file__).parents[1] / "data" / "model"
    summary = hardware_prompt.run("table2", other, model, ["fused_matmul5_add5_tir_tanh"],
                                  out, retime=1, seed=0)
    assert summary["subgraphs"] == summary["measured_both"] == 1
    df = pd.read_csv(out / "programs.csv")
    assert sorted(df.prompt) == ["other", "this host"] and (df.status == "ok").all() and (df.timings == 2).all()
    assert sorted(df.prompt_mcpu) == sorted([host.hardware.mcpu, "elsewhere"])
    assert json.loads((out / "provenance.json").read_text())["other_hardware"]["mcpu"] == "elsewhere"
    assert hardware_prompt.main(["--other", str(other), "--subgraphs", "nope", "--out", str(tmp_path / "x")]) == 2


def test_a_stopped_search_keeps_its_trials_and_goes_on_from_them(tmp_path, monkeypatch, host):
    """`search` extends the log one subgraph at a time. Stopped (SIGTERM) mid-subgraph, the log keeps
    what was measured and its segment says so; run again, it asks only for the trials missing, marks a
    subgraph whose space ran out and never searches it again; the log's trials are what all reached."""
    import os
    import signal
    import time
    from dataclasses import replace

    from tvm.s_tir import meta_schedule as ms

    from tlm_core.ir.tasks import structural_hash

    spec = replace(TABLES["table2"], subgraphs=3)
    folder = tmp_path / "log"
    folder.mkdir()
    shutil.copy(reproduce.log_dir(TABLES["table2"]) / "database_workload.json", folder)
    index = {structural_hash(ms.database.Workload.from_json(json.loads(line)).mod): i
             for i, line in enumerate((folder / "database_workload.json").read_text().splitlines())}
    a, b, c = (t for _, t in reproduce.subgraphs(spec))

    def fake_child(name, tasks, target, budget, work_dir, seed, rpc=None):
        """Commits `budget` trials, except: b is stopped after 2 the first time, c's space holds 1 program."""
        os.setpgrp()
        (t,) = tasks
        asked = tmp_path / "asked.txt"
        asked.write_text(asked.read_text() + f"{t.name}:{budget}\n" if asked.exists() else f"{t.name}:{budget}\n")
        stop = t.hash == b.hash and not (tmp_path / "stopped").exists()
        n = 2 if stop else 1 if t.hash == c.hash else budget
        with (Path(work_dir) / "database_tuning_record.json").open("a") as f:
            f.writelines(f"[{index[t.hash]}, {{}}]\n" for _ in range(n))
        if stop:
            (tmp_path / "stopped").touch()
            os.kill(os.getppid(), signal.SIGTERM)
            time.sleep(60)  # killed by the parent's handler

    # Patched where `search` looks them up (a name re-exported by the package is a copy of the binding).
    monkeypatch.setattr(searchlog, "log_dir", lambda _spec, _cpu=None: folder)
    monkeypatch.setattr(searchlog, "search_child", fake_child)
    with pytest.raises(KeyboardInterrupt):
        reproduce.search(spec, 4, host)
    info = reproduce.log_info(spec)
    assert info["trials"] == 0 and info["reached"] == {a.hash: 4, b.hash: 0, c.hash: 0}
    assert [(s["subgraph"], s["trials"]) for s in info["segments"]] == [(a.name, 4), (b.name, 2)]
    assert info["segments"][-1]["how"].startswith("interrupted")

    info = reproduce.search(spec, 4, host)  # goes on: b needs 2 more, c gives 1 of 4 and is exhausted
    assert info["trials"] == 4 and info["exhausted"] == [c.hash]
    info = reproduce.search(spec, 8, host)
    assert info["trials"] == 8 and reproduce.log_counts(folder) == {a.hash: 8, b.hash: 8, c.hash: 1}
    asked = (tmp_path / "asked.txt").read_text().split()
    assert asked == [f"{a.name}:4", f"{b.name}:4", f"{b.name}:2", f"{c.name}:4", f"{a.name}:4", f"{b.name}:4"]
    before = reproduce.log_info(spec)
    assert reproduce.search(spec, 8, host)["segments"] == before["segments"]  # nothing left to search


def test_the_shipped_log_is_gzip_and_the_working_copy_never_loses_a_trial(tmp_path):
    """data/ ships the log compressed; MetaSchedule appends to a plain working copy. A fresh clone gets
    the copy from the shipped log, a copy ahead of it (a search killed mid-subgraph) is shipped, and
    a copy that disagrees with it is a one-line user error, never a silent loss of either's trials."""
    import gzip

    from tlm_core.errors import UserError

    work, shipped = tmp_path / reproduce.RECORDS, tmp_path / reproduce.SHIPPED
    lines = [f"[{i % 3}, {{\"trial\": {i}}}]\n" for i in range(5)]
    work.write_text("".join(lines[:3]))
    reproduce.working_log(tmp_path)  # the first search of a log kept plain: it is shipped
    assert reproduce.log_records(tmp_path) == [line.strip() for line in lines[:3]]
    first = shipped.read_bytes()
    reproduce.ship_log(tmp_path)
    assert shipped.read_bytes() == first  # deterministic: a commit changes only with the trials
    work.unlink()
    reproduce.working_log(tmp_path)  # a fresh clone
    assert work.read_text() == "".join(lines[:3])
    with work.open("a") as f:
        f.writelines(lines[3:])
    reproduce.working_log(tmp_path)  # killed before its segment: its trials are kept and shipped
    assert len(reproduce.log_records(tmp_path)) == 5 and work.read_text() == "".join(lines)
    work.write_text("".join(lines[:2]))
    reproduce.working_log(tmp_path)  # behind the shipped log (it went on elsewhere): replaced
    assert work.read_text() == "".join(lines)
    work.write_text("".join(lines[:4]) + "[0, {}]\n")
    with pytest.raises(UserError, match="not a continuation"):
        reproduce.working_log(tmp_path)
    with gzip.open(shipped, "rt") as f:
        assert f.read() == "".join(lines)  # neither side was touched
    assert reproduce.log_records(tmp_path / "none") == []


def test_search_time_to_b_trials_takes_each_segment_at_its_own_pace():
    """A log searched all at once and then continued one subgraph at a time (maybe on another machine):
    the time to B trials counts each subgraph's trials at the pace of the segment that searched them."""
    info = {"segments": [{"trials": 4, "seconds": 30.0},  # both subgraphs at once: 6 trials committed
                         {"hash": "a", "trials": 4, "seconds": 40.0}, {"hash": "b", "trials": 0, "seconds": 9.0}]}
    pace = reproduce.search_pace(info, {"a": 8, "b": 2})
    assert pace == {"a": [(4, 5.0), (4, 10.0)], "b": [(2, 5.0)]}
    assert reproduce.seconds_to(pace["a"], 6) == 4 * 5.0 + 2 * 10.0
    assert reproduce.seconds_to(pace["b"], 1000) == 10.0  # a small space: its 2 trials are all it took
    # A log of one shared segment: every trial at the same pace, as before per-subgraph search.
    assert reproduce.search_pace({"segments": [{"trials": 4, "seconds": 30.0}]}, {"a": 4, "b": 2}) == {
        "a": [(4, 5.0)], "b": [(2, 5.0)]}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_search_runs_its_trials_on_the_servers_of_an_rpc_tracker(tmp_path):
    """`search --rpc HOST:PORT:KEY`: TVM's own tracker and server (here both on this machine) run the
    trials; the log holds real timings and its segment names the runner. A wrong tracker is one line."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from tlm_core.errors import UserError
    from tlm_core.methods.metaschedule import Tracker

    with pytest.raises(UserError, match="HOST:PORT:KEY"):
        Tracker.parse("localhost:9190")
    port = _free_port()
    with pytest.raises(UserError, match="no RPC tracker answers"):
        Tracker("127.0.0.1", port, "tlm").servers()
    assert reproduce.main(["search", "table2", "--rpc", "nowhere"]) == 2
    # Each in a session of its own: TVM's tracker and server run in a worker process that outlives a
    # terminated parent, so the whole group is stopped at the end.
    procs = [subprocess.Popen([sys.executable, "-m", "tvm.exec.rpc_tracker", "--host", "127.0.0.1", "--port",
                               str(port), "--port-end", str(port + 1), "--silent"], start_new_session=True)]
    try:
        tracker, server = Tracker("127.0.0.1", port, "tlm-test"), _free_port()
        for _ in range(360):  # the tracker binds, then the server registers: ~50 s on 2 busy cores
            time.sleep(0.5)
            try:
                tracker.servers()
                break
            except UserError as err:
                if "no server" in str(err) and len(procs) == 1:
                    procs.append(subprocess.Popen([sys.executable, "-m", "tvm.exec.rpc_server", "--tracker",
                                                   f"127.0.0.1:{port}", "--key", "tlm-test", "--host", "127.0.0.1",
                                                   "--port", str(server), "--port-end", str(server + 1),
                                                   "--silent"], start_new_session=True))
        assert tracker.servers() == 1
        # In a fresh process, as the CLI runs it: `search` forks its MetaSchedule child, and a fork of a
        # process whose OpenMP pool is running (this one's, after the tests before) crashes in libgomp.
        script = (
            "import json\n"
            "from pathlib import Path\n"
            "from benchmarks import reproduce\n"
            "from benchmarks.reproduce import searchlog\n"
            "from benchmarks.tables import TABLES\n"
            "from tlm_core.methods.metaschedule import Tracker\n"
            "from tlm_core.ir.target import resolve_target\n"
            "small = reproduce.subgraphs(TABLES['table2'])[10]  # bert_tiny's fused_matmul3_add4: 17 MFLOP\n"
            "searchlog.subgraphs = lambda spec, n=None: [small]  # where `search` looks them up\n"
            f"searchlog.log_dir = lambda spec, cpu=None: Path({str(tmp_path / 'log')!r})\n"
            f"info = reproduce.search(TABLES['table2'], 4, resolve_target('host'), rpc=Tracker('127.0.0.1', {port}, "
            "'tlm-test'))\n"
            "print(json.dumps(info))\n")
        done = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parents[1], capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        info = json.loads(done.stdout)
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
    assert info["trials"] == 4 and info["segments"][0]["runner"].startswith(f"rpc tracker 127.0.0.1:{port}")
    runs = [json.loads(line)[1][1] for line in (tmp_path / "log" / "database_tuning_record.json").open()]
    assert len(runs) == 4 and all(0 < r[0] < 1 for r in runs)  # real timings, not MetaSchedule's 1e10 failures


def test_a_column_the_log_has_not_reached_says_how_far_it_is_and_how_to_go_on(tmp_path):
    # The committed run as it would be from a log at 64 trials, 1000 on three subgraphs: no 1K programs.
    run = tmp_path / "run"
    shutil.copytree(Path(__file__).parents[1] / "results" / "table2" / "default", run)
    subs = pd.read_csv(run / "subgraphs.csv")
    subs[subs.label != "ansor@1000"].to_csv(run / "subgraphs.csv", index=False)
    prov = json.loads((run / "provenance.json").read_text())
    hashes = list(dict.fromkeys(subs.hash))
    prov["baseline_log"] = {"method": "ansor", "trials": 64, "subgraphs": len(hashes),
                            "reached": {h: 1000 if i < 3 else 64 for i, h in enumerate(hashes)}}
    (run / "provenance.json").write_text(json.dumps(prov))
    spec, cells, _ = reproduce.run_cells(run)
    missing = [c for c in cells if c["baseline_trials"] == 1000]
    assert missing and all(c["overall_speedup"] is None for c in missing)
    assert all(c["overall_speedup"] is not None for c in cells if c["baseline_trials"] == 64)
    assert f"has 64 trials on every subgraph, 1000 on 3 of {len(hashes)}" in missing[0]["status"]
    assert "benchmarks.reproduce search table2 --trials 1000" in missing[0]["status"]


def _gz(text: str) -> bytes:
    import gzip

    return gzip.compress(text.encode(), mtime=0)


_RECORDS = "".join(f'[{i % 2}, {{"trial": {i}}}]\n' for i in range(100))
_TRUNCATED = _gz(_RECORDS)[: len(_gz(_RECORDS)) // 2]  # a copy or a commit cut short
BROKEN_LOGS = {  # case -> (the log folder's files, the file the error names, what it says to do)
    "truncated gz": ({"database_tuning_record.json.gz": _TRUNCATED},
                     "database_tuning_record.json.gz", "git checkout --"),
    "not gzip": ({"database_tuning_record.json.gz": b"[0, {}]\n"}, "database_tuning_record.json.gz",
                 "git checkout --"),
    "garbage search.json": ({"search.json": b"{\"trials\": 64, \"segm"}, "search.json", "git checkout --"),
    "binary search.json": ({"search.json": b"\x1f\x8b\x08\x00\xff\xfe"}, "search.json", "git checkout --"),
    "another file as search.json": ({"search.json": b'{"table": "table2", "cells": []}'}, "search.json",
                                    "git checkout --"),
    "a broken line in the working copy": ({"database_tuning_record.json": b'[0, {}]\n[1, {"tra\n'},
                                          "database_tuning_record.json: line 2",
                                          "move database_tuning_record.json away"),
    "a broken line in the shipped log": ({"database_tuning_record.json.gz": _gz('[0, {}]\n\nnot json\n')},
                                         "database_tuning_record.json.gz: line 3", "git checkout --"),
    "a line of another file in the shipped log": ({"database_tuning_record.json.gz": _gz('{"key": "k"}\n')},
                                                  "database_tuning_record.json.gz: line 1", "git checkout --"),
}


@pytest.mark.parametrize("case", BROKEN_LOGS)
def test_a_broken_search_log_is_one_line_naming_the_file_and_what_to_do(case, tmp_path, monkeypatch, capsys):
    """A search log (shipped .gz, search.json, working copy) that is truncated, corrupted or not a search
    log stops `search` (and a table run) before anything runs: one line, no traceback."""
    folder = tmp_path / "log"
    folder.mkdir()
    shutil.copy(reproduce.log_dir(TABLES["table2"]) / "database_workload.json", folder)
    files, names, fix = BROKEN_LOGS[case]
    for name, data in files.items():
        (folder / name).write_bytes(data)
    monkeypatch.setattr(searchlog, "log_dir", lambda _spec, _cpu=None: folder)
    monkeypatch.setattr(searchlog, "search_child", lambda *a: pytest.fail("searched a broken log"))
    assert reproduce.main(["search", "table2", "--trials", "1"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith(f"reproduce: error: {folder / names}"), err
    assert fix in err, err


def test_a_log_whose_records_are_not_tuning_records_is_a_user_error(tmp_path, monkeypatch):
    """Records of the right shape whose content MetaSchedule cannot read: the file and line, not TVM's error."""
    from tlm_core.errors import UserError

    folder = tmp_path / "log"
    folder.mkdir()
    shutil.copy(reproduce.log_dir(TABLES["table2"]) / "database_workload.json", folder)
    (folder / reproduce.SHIPPED).write_bytes(_gz('[0, {"not": "a record"}]\n'))
    monkeypatch.setattr(searchlog, "log_dir", lambda _spec, _cpu=None: folder)
    with pytest.raises(UserError, match=r"database_tuning_record.json.gz: line 1 is not a MetaSchedule tuning record"):
        reproduce.trials_in_order(TABLES["table2"])
    (folder / "database_workload.json").write_text("[1, 2]\n")
    with pytest.raises(UserError, match=r"database_workload.json: line 1 is not a MetaSchedule workload"):
        reproduce.trials_in_order(TABLES["table2"])
    (folder / "database_workload.json").unlink()
    with pytest.raises(UserError, match=r"database_workload.json: no such file"):
        reproduce.log_counts(folder)


def test_pytorch_linear_times_each_shape_warm_and_cold(tmp_path, capsys):
    """Every shape gets a warm and a cold median from its own runs, the cold one cycling through enough
    weight copies to exceed the byte budget; a malformed shape is a one-line error, exit 2."""
    from benchmarks import pytorch_linear

    out = tmp_path / "linear.json"
    assert pytorch_linear.main(["--shapes", "4x16x8,2x8x32", "--runs", "3", "--calls", "4",
                                "--cold-bytes", str(4096), "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [r["shape"] for r in result["shapes"]] == ["4x16x8", "2x8x32"]
    for r in result["shapes"]:
        assert r["weight_copies"] * 4 * r["k"] * r["n"] >= 4096
        assert len(r["warm_runs_ms"]) == len(r["cold_runs_ms"]) == 3
        assert r["warm_ms"] == sorted(r["warm_runs_ms"])[1] > 0 and r["cold_ms"] == sorted(r["cold_runs_ms"])[1] > 0
    assert "command" in json.loads(Path(f"{out}.provenance.json").read_text())
    capsys.readouterr()
    assert pytorch_linear.main(["--shapes", "128x768", "--out", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "128x768" in err
