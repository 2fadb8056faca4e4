"""Ship a trained model: copy its save_pretrained files and write its card from the runs that made it.

Every number on the card is read from the runs' own files (summary.json, log.jsonl,
convergence.jsonl, the demonstration records): nothing is typed in by hand.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd

from tlm_core.errors import read_json
from tlm_core.ir.target import describe
from tlm_core.provenance import provenance
from tlm_core.train.demonstrations import timed_on
from tlm_core.train.iterate import read_convergence

FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


def _summary(folder: Path) -> dict:
    path = folder / "summary.json"
    return read_json(path, "written by `tlm train` at the end of a run: run it again to rewrite it") if path.exists() else {}


def hardware_of(iterate_dir: str | Path | None, target, model_dir: str | Path | None = None) -> list[dict]:
    """The CPUs a model is for: its iterative run's (a run measures on one machine), else those its
    SFT run was tuned on (`tlm train sft`'s hardware.json: one model for every CPU), else `target`'s."""
    from tlm_core.model.checkpoint import trained_on

    run_cpu = Path(iterate_dir) / "target.json" if iterate_dir else None
    if run_cpu and run_cpu.exists():
        return [read_json(run_cpu, "the hardware of the run, written by `tlm train iterate`: restore it")]
    return (trained_on(model_dir) if model_dir else []) or [json.loads(target.hardware.to_json())]


def sft_history(model_dir: str | Path) -> list[dict]:
    """The SFT runs that made a model, oldest first: each run's `--init` back to the first run whose
    init was not an SFT run. Where that init is a shipped model (its training.json), its own rounds come
    first, named by its folder: a model fine-tuned from data/model carries data/model's training too."""
    rounds, folder, seen = [], Path(model_dir), set()
    while (s := _summary(folder)).get("stage") == "sft" and folder.resolve() not in seen:
        seen.add(folder.resolve())
        rounds.insert(0, {"model": folder.name, **s})
        if not s.get("init"):
            return rounds
        folder = Path(s["init"])
    base = folder / "training.json"
    if base.exists():
        prior = read_json(base, "a shipped model's facts, written by `tlm train ship`: ship it again to rewrite them")
        rounds = [{**r, "model": f"{folder.as_posix()} {r['model']}"} for r in prior.get("sft_rounds", [])] + rounds
    return rounds


def ship(model_dir: str | Path, to: str | Path, pretrain_dir: str | Path, iterate_dir: str | Path | None,
         records, target) -> dict:
    """Copy the model in `model_dir` to `to` with a README.md card; returns the card's facts."""
    model_dir, to, pretrain_dir = Path(model_dir), Path(to), Path(pretrain_dir)
    pre = _summary(pretrain_dir)
    rounds, last = [], None
    if iterate_dir:
        iterate_dir = Path(iterate_dir)
        shipped = Path(model_dir).resolve()
        # The rounds that made the shipped model: later models of the same run are not its history.
        last = int(shipped.name.split("-")[1]) if shipped.parent == iterate_dir.resolve() else None
        for d in sorted(iterate_dir.glob("model-*"), key=lambda p: int(p.name.split("-")[1])):
            if last is not None and int(d.name.split("-")[1]) > last:
                continue
            if _summary(d):
                rounds.append({"model": d.name, **_summary(d)})
    elif _summary(model_dir).get("stage") == "sft":  # `tlm train sft` made it, maybe from earlier SFT runs
        rounds = sft_history(model_dir)
    # Measuring wall time, where every round of the model's history logged it (runs before 2026-11-30 did not).
    markers = [read_json(m, "a round's marker, written by `tlm train iterate`: run it again to rewrite it")
               for m in sorted(Path(iterate_dir).glob("round-*.measured"))
               if last is None or int(m.name.split("-")[1].split(".")[0]) <= last] if iterate_dir else []
    measuring = (round(sum(m["seconds"] for m in markers) / 3600, 2)
                 if markers and all("seconds" in m for m in markers) else None)
    conv_path = Path(iterate_dir) / "convergence.jsonl" if iterate_dir else None
    convergence = read_convergence(conv_path) if conv_path and conv_path.exists() else []
    # Only records timed on the model's CPUs taught it; the store may hold other CPUs'.
    hardware = hardware_of(iterate_dir, target, model_dir)
    per_cpu = [(h, timed_on(records, h)) for h in hardware]
    records = pd.concat([r for _, r in per_cpu]) if len(per_cpu) > 1 else per_cpu[0][1]
    ok = records[records.status == "ok"]
    # A run goes on after the round that made the model: what the model saw is its round's point.
    seen = next((c for c in convergence if last is not None and c["round"] == last), None)
    # Copied once every file of the runs has been read: a bad one stops the ship before anything is written.
    to.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        if (model_dir / name).exists():
            shutil.copy2(model_dir / name, to / name)
    facts = {
        "model_dir": str(model_dir),
        "hardware": hardware[0] if len(hardware) == 1 else hardware,
        "pretrain": pre,
        "sft_rounds": rounds,
        "measured_programs": seen["programs"] if seen else len(records),
        "measured_ok": seen["ok"] if seen else len(ok),
        # Records of integer-input subgraphs timed on older measurement inputs: kept, not used.
        "measured_stale": int(records["stale"].sum()) if "stale" in records else 0,
        "measured_subgraphs": int(records.task_hash.nunique()),
        "measured_on": ([{"hardware": hardware[0], "programs": seen["programs"]}] if seen else
                        [{"hardware": h, "programs": len(r)} for h, r in per_cpu]),
        "convergence": [c for c in convergence if last is None or c["round"] <= last],
        "training_hours": round((pre.get("seconds", 0) + sum(r.get("seconds", 0) for r in rounds)) / 3600, 2),
        "measuring_hours": measuring,
        "size_mb": round((to / "model.safetensors").stat().st_size / 2**20, 1),
        "provenance": provenance(target, command="tlm train ship"),
    }
    (to / "training.json").write_text(json.dumps(facts, indent=2, default=str))
    (to / "README.md").write_text(_card(facts))
    return facts


def refresh(model_dir: str | Path) -> None:
    """Rewrite a shipped model's README.md from its training.json (the facts of the runs that made it)."""
    path = Path(model_dir) / "training.json"
    (Path(model_dir) / "README.md").write_text(_card(json.loads(path.read_text())))


def _card(f: dict) -> str:
    pre, prov = f["pretrain"], f["provenance"]
    lines = [
        "---",
        "library_name: transformers",
        "license: apache-2.0",
        "tags: [tensor-compiler, tvm, metaschedule, tlm, gpt2]",
        "---",
        (f"# TLM `small` model for the {len(f['hardware'])} CPUs its demonstration data was measured on"
         if isinstance(f.get("hardware"), list) else "# TLM `small` model for the CPU its demonstration data was measured on"),
        "",
        "A GPT-2 (Hugging Face `GPT2LMHeadModel`) that writes the decisions of TVM MetaSchedule schedules in",
        "the project's tensor language. Load it with `AutoModelForCausalLM.from_pretrained` (the tokenizer is",
        "saved beside it); `tlm generate` uses it by default. All numbers below come from the runs that made",
        "it (`training.json` has them in full).",
        "",
        "| | |",
        "|---|---|",
        f"| size | {pre.get('size')}: {pre.get('parameters', 0):,} parameters, context {pre.get('n_positions')} tokens, {f['size_mb']} MB |",
        (f"| pretraining | {pre.get('train_sentences', 0):,} random sentences of the training workloads "
        f"({pre.get('eval_sentences', 0):,} held out), {pre.get('steps')} steps, {pre.get('tokens_seen', 0):,} tokens, "
        f"{pre.get('seconds', 0) / 3600:.2f} h |"),
        f"| pretraining loss (decision values) | train {pre.get('final_train_loss')}, held-out {pre.get('final_eval_loss')} |",
        (f"| demonstration data | {f['measured_programs']:,} measured programs ({f['measured_ok']:,} valid) of "
        f"{f['measured_subgraphs']:,} training subgraphs"
        + (f"; {f['measured_stale']:,} of them timed on older measurement inputs (integer-input subgraphs, "
           "measured again; the old records are kept, not used)" if f.get("measured_stale") else "") + " |"),
    ]
    if f.get("measured_on"):
        lines.append("| measured on | " + "; ".join(f"{m['programs']:,} programs on {describe(m['hardware'])}"
                                                   for m in f["measured_on"]) + " |")
    else:  # shipped before the card counted programs per hardware: the machine that shipped it measured them
        lines.append(f"| measured on | {describe(prov.get('target') or {})}, the machine that shipped it |")
    for r in f["sft_rounds"]:
        lines.append(f"| SFT {r['model']} | {r.get('train_sentences', 0):,} programs, {r.get('steps')} steps, "
                     f"final loss {r.get('final_train_loss')}, {r.get('seconds', 0) / 60:.1f} min |")
    lines += [
        # Pretraining may have run on another machine than the one that shipped the model: no "on" here.
        (f"| total training time | {f['training_hours']} h: pretraining {pre.get('seconds', 0) / 3600:.2f} h, "
         f"SFT {sum(r.get('seconds', 0) for r in f['sft_rounds']) / 3600:.2f} h |"),
    ]
    if f.get("measuring_hours") is not None:
        lines.append(f"| measuring (generate, build, run) | {f['measuring_hours']} h, the iterative run's rounds |")
    lines += [
        f"| shipped on | {prov.get('cpu', '?')} |",
        f"| commit | {prov.get('git_commit', '?')}{' (dirty)' if prov.get('git_dirty') else ''} |",
        f"| date | {prov.get('date', '?')} |",
        f"| versions | {', '.join(f'{k} {v}' for k, v in prov.get('versions', {}).items())} |",
        "",
    ]
    if f["convergence"]:
        lines += ["## Convergence of the demonstration data (Figure 9)", "",
                  "| round | model | programs measured | best weighted latency of the training subgraphs (ms) |",
                  "|---|---|---|---|"]
        lines += [f"| {c['round']} | {c['model']} | {c['programs']:,} | {c['weighted_latency_s'] * 1e3:.3f} |"
                  for c in f["convergence"]]
        lines.append("")
    lines += [
        "## How it was made",
        "",
        "`tlm train pretrain` (loss on decision values only, prompt-shared batches), `tlm train collect`",
        "(random programs of every training subgraph measured on a machine; with `--method metaschedule`,",
        "the best programs of MetaSchedule's search), `tlm train iterate` (generate ->",
        "measure -> SFT, measuring overlapping training) or `tlm train sft` (the fastest measured program of",
        "each training subgraph on each CPU), then `tlm train ship`. Test-workload subgraphs",
        "(structural hash) are in none of the training data.",
        "",
        "## On another CPU",
        "",
        "Every prompt names the hardware (kind, ISA features, cores, SIMD width, vector registers, caches).",
        "On a CPU not listed under *measured on*, those tokens are new to the model and its choices are out",
        "of distribution: `python -m benchmarks.hardware_prompt` measures, on the host, the greedy programs",
        "written for its own hardware tokens beside those written for a CPU the model knows (the Zen 3",
        "model on a Zen 4 host: results/archive/hardware-prompt-znver4/). `tlm` uses the data/model-<mcpu>",
        "model whose data was measured on the host's exact hardware alone, where one won a sitting there,",
        "else data/model. For a new CPU: `tlm train collect` and `tlm train iterate` on it, then",
        "`tlm train ship --to data/model-<mcpu>`.",
        "",
    ]
    return "\n".join(lines)
