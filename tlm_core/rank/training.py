"""Train, judge and write a ranker folder (what `tlm train ranker` runs), and compare configurations.

`train_ranker` fits on every measured record of the training subgraphs except the validation 5%,
judges on those (never seen by the ranker, nor by the SFT), and writes into the output folder:
ranker.ubj + config.json (`Ranker.save`), heldout.npz (the held-out feature table: the test of
meaning recomputes the held-out metrics from it), training.json (provenance, data, timings,
metrics) and README.md (the card, every number read from training.json).

`compare` chooses between configurations without looking at the held-out subgraphs: it splits the
training subgraphs again (a content hash, 15% "dev"), fits each configuration on the rest and
reports dev metrics; `tlm train ranker --compare` writes them to selection.json.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from tlm_core.errors import UserError
from tlm_core.rank import features as F
from tlm_core.rank import records as R
from tlm_core.rank.ranker import MODEL_FILE, Ranker, RankerConfig, evaluate, fit, split
from tlm_core.ui import log

HELDOUT_FILE = "heldout.npz"
DEV_FRACTION = 0.15


def build_table(source, cfg: RankerConfig, seconds: float | None = None) -> tuple[R.Table, dict]:
    """(table, facts): the records of `source` as features; per-store features cached and resumable."""
    from tlm_core.train.demonstrations import load_records

    start = time.perf_counter()
    df = R.usable(load_records(source))
    tasks = R.tasks_by_hash()
    unknown = ~df.task_hash.isin(tasks)
    if unknown.any():
        log(f"left out {int(unknown.sum())} records of {df.task_hash[unknown].nunique()} subgraphs that are not "
            "training subgraphs of this checkout")
        df = df[~unknown]
    rows = None
    if "stores" in cfg.blocks:
        # The held-out groups first: a run stopped by its time limit can still be judged.
        rows, done_v = R.store_rows_of(df[df.validation], tasks, seconds=seconds)
        left = None if seconds is None else seconds - (time.perf_counter() - start)
        more, done_t = R.store_rows_of(df[~df.validation], tasks, seconds=left)
        rows.update(more)
        if not (done_v and done_t):
            missing = int((~df.key.isin(rows)).sum())
            raise UserError(f"per-store features of {missing} records are not computed yet (time limit): "
                            "run the command again, it resumes from the cache")
    t = R.table(df, tasks, rows)
    return t, {"records_in_source": int(len(df)), "feature_seconds": round(time.perf_counter() - start, 1)}


def train_ranker(source, out: str | Path, cfg: RankerConfig = RankerConfig(), seconds: float | None = None,
                 selection: dict | None = None) -> dict:
    """Fit on the training subgraphs, judge on the held-out ones, write the ranker folder `out`."""
    from tlm_core.provenance import provenance

    out = Path(out)
    t, facts = build_table(source, cfg, seconds)
    sp = split(t)
    if not len(sp.heldout.latency):
        raise UserError("no records of held-out (validation) subgraphs: nothing to judge the ranker on")
    start = time.perf_counter()
    ranker = fit(sp.train, cfg)
    fit_s = time.perf_counter() - start
    ident = ranker.save(out)
    start = time.perf_counter()
    scores = ranker.score(sp.heldout.X)
    score_s = time.perf_counter() - start
    save_heldout(out / HELDOUT_FILE, sp.heldout)
    doc = {
        "ranker": ident,
        "config": cfg.to_json(),
        "feature_version": F.FEATURE_VERSION,
        "features": len(cfg.columns()),
        "source": str(source),
        "source_sha256": _digest(source),
        "split": sp.rule,
        "train": R.describe_groups(sp.train),
        "heldout_data": R.describe_groups(sp.heldout),
        "fit_seconds": round(fit_s, 1),
        **facts,
        "scoring_us_per_candidate": round(1e6 * score_s / len(scores), 2),
        "model_file_bytes": (out / MODEL_FILE).stat().st_size,
        "heldout": heldout_metrics(ranker, sp.heldout),
        "selection": selection,
        "provenance": provenance(),
    }
    (out / "training.json").write_text(json.dumps(doc, indent=2) + "\n")
    from tlm_core.rank.card import write_card

    write_card(out, doc)
    return doc


def heldout_metrics(ranker: Ranker, t: R.Table) -> dict:
    """The held-out metrics: over every held-out record, and over the model-generated ones only (what
    `tlm-ranked` ranks: candidates of the model, not uniformly random programs)."""
    ks = ranker.config.ks
    scores = ranker.score(t.X)
    gen = t.method == "tlm"
    return {"all_records": evaluate(scores, t, ks), "generated_records": evaluate(scores[gen], t.subset(gen), ks)}


def save_heldout(path: Path, t: R.Table) -> None:
    np.savez_compressed(path, X=t.X, group=t.group, latency=t.latency, keys=t.keys.astype(str),
                        group_ids=np.array([json.dumps(g) for g in t.group_ids]), validation=t.validation,
                        method=t.method.astype(str), feature_version=F.FEATURE_VERSION)


def load_heldout(path: str | Path) -> R.Table:
    z = np.load(path)
    if int(z["feature_version"]) != F.FEATURE_VERSION:
        raise UserError(f"{path}: features v{int(z['feature_version'])}, this code makes v{F.FEATURE_VERSION}")
    return R.Table(z["X"], z["group"], z["latency"], z["keys"], [tuple(json.loads(g)) for g in z["group_ids"]],
                   z["validation"], z["method"])


def _digest(source) -> str | None:
    path = Path(source)
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else None


# -- choosing a configuration without the held-out subgraphs ------------------------------------


def is_dev(task_hash: str) -> bool:
    """A content-based 15% of the training subgraphs, for choosing a configuration."""
    return int(hashlib.sha256(f"dev:{task_hash}".encode()).hexdigest()[:8], 16) < DEV_FRACTION * 2**32


#: What `--compare` tries: each objective on every feature, then the default objective without the
#: per-store features (no TVM call at all: the cheapest ranker) and with them alone.
def candidate_configs(base: RankerConfig) -> dict[str, RankerConfig]:
    short = {"rank:pairwise": "pairwise", "rank:ndcg": "ndcg", "reg:squarederror": "regression"}[base.objective]
    return {
        "pairwise, all features": replace(base, objective="rank:pairwise", label="log_speedup"),
        "ndcg (graded labels), all features": replace(base, objective="rank:ndcg", label="graded"),
        "regression on best/latency (MetaSchedule-style), all features":
            replace(base, objective="reg:squarederror", label="speed"),
        f"{short}, without per-store features": replace(base, blocks=("task", "hardware", "decisions")),
        f"{short}, per-store features only (+task, hardware)": replace(base, blocks=("task", "hardware", "stores")),
    }


def compare(source, base: RankerConfig = RankerConfig(), seconds: float | None = None,
            path: str | Path | None = None) -> dict:
    """Dev metrics of each candidate configuration (trained on training subgraphs minus dev).

    path: a selection.json to write after each configuration and to resume from (a configuration
    already there with the same settings is not fitted again); `seconds`: start no new fit after that
    long (the result's `complete` says whether every configuration is in)."""
    start = time.perf_counter()
    t, facts = build_table(source, base, seconds)
    train = split(t).train
    dev = np.array([is_dev(h) for _, h in train.group_ids])[train.group]
    fit_on, judge = train.subset(~dev), train.subset(dev)
    old = json.loads(Path(path).read_text()) if path and Path(path).exists() else {}
    out = {"dev_rule": f"{DEV_FRACTION:.0%} of the training subgraphs by content hash (is_dev)",
           "fit": R.describe_groups(fit_on), "dev": R.describe_groups(judge), "configs": {}, "complete": False}
    for name, cfg in candidate_configs(base).items():
        prev = old.get("configs", {}).get(name)
        if prev and prev["config"] == json.loads(json.dumps(cfg.to_json())) and old.get("dev") == out["dev"]:
            out["configs"][name] = prev
            continue
        if seconds is not None and time.perf_counter() - start > seconds:
            break
        t0 = time.perf_counter()
        r = fit(fit_on, cfg)
        fit_s = time.perf_counter() - t0
        m = heldout_metrics(r, judge)
        out["configs"][name] = {"config": cfg.to_json(), "fit_seconds": round(fit_s, 1), **m}
        k = {kk: (v["ranker_regret"], v["random_regret"]) for kk, v in m["generated_records"]["k"].items()}
        log(f"{name}: dev regret (ranker, random) on generated records {k}")
        if path:
            Path(path).write_text(json.dumps(out, indent=2) + "\n")
    out["complete"] = len(out["configs"]) == len(candidate_configs(base))
    if path:
        Path(path).write_text(json.dumps(out, indent=2) + "\n")
    return out
