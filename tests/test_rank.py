"""The ranker of `tlm-ranked`: features, training/saving/scoring, the shipped ranker's held-out metrics
(recomputed: a test of meaning), and the method measuring exactly its budget of ranked candidates."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from tlm_core.paths import REPO_ROOT
from tlm_core.rank import features as F
from tlm_core.rank import ranker as K
from tlm_core.rank.records import Table

SHIPPED = REPO_ROOT / "data" / "ranker"
DEMOS = REPO_ROOT / "data" / "demonstrations" / "records.parquet"
SMALL = ("fused_reshape1_add1", "matmul11")  # an element-wise task and a batch matmul of bert_tiny


@pytest.fixture(scope="module")
def small_tasks(host):
    from tlm_core.ir.tasks import extract_tasks
    from tlm_core.ir.workloads import get_workload

    tasks = {t.name: t for t in extract_tasks(get_workload("bert_tiny"), host) if t.name in SMALL}
    assert set(tasks) == set(SMALL)
    return tasks


def test_features_are_deterministic_of_fixed_width_and_rebuild_agrees(small_tasks, host):
    from tlm_core.ir.space import design_space
    from tlm_core.language.sampling import random_programs

    assert len(set(F.names())) == F.width()
    for task in small_tasks.values():
        items = random_programs(task, host, 6, seed=3)
        a = F.program_features(task, host, items)
        b = F.program_features(task, host, items)
        assert a.shape == (len(items), F.width()) and a.dtype == np.float32
        assert np.array_equal(a, b) and np.isfinite(a).all()
        # A record's schedule, rebuilt from its decisions only, has the same features.
        space = design_space(task, host)
        rebuilt = [(F.rebuild(space, p), p) for _, p in items]
        assert all(s is not None for s, _ in rebuilt)
        assert np.array_equal(F.program_features(task, host, rebuilt), a)
    # Programs of one task differ in their features (what a ranker orders them by).
    assert len({row.tobytes() for row in a}) > 1


def _synthetic_table(seed=0, groups=30, per=12) -> Table:
    """Groups whose latency falls with feature 0 (plus noise): a ranker can learn it."""
    rng = np.random.default_rng(seed)
    n = groups * per
    X = rng.normal(size=(n, F.width())).astype(np.float32)
    latency = np.exp(-X[:, 0] + 0.3 * rng.normal(size=n))
    latency[::17] = np.inf  # a few failures
    group = np.repeat(np.arange(groups), per)
    ids = [("{}", f"{g:016x}") for g in range(groups)]
    return Table(X, group, latency, np.array([f"k{i}" for i in range(n)]), ids, np.zeros(n, bool),
                 np.array(["tlm"] * n))


def test_a_ranker_saves_loads_and_scores_the_same(tmp_path):
    t = _synthetic_table()
    cfg = K.RankerConfig(rounds=20, threads=1)
    r = K.fit(t, cfg)
    ident = r.save(tmp_path / "r")
    back = K.Ranker.load(tmp_path / "r")
    assert back.config == cfg and back.identity() == ident
    assert np.array_equal(back.score(t.X), r.score(t.X))
    # The same data and seed train the same model.
    assert np.array_equal(K.fit(t, cfg).score(t.X), r.score(t.X))
    # It learned the order: on fresh groups it beats k random picks.
    fresh = _synthetic_table(seed=1)
    m = K.evaluate(back.score(fresh.X), fresh, (1, 4))["k"]
    assert m["1"]["ranker_regret"] < m["1"]["random_regret"] and m["4"]["ranker_recall"] > m["4"]["random_recall"]
    with pytest.raises(ValueError, match="width"):
        back.score(t.X[:, :5])


def test_a_ranker_of_another_feature_version_is_refused(tmp_path):
    from tlm_core.errors import UserError

    K.fit(_synthetic_table(), K.RankerConfig(rounds=2, threads=1)).save(tmp_path)
    doc = json.loads((tmp_path / "config.json").read_text())
    doc["feature_version"] = F.FEATURE_VERSION + 1
    (tmp_path / "config.json").write_text(json.dumps(doc))
    with pytest.raises(UserError, match="train it again"):
        K.Ranker.load(tmp_path)


def test_random_baseline_is_the_exact_expectation_over_subsets():
    lat = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0])
    for k in (1, 2, 3, 6):
        subsets = list(itertools.combinations(lat, k))
        regret, recall = K._random_expectations(lat, k)
        assert regret == pytest.approx(np.mean([min(s) for s in subsets]) / lat.min())
        assert recall == pytest.approx(np.mean([min(s) == lat.min() for s in subsets]))


def test_choose_measures_the_top_and_one_random_pick_in_eight():
    from tlm_core.methods.tlm_ranked import choose, pool_size, random_slots

    assert pool_size(2) == 256 and pool_size(64) == 512
    assert [random_slots(b) for b in (1, 2, 4, 5, 10, 64)] == [0, 0, 0, 1, 1, 8]
    scores = np.arange(100.0)  # the best-scored is the last
    picked = choose(scores, 2, np.random.default_rng(0))
    assert picked == [(99, "top"), (98, "top")]
    picked = choose(scores, 10, np.random.default_rng(0))
    assert [i for i, how in picked if how == "top"] == list(range(99, 90, -1))
    (r, _), = [p for p in picked if p[1] == "random"]
    assert r <= 90 and len({i for i, _ in picked}) == 10
    assert choose(scores[:3], 10, np.random.default_rng(0)) == [(2, "top"), (1, "top"), (0, "top")]


# -- the shipped ranker ----------------------------------------------------------------------------

needs_shipped = pytest.mark.skipif(not (SHIPPED / "config.json").exists(), reason="no shipped ranker (data/ranker)")


@needs_shipped
def test_shipped_ranker_held_out_metrics_recompute_and_beat_random():
    """Test of meaning: on subgraphs neither the ranker nor the model was trained on, the recorded
    held-out metrics come out again from the shipped features and model, and the ranker's top picks
    are faster than random picks from the same groups."""
    from tlm_core.rank.training import HELDOUT_FILE, heldout_metrics, load_heldout

    doc = json.loads((SHIPPED / "training.json").read_text())
    r = K.Ranker.load(SHIPPED)
    assert r.identity()["sha256"] == doc["ranker"]["sha256"]
    held = load_heldout(SHIPPED / HELDOUT_FILE)
    assert held.validation.all() and len(held.group_ids) == doc["heldout_data"]["groups"]
    assert heldout_metrics(r, held) == doc["heldout"]
    gen = doc["heldout"]["generated_records"]["k"]
    for k in ("1", "4"):
        assert gen[k]["ranker_regret"] < gen[k]["random_regret"]
        assert gen[k]["ranker_recall"] > gen[k]["random_recall"]
    assert sum(f.stat().st_size for f in SHIPPED.iterdir()) <= 5_000_000


@needs_shipped
@pytest.mark.skipif(not DEMOS.exists(), reason="needs the committed demonstration data")
def test_shipped_held_out_features_are_what_the_code_computes_from_the_records(host):
    """The held-out table is not taken on trust: the features of the held-out records of one small
    training workload, rebuilt from their (task, sketch, decisions), equal the shipped rows."""
    import pandas as pd

    from tlm_core.ir.space import design_space
    from tlm_core.ir.tasks import extract_tasks
    from tlm_core.ir.workloads import get_workload
    from tlm_core.language.sentence import decode
    from tlm_core.rank.training import HELDOUT_FILE, load_heldout
    from tlm_core.train.demonstrations import _target_of

    held = load_heldout(SHIPPED / HELDOUT_FILE)
    row_of = {k: i for i, k in enumerate(held.keys)}
    df = pd.read_parquet(DEMOS)
    df = df[(df.workload == "t_bert_tiny_b4_64") & df.key.isin(row_of)]
    tasks = {t.hash: t for t in extract_tasks(get_workload("t_bert_tiny_b4_64"), host)}
    checked = 0
    for (target_json, task_hash), g in df.groupby(["target", "task_hash"]):
        target, task = _target_of(target_json), tasks[task_hash]
        g = g.head(4)
        programs = [decode(p.split() + d.split()) for p, d in zip(g.prompt, g.decisions)]
        items = [(F.rebuild(design_space(task, target), p), p) for p in programs]
        got = F.program_features(task, target, items)
        assert np.array_equal(got, held.X[[row_of[k] for k in g.key]]), (task.name, target.hardware.mcpu)
        checked += len(g)
    assert checked >= 20


# -- the method ------------------------------------------------------------------------------------


def test_tlm_ranked_is_unavailable_without_a_ranker(monkeypatch, tmp_path):
    from tlm_core.methods import get_method

    monkeypatch.setenv("TLM_RANKER", str(tmp_path / "none"))
    ok, why = get_method("tlm-ranked").available()
    if (REPO_ROOT / "data" / "model" / "config.json").exists():
        assert not ok and "no ranker" in why and "tlm train ranker" in why
    monkeypatch.setenv("TLM_CHECKPOINT", str(tmp_path / "none"))
    ok, why = get_method("tlm-ranked").available()
    assert not ok and "no trained model" in why


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from tlm_core.model.checkpoint import build, save

    folder = tmp_path_factory.mktemp("tiny-model")
    save(build("tiny", 2816), folder)
    return folder


def test_tlm_ranked_measures_exactly_its_budget_of_ranked_candidates(small_tasks, host, tiny_checkpoint,
                                                                    tmp_path, monkeypatch):
    from tlm_core.measure.harness import MeasureConfig
    from tlm_core.measure.store import RecordStore
    from tlm_core.methods import get_method

    monkeypatch.setenv("TLM_CHECKPOINT", str(tiny_checkpoint))
    ranker_dir = tmp_path / "ranker"
    if (SHIPPED / "config.json").exists():
        monkeypatch.setenv("TLM_RANKER", str(SHIPPED))
    else:  # a clone without the shipped ranker: one trained on a synthetic table scores the same way
        K.fit(_synthetic_table(), K.RankerConfig(rounds=5, threads=1)).save(ranker_dir)
        monkeypatch.setenv("TLM_RANKER", str(ranker_dir))
    method = get_method("tlm-ranked")
    assert method.available() == (True, "")
    fast = MeasureConfig(repeat=2, min_repeat_ms=1, run_timeout_s=10, reference_timeout_s=60)
    res = method.tune([small_tasks["matmul11"]], host, 2, tmp_path / "store", "bert_tiny", config=fast)
    notes = res.notes
    assert res.candidates == 2 and res.measured == 2 and res.failed == 0 and notes["invalid"] == 0, res
    assert res.tasks_without_record == [] and res.per_task[0]["candidates"] == 2
    assert notes["generated"] > 2 and notes["pool_per_task"] == 256
    assert res.compile_seconds >= notes["generation_seconds"] + notes["ranking_seconds"] > 0
    assert notes["ranker"]["sha256"]
    recs = [r for r in RecordStore(tmp_path / "store") if r.get("method") == "tlm-ranked"]
    assert sorted(r["rank"] for r in recs) == [0, 1] and {r["picked"] for r in recs} == {"top"}
