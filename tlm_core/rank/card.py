"""The ranker's card (README.md beside it): every number read from its training.json."""

from __future__ import annotations

from pathlib import Path

from tlm_core.rank import features as F


def _metrics_table(m: dict) -> list[str]:
    lines = ["| k | groups | regret, ranker | regret, random k | recall, ranker | recall, random k | ranker better |",
             "|---|---|---|---|---|---|---|"]
    for k, v in m["k"].items():
        lines.append(f"| {k} | {v['groups']} | {v['ranker_regret']:.3f} | {v['random_regret']:.3f} | "
                     f"{v['ranker_recall']:.1%} | {v['random_recall']:.1%} | {v['ranker_beats_random_share']:.0%} |")
    return lines


def _selection(sel: dict | None) -> list[str]:
    if not sel:
        return ["No comparison recorded (`tlm train ranker --compare` writes one)."]
    lines = [f"Chosen on a dev split ({sel['dev_rule']}; {sel['dev']['groups']} groups, "
             f"{sel['dev']['records']:,} records), never on the held-out subgraphs. Dev regret on model-generated "
             "records (ranker / random k):", "",
             "| configuration | fit (s) | regret@1 | regret@4 | regret@10 |", "|---|---|---|---|---|"]
    for name, c in sel["configs"].items():
        k = c["generated_records"]["k"]

        def cell(kk):
            return f"{k[kk]['ranker_regret']:.3f} / {k[kk]['random_regret']:.3f}" if kk in k else "-"

        lines.append(f"| {name} | {c['fit_seconds']} | {cell('1')} | {cell('4')} | {cell('10')} |")
    return lines


def write_card(folder: str | Path, doc: dict) -> None:
    cfg, tr, ho = doc["config"], doc["train"], doc["heldout_data"]
    prov = doc["provenance"]
    blocks = ", ".join(cfg["blocks"])
    text = [
        "# TLM ranker: which generated candidates to measure",
        "",
        "An XGBoost ranking model that scores candidate programs of one subgraph on one CPU from their",
        "features (higher = predicted faster). `tlm-ranked` generates max(256, 8 x budget) programs per",
        "subgraph with the TLM model, scores them with this ranker and measures only the best-scored",
        "budget (1 in 8 beyond the first drawn at random from the rest). All numbers below are read from",
        "`training.json`; `heldout.npz` holds the held-out feature table they were computed on.",
        "",
        "| | |",
        "|---|---|",
        f"| model file | `{doc['ranker']['path'].rsplit('/', 1)[-1]}/ranker.ubj`, sha256 {doc['ranker']['sha256']}, "
        f"{doc['model_file_bytes'] / 1e6:.2f} MB |",
        f"| objective | `{cfg['objective']}`, label `{cfg['label']}`; query group = one subgraph on one CPU |",
        f"| trees | {cfg['rounds']} rounds, depth {cfg['max_depth']}, eta {cfg['learning_rate']}, "
        f"subsample {cfg['subsample']}, colsample {cfg['colsample_bytree']}, seed {cfg['seed']} |",
        f"| features | v{doc['feature_version']}, {doc['features']} columns: {blocks} (config.json lists them) |",
        f"| data | `{doc['source']}` (sha256 {doc['source_sha256']}): {tr['records']:,} records of "
        f"{tr['subgraphs']} training subgraphs x {len(tr['groups_per_cpu'])} CPUs "
        f"({', '.join(f'{c} {n}' for c, n in tr['groups_per_cpu'].items())} groups), {tr['failed_records']} failed |",
        f"| held out | {ho['records']:,} records of {ho['subgraphs']} subgraphs ({ho['groups']} groups): "
        f"{doc['split']} |",
        f"| training time | {doc['fit_seconds']} s fit ({cfg['threads']} threads); the feature table "
        f"{doc['feature_seconds']} s from per-store features cached in .cache/rank/ (computing them the first time: "
        "~20-45 min of one core) |",
        f"| scoring | {doc['scoring_us_per_candidate']} us per candidate (features excluded) |",
        f"| commit | {prov['git_commit']}{' (dirty)' if prov['git_dirty'] else ''}, {prov['date']} |",
        f"| versions | {', '.join(f'{k} {v}' for k, v in prov['versions'].items())} |",
        "",
        "## Features",
        "",
        f"{len(F.TASK_NAMES)} task (log2 FLOPs), {len(F.HARDWARE_NAMES)} hardware (SIMD bits, cores, vector "
        "registers, log2 L1d/L2/L3 KiB, AVX-512), "
        f"{len(F.DECISION_NAMES)} read from the decisions (sketch; log2 tile factors per tiling level summed over "
        "loops; the innermost (vectorized) factor against the SIMD lanes; the register tile against the vector "
        "registers; parallel and vectorize extents against their limits, the cores and the lanes; unroll; compute "
        f"locations), {len(F.STORE_NAMES)} from MetaSchedule's `PerStoreFeature` of the postprocessed schedule "
        "(164 per store: sum and max over stores, and the store count). See `tlm_core/rank/features.py`.",
        "",
        "## Held-out metrics",
        "",
        "Per group (subgraph x CPU) with more than k records: regret@k = the best latency among the k best-scored "
        "records / the group's best (geometric mean over groups; 1 = always found; a failed record counts as the "
        "group's slowest), recall@k = share of groups whose best is among the k; `random k` is the exact "
        "expectation for k records drawn at random from the same group. *ranker better* = share of groups where "
        "the ranker's regret is below random's expectation.",
        "",
        "Model-generated records only (what `tlm-ranked` ranks):",
        "",
        *_metrics_table(doc["heldout"]["generated_records"]),
        "",
        "All records (random round-0 programs too):",
        "",
        *_metrics_table(doc["heldout"]["all_records"]),
        "",
        "Groups hold ~18 measured records (the demonstration data), far fewer than the 256+ candidates "
        "`tlm-ranked` ranks: these numbers say how well the ranker orders programs of unseen subgraphs, not the "
        "latency `tlm-ranked` reaches.",
        "",
        "## How the configuration was chosen",
        "",
        *_selection(doc.get("selection")),
        "",
        "## Checked by",
        "",
        "`tests/test_rank.py`: the held-out metrics above come out again from `heldout.npz` and `ranker.ubj`, the "
        "ranker beats random picks at k = 1 and 4, and rows of `heldout.npz` equal the features rebuilt from the "
        "records' (task, sketch, decisions).",
        "",
        "## Make it again",
        "",
        "`tlm train ranker --compare` (dev comparison, selection.json), then `tlm train ranker --out data/ranker`:",
        "per-store features of every record take ~20-45 min of one core the first time (resumable: "
        "`--max-seconds` stops and a rerun continues from the cache), then seconds.",
        "",
    ]
    Path(folder, "README.md").write_text("\n".join(text))
