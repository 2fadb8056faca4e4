"""The constrained generator: valid by construction, lossless, correct numbers, deterministic, and
its batched KV-cached decoding is exactly what the model says about the whole sentence."""

import argparse
import json

import numpy as np
import pytest
import torch
import tvm_ffi

from tlm_core.cli import generate as cli_generate
from tlm_core.errors import UserError
from tlm_core.ir.space import design_space
from tlm_core.ir.tasks import extract_tasks
from tlm_core.ir.workloads import get_workload
from tlm_core.language import domains
from tlm_core.language.program import EXTENT_ANNOTATIONS, apply_program, replay
from tlm_core.language.sentence import (
    decode,
    encode,
    header_tokens,
    prompt,
    value_tokens,
)
from tlm_core.language.vocab import tokens
from tlm_core.measure.harness import MeasureConfig, Measurer, trace_to_json
from tlm_core.model.checkpoint import build, save
from tlm_core.model.generate import (
    GenerationResult,
    _build_trie,
    generate,
    location_domain,
)
from tlm_core.train.demonstrations import candidate

K = 48  # per task: 22 bert_tiny tasks -> 1,056 generated candidates
IDS = {t: i for i, t in enumerate(tokens())}


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build("tiny", 2816).eval()


@pytest.fixture(scope="module")
def bert(host):
    return [(t, design_space(t, host)) for t in extract_tasks(get_workload("bert_tiny"), host)]


@pytest.fixture(scope="module")
def generated(tiny, bert, host):
    return [(task, space, generate(tiny, task, space, host.hardware, K, seed=0)) for task, space in bert]


def _task(bert, prefix):
    return next((t, s) for t, s in bert if t.name.startswith(prefix))


def test_zero_invalid_over_every_bert_tiny_task(generated):
    total = 0
    for task, space, res in generated:
        assert isinstance(res, GenerationResult)
        assert res.invalid == 0, (task.name, res.errors[:3])
        assert res.candidates == K and len(res.programs) + res.duplicates == K
        assert len({p for _, p in res.programs}) == len(res.programs)  # duplicates removed
        assert {p.sketch for _, p in res.programs} == set(range(len(space.sketches)))  # every sketch used
        assert res.decisions >= sum(len(p.decisions) for _, p in res.programs)
        total += res.candidates
    assert total >= 1000


def test_generated_programs_decode_and_apply_back(generated, host):
    for task, space, res in generated:
        for sch, program in res.programs[:3]:
            sentence = encode(program, prompt(task, host.hardware, space, program.sketch))
            again = decode(" ".join(sentence).split())
            assert again == program, task.name
            sch2 = apply_program(space, again, host.hardware)  # checks every value against its domain
            assert tvm_ffi.structural_equal(sch2.mod, sch.mod), task.name
            assert trace_to_json(sch2.trace) == trace_to_json(sch.trace), task.name


def test_generated_programs_compute_the_same_numbers(generated, host, tmp_path):
    picks = []
    for prefix, n in (("fused_matmul3_add4", 2), ("layer_norm", 1), ("fused_fast_softmax", 1)):
        task, _, res = next(g for g in generated if g[0].name.startswith(prefix))
        picks += [candidate("bert_tiny", task, "tlm", sch, p) for sch, p in res.programs[:n]]
    cfg = MeasureConfig(repeat=2, min_repeat_ms=1, build_timeout_s=60, run_timeout_s=10, reference_timeout_s=60,
                        builders=1)  # one build worker: starting workers dominates, and the cores are shared
    with Measurer(host, tmp_path, cfg) as m:
        recs = m.measure(picks)
    assert [r["status"] for r in recs] == ["ok"] * len(picks), [r["error"] for r in recs]
    assert all(r["max_rel_err"] <= 1e-3 for r in recs)


