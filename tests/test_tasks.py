import time

import pytest

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


def test_a_layer_rule_workload_has_the_subgraphs_of_both_builds(host):
    """The layer rule runs the 1- and 2-layer builds end to end: every subgraph of either is a task (llama's
    1-layer build fuses its attention mask with the residual add, which ran unscheduled before pipeline 8)."""
    kw = (("heads", 2), ("hidden", 32), ("intermediate", 64), ("vocab", 128))
    scaled = Workload("llama_l4_scaled", "hf_llama", (((1, 16), "int64"),), "test", kw, repeat=("layers", 4))
    tasks = extract_tasks(scaled, host, use_cache=False)
    one, two = ({t.hash for t in extract_tasks(scaled.layers(n), host, use_cache=False)} for n in (1, 2))
    assert {t.hash for t in tasks} == one | two and one - two  # the fused mask: the 1-layer build's only
    assert all(t.weight == 0 for t in tasks if t.hash not in two)
    assert len({t.name for t in tasks}) == len(tasks)
    assert {t.hash for t in extract_tasks(scaled, host, use_cache=False, pipeline=7)} == two  # as before


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


UPSAMPLE_MODEL = """
import torch

class Up(torch.nn.Module):  # a DCGAN generator's step: a transposed convolution, batch norm, ReLU
    def __init__(self):
        super().__init__()
        self.up = torch.nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1, bias=False)
        self.bn = torch.nn.BatchNorm2d(8)

    def forward(self, x):
        return torch.relu(self.bn(self.up(x)))

def model():
    return Up().eval(), (torch.randn(2, 16, 8, 8),)
"""


