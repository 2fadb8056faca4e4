import time

from tlm_core.ir.tasks import extract_tasks
from tlm_core.ir.workloads import Workload, get_workload


def test_bert_tiny_tasks(host):
    tasks = extract_tasks(get_workload("bert_tiny"), host)
    assert len(tasks) == len({t.hash for t in tasks})  # deduplicated by structural hash
    assert sum(t.weight for t in tasks) > len(tasks)  # repeated subgraphs carry weight
    matmuls = [t for t in tasks if "matmul" in t.name]
    assert matmuls and all(t.flops > 0 for t in matmuls)
    # FLOPs of the FFN up-projection: 128 tokens x 128 -> 512, plus the bias add.
    assert any(t.flops == 2 * 128 * 128 * 512 + 128 * 512 for t in matmuls)
    assert tasks[0].mod["main"] is not None  # the IR deserializes


def test_extraction_is_cached(host):
    wl = get_workload("bert_tiny")
    first = extract_tasks(wl, host)
    start = time.perf_counter()
    again = extract_tasks(wl, host)
    assert time.perf_counter() - start < 0.5
    assert [t.summary() for t in again] == [t.summary() for t in first]


def test_layer_scaling_matches_the_whole_model(host):
    """A `repeat` workload built from 1 and 2 layers weighs its tasks like the full-depth model."""
    kw = (("heads", 2), ("hidden", 32), ("intermediate", 64))
    inputs = (((1, 16), "int64"),)
    scaled = Workload("bert_l5_scaled", "hf_bert", inputs, "train", kw, repeat=("layers", 5))
    whole = Workload("bert_l5_whole", "hf_bert", inputs, "train", kw + (("layers", 5),))
    got = {t.hash: t.weight for t in extract_tasks(scaled, host, use_cache=False)}
    want = {t.hash: t.weight for t in extract_tasks(whole, host, use_cache=False)}
    assert got == want


def test_tasks_alike_but_for_block_names_get_their_own_design_space(host):
    """Two workloads' tasks may agree in name, weight, FLOPs and structural hash (which ignores block
    names: gpt2's and bert_base's matmul11) while their blocks are named apart; a design space's
    sketches find blocks by name, so each task must get sketches of its own module."""
    import dataclasses

    import tvm
    from tvm import te

    from tlm_core.ir.space import design_space, sample_random
    from tlm_core.ir.tasks import Task

    def matmul(block: str) -> Task:
        a, b = te.placeholder((64, 64), name="A"), te.placeholder((64, 64), name="B")
        r = te.reduce_axis((0, 64), name="k")
        c = te.compute((64, 64), lambda i, j: te.sum(a[i, r] * b[r, j], axis=r), name=block)
        return Task.from_mod("matmul11", tvm.IRModule({"main": te.create_prim_func([a, b, c])}))

    first, other = matmul("T_matmul_NN"), matmul("matmul")
    second = dataclasses.replace(other, hash=first.hash)  # as alike as the two matmul11 were
    assert first == second and first.mod_json != second.mod_json
    design_space(first, host)
    space = design_space(second, host)
    assert space.task is second
    assert "T_matmul_NN" not in space.sketches[0].mod.script()
    assert len(sample_random(space, 2)) == 2  # replays on its own module: no 'get-block' error