def test_fast_location_domain_matches_the_reference(bert):
    """generate.location_domain (few trials, in place) lists what domains.location_domain lists."""
    from tvm.s_tir import Schedule, Trace

    rng = np.random.default_rng(0)
    checked = 0
    for prefix in ("layer_norm", "fused_fast_softmax", "fused_equal"):
        task, space = _task(bert, prefix)
        for k in range(len(space.sketches)):
            sch = Schedule(task.mod)

            def provider(inst, inputs, attrs, decision, sch=sch, task=task, k=k):
                nonlocal checked
                name = inst.kind.name
                if name == "SampleComputeLocation":
                    want = domains.location_domain(sch, inputs[0])  # on copies: leaves sch as it is
                    probe = sch.copy()
                    assert location_domain(probe, inputs[0]) == want, (task.name, k)
                    checked += 1
                    return int(want[rng.integers(len(want))][0])
                if name == "SamplePerfectTile":
                    dom = domains.tile_domain(int(sch.get(inputs[0]).extent), int(attrs[0]), int(attrs[1]))
                    return list(dom[rng.integers(len(dom))])
                if name == "SampleCategorical":
                    return int(rng.integers(len(attrs[0])))
                return decision

            Trace(space.sketches[k].trace.insts, {}).apply_to_schedule(sch, remove_postproc=True,
                                                                       decision_provider=provider)
    assert checked >= 50


def _domains_of(space, program, hw):
    """The domain of each decision of a program, in its replay's schedule state."""
    extents = [d for d in program.decisions if d.kind in EXTENT_ANNOTATIONS.values()]
    sampling = [d for d in program.decisions if d.kind not in EXTENT_ANNOTATIONS.values()]
    found = {}

    def choose(kind, header, domain):
        queue = extents if kind in EXTENT_ANNOTATIONS.values() else sampling
        d = queue.pop(0)
        found[id(d)] = domain()
        return d.value

    replay(space, program.sketch, choose, hw)
    return [found[id(d)] for d in program.decisions]


@pytest.mark.parametrize("prefix", ["fused_matmul3_add4", "layer_norm"])  # static and live sketches
def test_batched_greedy_decoding_is_the_masked_argmax_of_the_whole_sentence(tiny, bert, host, prefix):
    """KV cache, ragged rows, forced tokens, masks: re-read every sentence in one plain forward."""
    task, space = _task(bert, prefix)
    res = generate(tiny, task, space, host.hardware, len(space.sketches), temperature=0)
    assert len(res.programs) == len(space.sketches) and res.invalid == 0
    for (sch, program), score in zip(res.programs, res.scores):
        head = prompt(task, host.hardware, space, program.sketch)
        sentence = encode(program, head)
        with torch.no_grad():
            logits = tiny(torch.tensor([[IDS[t] for t in sentence]])).logits[0].float()
        logp = logits.log_softmax(-1)
        pos, total, choices = len(head), 0.0, 0
        for d, dom in zip(program.decisions, _domains_of(space, program, host.hardware)):
            pos += len(header_tokens(d))
            node = _build_trie(d.kind, d.header, dom)
            for t in value_tokens(d):
                tid = IDS[t]
                if len(node.children) > 1:  # the model chose here: the best allowed token
                    allowed = torch.tensor(sorted(node.children))
                    assert logits[pos - 1, tid] >= logits[pos - 1, allowed].max() - 1e-4, (task.name, d)
                    total += float(logp[pos - 1, tid])
                    choices += 1
                node = node.children[tid]
                pos += 1
            assert node.value == d.value
        assert choices > 0 and score == pytest.approx(total, abs=1e-3)


def test_static_and_live_walks_generate_the_same(tiny, bert, host, monkeypatch):
    """A static sketch read from the trace asks exactly what the live schedule asks."""
    import tlm_core.model.generate as gen

    task, space = _task(bert, "matmul11")
    static = generate(tiny, task, space, host.hardware, 12, seed=5)
    monkeypatch.setattr(gen, "_is_static", lambda space, sketch: False)
    live = generate(tiny, task, space, host.hardware, 12, seed=5)
    assert [p for _, p in static.programs] == [p for _, p in live.programs] and static.scores == live.scores


def test_seeded_generation_is_deterministic(tiny, bert, host):
    for prefix in ("fused_matmul3_add4", "layer_norm"):
        task, space = _task(bert, prefix)
        a, b, c = (generate(tiny, task, space, host.hardware, 8, seed=s) for s in (7, 7, 8))
        assert [p for _, p in a.programs] == [p for _, p in b.programs] and a.scores == b.scores
        assert [p for _, p in a.programs] != [p for _, p in c.programs]