def test_tvm_still_splits_a_negated_iterator_wrongly():
    """Why pipeline 5 keeps flipped weights in place (tasks.flipped_weights): TVM 0.27's iterator-map
    simplification, which TransformLayout applies to every access of a re-laid-out buffer, maps
    (3 - w) // 2 and (3 - w) % 2 to w // -2 + 1 and w % -2 * -1. When a TVM upgrade fixes it, this
    fails: the workaround may then go (and transposed convolutions get their weights prepacked)."""
    import tvm
    from tvm import sym, tirx

    w, c = tirx.Var("w", "int64"), (lambda v: tirx.const(v, "int64"))
    split = sym.iter_map_simplify([tirx.floordiv(c(3) - w, c(2)), tirx.floormod(c(3) - w, c(2))],
                                  {w: tvm.ir.Range(c(0), c(4))}, True)
    got = [[int(sym.Analyzer().simplify(tirx.Let(w, c(v), e))) for e in split] for v in range(4)]
    assert got != [[(3 - v) // 2, (3 - v) % 2] for v in range(4)]
    assert got == [[1, 0], [0, 1], [0, 0], [-1, 1]]  # wrong values, and an index out of bounds


def test_programs_of_a_transposed_convolution_compute_what_it_computes(host, tmp_path):
    """Zero wrong programs: a transposed convolution reads its kernel flipped, and a schedule that re-laid
    that kernel out computed garbage (12 of 24 random programs of this model at pipeline 4; dcgan's
    candidates 10 of 40 wrong, 3 crashed). Its weight is now read in place (the batch norm's stay
    layout-free), and every random program's output equals the unscheduled one's."""
    import numpy as np
    import tvm

    from tlm_core.ir.space import design_space, sample_random
    from tlm_core.ir.tasks import flipped_weights
    from tlm_core.ir.workloads import parse_module

    (tmp_path / "up.py").write_text(UPSAMPLE_MODEL)
    # pipeline 5: from 6 on, this transposed convolution is a sub-pixel conv2d (no flipped read); the
    # workaround stays for one the rewrite leaves (a kernel computed at run time)
    task = next(t for t in extract_tasks(parse_module(f"{tmp_path / 'up.py'}:model"), host, use_cache=False,
                                         pipeline=5)
                if "conv2d_transpose" in t.name)
    func = task.mod["main"]
    assert [int(i) for i in func.attrs["layout_free_buffers"]] == [2, 3, 4, 5]  # not the kernel (1)
    assert flipped_weights(func.with_attr("layout_free_buffers", [1, 2])) == [1]
    rng = np.random.default_rng(0)
    args = [rng.uniform(-1, 1, [int(d) for d in p.shape]).astype(str(p.dtype)) for p in func.params]

    def run(mod):
        bufs = [tvm.runtime.tensor(a.copy(), tvm.cpu()) for a in args]
        tvm.compile(mod, target=host.tvm)(*bufs)
        return bufs[-1].numpy()

    want = run(task.mod)
    programs = sample_random(design_space(task, host), 12)
    assert len(programs) == 12
    errors = [float(np.abs(run(sch.mod) - want).max()) for sch in programs]
    assert max(errors) <= 1e-4 * float(np.abs(want).max()), errors


@pytest.mark.parametrize("c_in, c_out, kernel, stride, padding, output_padding, size", [
    (4, 3, 4, 2, 1, 0, (5, 6)),  # dcgan's step: kernel 4, stride 2, padding 1
    (3, 2, 3, 2, 1, 1, (4, 4)),  # a kernel not a multiple of the stride, output padding
    (3, 2, 5, 3, 2, 0, (4, 5)),
    (2, 2, 3, 1, 1, 0, (5, 5)),  # stride 1: a convolution with the kernel flipped
    (4, 3, 4, 2, 0, 0, (3, 3)),
    (2, 3, (4, 3), (2, 1), (1, 1), 0, (4, 5)),  # each axis its own
])
def test_a_subpixel_convolution_computes_the_transposed_one(c_in, c_out, kernel, stride, padding, output_padding,
                                                            size):
    """Pipeline 6's rewrite (`subpixel.rewrite`): no transposed convolution is left, and the module
    computes what PyTorch's ConvTranspose2d does."""
    import numpy as np
    import torch
    import tvm
    from tvm import relax
    from tvm.relax.frontend.torch import from_exported_program

    from tlm_core.ir import subpixel

    torch.manual_seed(0)
    m = torch.nn.ConvTranspose2d(c_in, c_out, kernel, stride=stride, padding=padding,
                                 output_padding=output_padding, bias=False).eval()
    x = torch.randn(2, c_in, *size)
    mod = subpixel.rewrite(from_exported_program(torch.export.export(m, (x,)), keep_params_as_input=False))
    assert "conv2d_transpose" not in mod.script() and "conv2d" in mod.script()
    got = relax.VirtualMachine(relax.build(mod, target="llvm"), tvm.cpu())["main"](tvm.runtime.tensor(x.numpy()))
    want = m(x).detach().numpy()
    assert got[0].numpy().shape == want.shape
    np.testing.assert_allclose(got[0].numpy(), want, rtol=0, atol=1e-5 * float(np.abs(want).max()))


def test_a_transposed_convolution_compiles_to_a_plain_convolution(host, tmp_path):
    """dcgan's step at pipeline 6: its tasks hold no transposed convolution (a conv2d with 4 x the
    output channels, weight layout-free), and the fused module computes what the PyTorch model does."""
    import numpy as np
    import tvm
    from tvm import relax

    from tlm_core.ir.tasks import fused_relax
    from tlm_core.ir.workloads import parse_module

    (tmp_path / "up.py").write_text(UPSAMPLE_MODEL)
    source = parse_module(f"{tmp_path / 'up.py'}:model")
    tasks = extract_tasks(source, host, use_cache=False, pipeline=6)
    assert not [t for t in tasks if "transpose" in t.name and "conv" in t.name]
    conv = next(t for t in tasks if "conv2d" in t.name)
    assert [int(d) for d in conv.mod["main"].params[1].shape][0] == 4 * 8  # (r_h, r_w, c_out) channels
    assert 1 in [int(i) for i in conv.mod["main"].attrs["layout_free_buffers"]]
    module, inputs = source.build()
    vm = relax.VirtualMachine(relax.build(fused_relax(module, inputs, pipeline=6), target=host.tvm), tvm.cpu())
    got = vm["main"](*[tvm.runtime.tensor(x.numpy()) for x in inputs])[0].numpy()
    want = module(*inputs).detach().numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * float(np.abs(want).max()))


def test_a_batch_broadcast_weight_is_one_matrix(host):
    """Pipeline 7: BERT's attention output at batch > 1, which PyTorch exports as an `expand` of the
    weight and a `bmm`, becomes the matmul of the flattened batch with the weight stored once, and the
    compiled model still computes what PyTorch does. Pipeline 6 kept the batched matmul."""
    import numpy as np
    import tvm
    from tvm import relax

    from tlm_core.ir.tasks import fused_relax

    kw = (("layers", 1), ("heads", 2), ("hidden", 32), ("intermediate", 64))
    source = Workload("bert_b3", "hf_bert", (((3, 16), "int64"),), "train", kw)

    def weights(task):  # the shapes of a matmul task's parameters
        return [[int(d) for d in p.shape] for p in task.mod["main"].params]

    old = [weights(t) for t in extract_tasks(source, host, use_cache=False, pipeline=6) if "matmul" in t.name]
    new = [weights(t) for t in extract_tasks(source, host, use_cache=False, pipeline=7) if "matmul" in t.name]
    assert [3, 32, 32] in [w[1] for w in old]  # the broadcast weight: one copy per batch row
    assert all(len(w[1]) == 2 for w in new if len(w[0]) == 2)  # every matrix input meets a matrix weight
    assert not [w for w in new if w[1] == [3, 32, 32]]
    module, inputs = source.build()
    vm = relax.VirtualMachine(relax.build(fused_relax(module, inputs, pipeline=7), target=host.tvm), tvm.cpu())
    got = vm["main"](*[tvm.runtime.tensor(x.numpy()) for x in inputs])[0].numpy()
    want = module(*inputs)[0].detach().numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * float(np.abs(want).max()))
