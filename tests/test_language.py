"""The tensor language: fixed vocabulary, every value expressible, lossless sentences, valid domains."""

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import tvm_ffi
from hypothesis import given, settings
from hypothesis import strategies as st

from tlm_core.ir.space import design_space
from tlm_core.ir.tasks import extract_tasks
from tlm_core.ir.workloads import get_workload
from tlm_core.language import domains
from tlm_core.language.program import Decision, InvalidDecision, Program, apply_program, random_chooser, replay
from tlm_core.language.prompt import subgraph_tokens
from tlm_core.language.sentence import decode, encode, prompt
from tlm_core.language.vocab import number, read_number, tokenizer, tokens


@given(st.integers(min_value=0, max_value=10**12))
def test_every_integer_is_expressible(value):
    toks = number(value)
    assert all(t in set(tokens()) for t in toks)
    assert read_number(toks + ["<eos>"], 0) == (value, len(toks))


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5000), st.integers(1, 4), st.sampled_from([1, 4, 16, 64]))
def test_tile_domain_is_exactly_the_perfect_tilings(extent, n, limit):
    dom = domains.tile_domain(extent, n, limit)
    assert all(len(t) == n and math.prod(t) == extent and t[-1] <= limit for t in dom)
    assert len(set(dom)) == len(dom)
    if n == 2:  # brute force: one tiling per divisor d <= limit as the innermost factor
        assert len(dom) == sum(1 for d in range(1, limit + 1) if extent % d == 0)


def test_tokenizer_saves_and_loads(tmp_path):
    from transformers import AutoTokenizer

    tok = tokenizer()
    text = "<bos> tile n 4 ext <num> d3 d2 d0 d0 d0 </num> limit 64 : 8 1 4 <num> d1 d0 d0 d0 </num> <eos>"
    ids = tok(text)["input_ids"]
    assert tok.unk_token_id not in ids and tok.convert_ids_to_tokens(ids) == text.split()
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again(text)["input_ids"] == ids and len(again) == len(tokens())


def _roundtrip_all_tasks(name, host, per_task):
    rng = np.random.default_rng(0)
    checked = 0
    for task in extract_tasks(get_workload(name), host):
        space = design_space(task, host)
        for i in range(per_task):
            k = i % len(space.sketches)
            sch, program = replay(space, k, random_chooser(rng), host.hardware, seed=i + 1)
            assert sch is not None
            sentence = encode(program, prompt(task, host.hardware, space, k))
            assert "<unk>" not in sentence and all(t in set(tokens()) for t in sentence)
            again = decode(" ".join(sentence).split())
            assert again == program, task.name
            assert tvm_ffi.structural_equal(apply_program(space, again, host.hardware).mod, sch.mod), task.name
            checked += 1
    return checked


@pytest.mark.parametrize("name", ["bert_tiny", "resnet50", "gpt2"])
def test_roundtrip_is_lossless_on_every_task(name, host):
    assert _roundtrip_all_tasks(name, host, per_task=2) > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mobilenet_v2", "resnext50", "bert_base", "densenet121", "bert_large",
                                  "wide_resnet50", "resnet3d_18", "dcgan", "llama"])
def test_roundtrip_is_lossless_on_the_other_workloads(name, host):
    assert _roundtrip_all_tasks(name, host, per_task=2) > 0


@pytest.fixture(scope="module")
def conv_space(host):
    tasks = extract_tasks(get_workload("resnet50"), host)
    task = next(t for t in tasks if "conv2d" in t.name)  # the heaviest convolution (batch norm fused in)
    return design_space(task, host)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31))
def test_random_programs_survive_encoding(conv_space, host, seed):
    rng = np.random.default_rng(seed)
    k = seed % len(conv_space.sketches)
    sch, program = replay(conv_space, k, random_chooser(rng), host.hardware, seed=seed % 1000 + 1)
    if sch is None:
        return
    assert decode(encode(program, prompt(conv_space.task, host.hardware, conv_space, k))) == program