def test_greedy_gives_the_most_likely_program(tiny, bert, host):
    task, space = _task(bert, "layer_norm")
    one = generate(tiny, task, space, host.hardware, 1, temperature=0.7)  # k == 1: greedy
    assert len(one.programs) == 1 and one.invalid == 0
    every = generate(tiny, task, space, host.hardware, len(space.sketches), temperature=0)
    best = max(range(len(every.programs)), key=lambda i: every.scores[i])
    assert one.programs[0][1] == every.programs[best][1]
    # top-k 1 and a vanishing nucleus leave only the best valid token: greedy again, per sketch
    greedy = {p for _, p in every.programs}
    for kw in ({"top_k": 1}, {"top_p": 1e-9}):
        res = generate(tiny, task, space, host.hardware, 2 * len(space.sketches), seed=3, **kw)
        assert {p for _, p in res.programs} == greedy and res.duplicates == len(space.sketches)


def test_sentences_longer_than_the_model_are_counted_not_hidden(bert, host):
    task, space = _task(bert, "fused_matmul3_add4")  # prompts of ~170 tokens, ~55 decision tokens
    for positions, why in ((128, "prompt has"), (200, "outgrows")):
        torch.manual_seed(0)
        res = generate(build("tiny", positions).eval(), task, space, host.hardware, 6)
        assert res.invalid == 6 and not res.programs and all(why in e for e in res.errors), res.errors


def _parser():
    parser = argparse.ArgumentParser(prog="tlm")
    cli_generate.register(parser.add_subparsers(dest="command", required=True))
    return parser


def test_cli_generate_writes_a_record_per_candidate(tiny, tmp_path, capsys):
    from tlm_core.measure.store import RecordStore

    save(tiny, tmp_path / "model")
    args = _parser().parse_args(["generate", "bert_tiny", "--k", "3", "--checkpoint", str(tmp_path / "model"),
                                 "--out", str(tmp_path / "gen"), "--seed", "1", "--json"])
    args.func(args)
    summary = json.loads(capsys.readouterr().out)
    assert summary["tasks"] == 22 and summary["invalid"] == 0 and summary["candidates"] > 22
    assert summary["candidates_per_s"] > 0 and summary["decisions_per_s"] > 0
    records = list(RecordStore(tmp_path / "gen" / "candidates"))
    assert len(records) == summary["candidates"] and len({r["key"] for r in records}) == len(records)
    r = records[0]
    assert r["status"] == "generated" and r["method"] == "tlm" and r["workload"] == "bert_tiny"
    assert {"task_hash", "task_name", "sketch", "decisions", "trace", "target"} <= set(r)
    assert r["decisions"].endswith("<eos>") and json.loads(r["trace"])


def test_cli_generate_user_errors(tmp_path):
    with pytest.raises(UserError, match="no model checkpoint"):
        args = _parser().parse_args(["generate", "bert_tiny", "--k", "2", "--checkpoint", str(tmp_path / "none"),
                                     "--out", str(tmp_path / "gen")])
        args.func(args)
    with pytest.raises(UserError, match="--k"):
        args = _parser().parse_args(["generate", "bert_tiny", "--k", "0", "--out", str(tmp_path / "gen")])
        args.func(args)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet50", "gpt2"])
def test_zero_invalid_on_every_task_of(name, tiny, host):
    for task in extract_tasks(get_workload(name), host):
        space = design_space(task, host)
        res = generate(tiny, task, space, host.hardware, 16, seed=1)
        assert res.invalid == 0, (task.name, res.errors[:3])
        sch, program = res.programs[0]
        assert tvm_ffi.structural_equal(apply_program(space, program, host.hardware).mod, sch.mod), task.name


def test_programs_come_in_turn_over_sketches():
    """A prefix of the programs spreads over the sketches as a smaller k would (TLM@k is a prefix)."""
    from tlm_core.language.sampling import spread
    from tlm_core.model.generate import _round_robin

    sketches = [0] * 5 + [1] * 4 + [2] * 2
    order = _round_robin(sketches)
    assert sorted(order) == list(range(len(sketches)))
    assert [sketches[i] for i in order] == [0, 1, 2, 0, 1, 2, 0, 1, 0, 1, 0]
    for j in range(1, 7):  # while every sketch still has programs, a prefix matches spread
        assert [[sketches[i] for i in order[:j]].count(s) for s in range(3)] == spread(j, 3)
    assert [order.index(i) < order.index(i + 1) for i in range(4)] == [True] * 4  # order kept in a sketch
