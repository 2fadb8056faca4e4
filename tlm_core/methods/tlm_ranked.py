"""`tlm-ranked`: the model generates a pool of candidates per subgraph, a learned ranker orders them,
and only the best-scored `budget` are measured (beyond the paper: TLM measures every one it makes).

Per subgraph: generate N = max(256, 8 x budget) programs with the same model and path as `tlm`
(`generated_candidates`, temperature 1; duplicates dropped, so N is an upper bound), compute each
one's features (`rank.features.program_features`: decisions + MetaSchedule's per-store features
of the postprocessed schedule) and score them with the ranker ($TLM_RANKER, else data/ranker).
Measured: the best-scored first, then the next best-scored, except that one slot in 8 beyond the
first goes to a program drawn at random from the rest (budget 2: none; 10: one; 64: eight): the
ranker errs systematically on a subgraph unlike its training data, and a few random picks keep a
chance of finding what it underrates. Generation, feature and scoring seconds are inside `tune`'s
wall time (the method's compile time) and are reported in the notes with the ranker's identity.
"""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np

from tlm_core.methods import Method, register
from tlm_core.methods.tlm import load_model, model_available
from tlm_core.ui import log, progress

#: Candidates generated per subgraph: at least this many, and at least POOL_PER_BUDGET x budget.
MIN_POOL = 256
POOL_PER_BUDGET = 8
#: One measured slot in EXPLORE beyond the first goes to a random program of the rest of the pool.
EXPLORE = 8


def pool_size(budget: int) -> int:
    return max(MIN_POOL, POOL_PER_BUDGET * budget)


def random_slots(budget: int) -> int:
    """How many of `budget` measured slots are random picks (rounded half up)."""
    return int((budget - 1) / EXPLORE + 0.5)


def choose(scores, budget: int, rng) -> list[tuple[int, str]]:
    """(index into the pool, "top" | "random") of the candidates to measure, in measuring order."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable").tolist()
    if len(order) <= budget:
        return [(i, "top") for i in order]
    n_random = random_slots(budget)
    top = order[:budget - n_random]
    rest = order[budget - n_random:]
    picks = sorted(rng.choice(len(rest), size=n_random, replace=False).tolist()) if n_random else []
    return [(i, "top") for i in top] + [(rest[j], "random") for j in picks]


def _available() -> tuple[bool, str]:
    from tlm_core.rank.ranker import MODEL_FILE, shipped_folder

    ok, why = model_available()
    if not ok:
        return ok, why
    ranker = shipped_folder()
    if not (ranker / "config.json").exists() or not (ranker / MODEL_FILE).exists():
        return False, f"no ranker at {ranker} (train one with `tlm train ranker`)"
    return True, ""


@dataclasses.dataclass
class Pool:
    """One subgraph's generated pool, scored: what `pick` chooses the measured candidates from."""

    made: list  # the candidates (method "tlm"), in generation order
    scores: np.ndarray  # the ranker's score of each (higher: predicted faster)
    invalid: int
    errors: list
    generation_s: float
    feature_s: float
    scoring_s: float

    @property
    def seconds(self) -> float:
        """Generation + features + scoring: the method's own seconds before any measurement."""
        return self.generation_s + self.feature_s + self.scoring_s


def ranked_pool(model, ranker, workload: str, task, target, size: int, seed: int) -> Pool:
    """Generate `size` programs of the task (as `tlm` does, temperature 1) and score each."""
    from tlm_core.model.generate import task_seed
    from tlm_core.rank.features import program_features
    from tlm_core.train.demonstrations import generated_candidates

    made, res = generated_candidates(model, workload, task, target, size, task_seed(seed, task.hash))
    t0 = time.perf_counter()
    X = program_features(task, target, res.programs)
    t1 = time.perf_counter()
    scores = ranker.score(X)
    return Pool(made, scores, res.invalid, list(res.errors), res.seconds, t1 - t0, time.perf_counter() - t1)


def pick(pool: Pool, task, budget: int, seed: int) -> list:
    """The `budget` candidates of the pool to measure (`choose`), as tlm-ranked candidates whose
    record says their rank, score, the pool's size and how each was picked. The same (pool, task,
    seed) picks the same for a given budget, whatever else was picked from it."""
    from tlm_core.model.generate import task_seed

    rng = np.random.default_rng(task_seed(seed + 1, task.hash))
    rank = {i: r for r, i in enumerate(np.argsort(-pool.scores, kind="stable").tolist())}
    out = []
    for i, how in choose(pool.scores, budget, rng):
        extra = {**json.loads(pool.made[i].extra), "rank": rank[i], "rank_score": round(float(pool.scores[i]), 5),
                 "pool": len(pool.made), "picked": how}
        out.append(dataclasses.replace(pool.made[i], method="tlm-ranked", extra=json.dumps(extra, sort_keys=True)))
    return out


def _tune(tasks, target, budget, measurer, workload, seed):
    from tlm_core.rank.ranker import load_shipped

    folder, model = load_model(target, "tlm-ranked")
    ranker = load_shipped()
    size = pool_size(budget)
    cands, invalid, generated = [], 0, 0
    gen_s = feat_s = score_s = 0.0
    for task in progress(tasks, "tlm-ranked: generate and rank", unit="task"):
        pool = ranked_pool(model, ranker, workload, task, target, size, seed)
        invalid += pool.invalid
        generated += len(pool.made)
        gen_s, feat_s, score_s = gen_s + pool.generation_s, feat_s + pool.feature_s, score_s + pool.scoring_s
        for err in pool.errors[:2]:
            log(f"tlm-ranked: invalid candidate of {task.name}: {err}")
        cands += pick(pool, task, budget, seed)
    notes = {"checkpoint": str(folder), "ranker": ranker.identity(), "pool_per_task": size,
             "generated": generated, "invalid": invalid, "random_share": f"1 in {EXPLORE} beyond the first",
             "generation_seconds": round(gen_s, 2), "feature_seconds": round(feat_s, 2),
             "scoring_seconds": round(score_s, 2), "ranking_seconds": round(feat_s + score_s, 2)}
    return cands, notes


METHOD = register(Method("tlm-ranked", "TLM + ranker (beyond the paper): the model generates max(256, 8 x budget) valid "
                "programs per subgraph, a learned XGBoost ranker (data/ranker, $TLM_RANKER) scores them, the "
                "best-scored budget are measured (1 in 8 beyond the first drawn at random from the rest); "
                "generation and ranking count in its compile time", True, _available, _tune))