def test_out_of_domain_decisions_are_rejected(conv_space, host):
    rng = np.random.default_rng(1)
    _, program = replay(conv_space, 0, random_chooser(rng), host.hardware)
    tile = next(i for i, d in enumerate(program.decisions) if d.kind == "tile")
    d = program.decisions[tile]
    bad = Decision("tile", d.header, (d.header[1] + 1,) + d.value[1:])  # product != extent
    broken = Program(program.sketch, program.decisions[:tile] + (bad,) + program.decisions[tile + 1:])
    with pytest.raises(InvalidDecision, match="not in its domain"):
        apply_program(conv_space, broken, host.hardware)
    with pytest.raises(InvalidDecision, match="does not exist"):
        apply_program(conv_space, Program(99, program.decisions), host.hardware)


def test_compute_location_domain_matches_tvm():
    """The domain lists exactly the locations TVM keeps (it snaps any other one)."""
    import tvm
    from tvm import te
    from tvm.s_tir import Schedule

    a = te.placeholder((64, 64), name="A")
    b = te.placeholder((64, 64), name="B")
    a2 = te.compute((64, 64), lambda i, j: a[i, j] * 2.0, name="A2")
    r = te.reduce_axis((0, 64), name="k")
    c = te.compute((64, 64), lambda i, j: te.sum(a2[i, r] * b[r, j], axis=r), name="C")
    sch = Schedule(tvm.IRModule({"main": te.create_prim_func([a, b, c])}))
    i, _, _ = sch.get_loops(sch.get_sblock("C"))
    sch.split(i, [8, 8])
    dom = domains.location_domain(sch, sch.get_sblock("A2"))
    assert dom[:2] == [(-2,), (-1,)] and len(dom) >= 3  # inline, root, then loops of the consumer


def test_structurally_different_subgraphs_get_different_prompts(host):
    # Keyed by the computation: two tasks that differ only in which inputs are layout-free weights
    # (gpt2's bias add of a constant and its residual add of two activations) read alike, since the
    # vocabulary has no token for a layout-free buffer (a known gap of the prompt; docs/language.md).
    import tvm

    from tlm_core.ir.tasks import structural_hash

    prompts = {}
    for name in ("bert_tiny", "resnet50", "gpt2", "mobilenet_v2"):
        for t in extract_tasks(get_workload(name), host):
            computation = structural_hash(tvm.IRModule({"main": t.mod["main"].without_attr("layout_free_buffers")}))
            prompts[computation] = tuple(subgraph_tokens(t.mod))
    assert len(set(prompts.values())) == len(prompts)


def test_cli_sample_writes_parquet(tmp_path):
    out = tmp_path / "s.parquet"
    run = subprocess.run([sys.executable, "-m", "tlm_core.cli", "sample", "bert_tiny", "-n", "60", "--out", str(out),
                          "--json", "--workers", "1"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    df = pd.read_parquet(out)
    assert summary["sentences"] == len(df) == 60 and summary["max_tokens"] > 0
    assert {"prompt", "decisions", "task_hash", "workload"} <= set(df.columns)
    assert df.task_hash.nunique() == 22  # spread over every task
    for p, d in zip(df.prompt[:20], df.decisions[:20]):
        decode((p + " " + d).split())


def test_cli_sample_bad_output_name(tmp_path):
    run = subprocess.run([sys.executable, "-m", "tlm_core.cli", "sample", "bert_tiny", "-n", "5", "--out",
                          str(tmp_path / "x.csv")], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "parquet" in run.stderr and "Traceback" not in run.stderr


def test_a_tuned_trace_reads_back_as_its_program(host):
    """A schedule's trace (sketch instructions with their decisions and extents, then postprocessors)
    reads back as the program that made it, for every sketch of every bert_tiny subgraph; a trace of
    another subgraph's space is no program of this one."""
    from tlm_core.language.program import program_of_trace

    rng = np.random.default_rng(3)
    tasks = extract_tasks(get_workload("bert_tiny"), host)
    checked = 0
    for task in tasks:
        space = design_space(task, host)
        for k in range(len(space.sketches)):
            sch, program = replay(space, k, random_chooser(rng), host.hardware, seed=k + 1)
            if sch is None:
                continue
            assert program_of_trace(space, sch.trace, host.hardware) == program, (task.name, k)
            checked += 1
    assert checked >= len(tasks)
    matmul = next(t for t in tasks if t.name.startswith("fused_matmul"))
    other = next(t for t in tasks if "softmax" in t.name)
    sch, _ = replay(design_space(other, host), 0, random_chooser(rng), host.hardware)
    assert program_of_trace(design_space(matmul, host), sch.trace, host.hardware) is None
