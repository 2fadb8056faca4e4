"""The ranker: an XGBoost model that scores candidates of one subgraph on one CPU (higher = faster).

Trained with a ranking objective on query groups (one subgraph on one CPU: `records.Table`); only
the order within a group means anything. Held out: the subgraphs the SFT never sees (the
`validation` 5%, `demonstrations.is_validation`), so the ranker's held-out numbers are on subgraphs
neither it nor the model was trained on.

Held-out metrics (`evaluate`), per group with more than k records, then over groups:
  * regret@k: latency of the best of the k best-scored records / the group's best latency
    (geometric mean over groups; 1.0 = the best program is always among the k). A failed record
    counts as the group's slowest measured latency;
  * recall@k: the share of groups whose best program is among the k;
  * the same two for k records picked at random from the group, computed exactly (expectations over
    every k-subset, no sampling): the baseline a ranker must beat.

Saved as a folder (`save`/`load`): ranker.ubj (the XGBoost booster), config.json (RankerConfig, the
feature version and columns, the file's digest), and beside it what `train.py` writes: training.json
(provenance, data, held-out metrics), heldout.parquet (the held-out features, to recompute them),
README.md (the card).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from tlm_core.errors import UserError
from tlm_core.paths import REPO_ROOT
from tlm_core.rank import features as F
from tlm_core.rank.records import Table

#: The shipped ranker (beside data/model).
SHIPPED = REPO_ROOT / "data" / "ranker"
MODEL_FILE = "ranker.ubj"
#: Bump when the saved folder's layout or the meaning of a score changes.
FORMAT_VERSION = 1

#: Feature blocks by name, each a slice of `features.names()`.
BLOCKS = {"task": F.TASK_NAMES, "hardware": F.HARDWARE_NAMES, "decisions": F.DECISION_NAMES,
          "stores": F.STORE_NAMES}


@dataclass(frozen=True)
class RankerConfig:
    """How a ranker is trained (saved in its config.json)."""

    # Chosen on the dev split (data/ranker/selection.json): rank:ndcg on graded labels; also rank:pairwise
    # (label log_speedup), reg:squarederror (label speed: best / latency, as MetaSchedule's cost model).
    objective: str = "rank:ndcg"
    label: str = "graded"  # round(grades x log(worst / latency) / log(worst / best)) in the group, failures 0
    grades: int = 16  # for label "graded"
    blocks: tuple[str, ...] = ("task", "hardware", "decisions", "stores")
    rounds: int = 400
    max_depth: int = 6
    learning_rate: float = 0.05
    subsample: float = 0.8
    colsample_bytree: float = 0.5
    min_child_weight: float = 1.0
    seed: int = 0
    threads: int = 2
    ks: tuple[int, ...] = (1, 2, 4, 8, 10)
    feature_version: int = F.FEATURE_VERSION

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> RankerConfig:
        known = {f.name for f in fields(cls)}
        d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in known}
        return cls(**d)

    def columns(self) -> np.ndarray:
        """Indices into `features.names()` of the columns this ranker reads."""
        unknown = set(self.blocks) - set(BLOCKS)
        if unknown:
            raise ValueError(f"unknown feature blocks {sorted(unknown)}; known: {sorted(BLOCKS)}")
        want = {n for b in self.blocks for n in BLOCKS[b]}
        return np.array([i for i, n in enumerate(F.names()) if n in want], dtype=np.int64)


def labels(t: Table, cfg: RankerConfig) -> np.ndarray:
    """Per-record labels, comparable only within a group. Failed records: below every measured one."""
    y = np.zeros(len(t.latency), dtype=np.float64)
    for g in range(len(t.group_ids)):
        idx = np.flatnonzero(t.group == g)
        lat = t.latency[idx]
        ok = np.isfinite(lat)
        if not ok.any():
            continue
        best, worst = lat[ok].min(), lat[ok].max()
        if cfg.label == "log_speedup":
            v = np.log(best / lat[ok])
            y[idx[ok]] = v
            y[idx[~ok]] = v.min() - 1.0
        elif cfg.label == "speed":
            y[idx[ok]] = best / lat[ok]
            y[idx[~ok]] = 0.0
        elif cfg.label == "graded":
            span = math.log(worst / best)
            frac = np.log(worst / lat[ok]) / span if span > 0 else np.ones(ok.sum())
            y[idx[ok]] = np.round(cfg.grades * frac)
            y[idx[~ok]] = 0.0
        else:
            raise ValueError(f"unknown label {cfg.label!r}")
    return y


class Ranker:
    """A trained booster and its config: `score` features of candidates (higher = predicted faster)."""

    def __init__(self, booster, config: RankerConfig, folder: Path | None = None):
        self.booster = booster
        self.config = config
        self.folder = folder
        self._columns = config.columns()

    def score(self, X: np.ndarray) -> np.ndarray:
        import xgboost as xgb

        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != F.width():
            raise ValueError(f"features of width {F.width()} expected, got shape {X.shape}")
        if not len(X):
            return np.zeros(0)
        return self.booster.predict(xgb.DMatrix(X[:, self._columns], nthread=1))

    def save(self, folder: str | Path) -> dict:
        """Write ranker.ubj and config.json into `folder`; returns the identity."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(folder / MODEL_FILE))
        ident = identity_of(folder)
        doc = {"format_version": FORMAT_VERSION, "model_file": MODEL_FILE, "sha256": ident["sha256"],
               "config": self.config.to_json(), "feature_version": F.FEATURE_VERSION,
               "columns": [F.names()[i] for i in self._columns]}
        (folder / "config.json").write_text(json.dumps(doc, indent=2) + "\n")
        self.folder = folder
        return ident

    @classmethod
    def load(cls, folder: str | Path) -> Ranker:
        import xgboost as xgb

        folder = Path(folder)
        path = folder / "config.json"
        if not path.exists() or not (folder / MODEL_FILE).exists():
            raise UserError(f"no ranker at {folder} (train one with `tlm train ranker`)")
        doc = json.loads(path.read_text())
        if doc.get("format_version") != FORMAT_VERSION:
            raise UserError(f"the ranker at {folder} has format {doc.get('format_version')}; this code reads "
                            f"{FORMAT_VERSION}: train it again with `tlm train ranker`")
        cfg = RankerConfig.from_json(doc["config"])
        if doc.get("feature_version") != F.FEATURE_VERSION:
            raise UserError(f"the ranker at {folder} reads features v{doc.get('feature_version')}; this code makes "
                            f"v{F.FEATURE_VERSION}: train it again with `tlm train ranker`")
        if doc.get("columns") != [F.names()[i] for i in cfg.columns()]:
            raise UserError(f"the ranker at {folder} was trained on other feature columns; train it again")
        booster = xgb.Booster(params={"nthread": 1})
        booster.load_model(str(folder / MODEL_FILE))
        return cls(booster, cfg, folder)

    def identity(self) -> dict:
        return identity_of(self.folder) if self.folder else {"path": None, "sha256": None}


def identity_of(folder: str | Path) -> dict:
    """Which ranker made a result: its folder and the digest of its model file."""
    path = Path(folder) / MODEL_FILE
    return {"path": str(folder), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.exists() else None}


def fit(t: Table, cfg: RankerConfig) -> Ranker:
    """Train a ranker on a table (its groups as the ranking queries)."""
    import xgboost as xgb

    if not len(t.latency):
        raise UserError("no records to train a ranker on")
    cols = cfg.columns()
    d = xgb.DMatrix(t.X[:, cols], label=labels(t, cfg), nthread=cfg.threads)
    if cfg.objective.startswith("rank:"):
        d.set_group(t.sizes())
    params = {"objective": cfg.objective, "eta": cfg.learning_rate, "max_depth": cfg.max_depth,
              "subsample": cfg.subsample, "colsample_bytree": cfg.colsample_bytree,
              "min_child_weight": cfg.min_child_weight, "seed": cfg.seed, "nthread": cfg.threads,
              "tree_method": "hist"}
    booster = xgb.train(params, d, num_boost_round=cfg.rounds)
    return Ranker(booster, cfg)


# -- held-out metrics ------------------------------------------------------------------------------


def _random_expectations(lat: np.ndarray, k: int) -> tuple[float, float]:
    """(E[best of k random / best], P(best among k random)) over every k-subset of a group."""
    a = np.sort(lat)
    n = len(a)
    total = math.comb(n, k)
    e_min = sum(a[i] * math.comb(n - 1 - i, k - 1) for i in range(n - k + 1)) / total
    ties = int((a == a[0]).sum())
    return e_min / a[0], 1.0 - math.comb(n - ties, k) / total


def group_metrics(scores: np.ndarray, latency: np.ndarray, ks) -> dict | None:
    """One group's regret@k and recall@k, the ranker's and random's; None without a measured record."""
    ok = np.isfinite(latency)
    if not ok.any():
        return None
    lat = np.where(ok, latency, latency[ok].max())  # a failure costs the slowest measured program
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    best = lat.min()
    out = {}
    for k in ks:
        if len(lat) <= k:
            continue
        top = lat[order[:k]].min()
        r_regret, r_recall = _random_expectations(lat, k)
        out[k] = (top / best, float(top == best), r_regret, r_recall)
    return out


def evaluate(scores: np.ndarray, t: Table, ks=(1, 2, 4, 8, 10)) -> dict:
    """Held-out metrics of scores of a table's records, per k (see the module doc)."""
    per_k: dict[int, list] = {k: [] for k in ks}
    for g in range(len(t.group_ids)):
        idx = np.flatnonzero(t.group == g)
        m = group_metrics(scores[idx], t.latency[idx], ks)
        for k, v in (m or {}).items():
            per_k[k].append(v)
    out = {"groups": len(t.group_ids), "records": int(len(t.latency)), "k": {}}
    for k, rows in per_k.items():
        if not rows:
            continue
        a = np.array(rows)
        out["k"][str(k)] = {"groups": len(rows),
                            "ranker_regret": round(float(np.exp(np.log(a[:, 0]).mean())), 6),
                            "random_regret": round(float(np.exp(np.log(a[:, 2]).mean())), 6),
                            "ranker_recall": round(float(a[:, 1].mean()), 6),
                            "random_recall": round(float(a[:, 3].mean()), 6),
                            "ranker_beats_random_share": round(float((a[:, 0] < a[:, 2]).mean()), 6)}
    return out


@dataclass
class Split:
    """A table split into what the ranker learns from and what it is judged on."""

    train: Table
    heldout: Table
    rule: str = field(default="validation subgraphs (demonstrations.is_validation, the SFT hold-out)")


def split(t: Table) -> Split:
    return Split(t.subset(~t.validation), t.subset(t.validation))


def load_shipped() -> Ranker:
    """The shipped ranker ($TLM_RANKER, else data/ranker)."""
    return Ranker.load(shipped_folder())


def shipped_folder() -> Path:
    import os

    return Path(os.environ.get("TLM_RANKER") or SHIPPED)
