import json
import subprocess
import sys
import textwrap

import pytest

from tlm_core.errors import UserError
from tlm_core.ir.workloads import get_workload, parse_module
from tlm_core.ir.workloads.zoo import TEST, TRAIN

PAPER_TABLE1 = {  # name -> input shape as the paper's Table 1 writes it
    "resnet50": [1, 3, 224, 224], "mobilenet_v2": [1, 3, 224, 224], "resnext50": [1, 3, 224, 224],
    "bert_base": [1, 128], "bert_tiny": [1, 128], "gpt2": [1, 128], "densenet121": [8, 3, 256, 256],
    "bert_large": [4, 256], "wide_resnet50": [8, 3, 256, 256], "resnet3d_18": [4, 3, 144, 144, 16],
    "dcgan": [8, 3, 64, 64], "llama": [4, 256],
}


def tlm(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tlm_core.cli", *args], capture_output=True, text=True, timeout=600)


def test_table1_names_and_shapes():
    assert [w.name for w in TEST] == list(PAPER_TABLE1)
    for w in TEST:
        (shape, _), = w.inputs
        paper = PAPER_TABLE1[w.name]
        if w.name == "resnet3d_18":  # PyTorch's N, C, T, H, W order of the paper's N, C, H, W, T
            paper = paper[:2] + paper[4:] + paper[2:4]
        if w.name == "dcgan":  # the generator's noise input; its output is the paper's shape
            paper = [8, 100]
        assert list(shape) == paper, w.name
    assert get_workload("llama").repeat == ("layers", 32)


def test_training_set_is_other_configurations():
    assert len(TRAIN) >= 20 and all(w.split == "train" for w in TRAIN)
    test_configs = {(w.builder, w.kwargs, w.inputs) for w in TEST}
    assert not any((w.builder, w.kwargs, w.inputs) in test_configs for w in TRAIN)
    assert len({w.name for w in TEST + TRAIN}) == len(TEST + TRAIN)


def test_dcgan_generates_paper_shape():
    module, inputs = get_workload("dcgan").build()
    assert tuple(module(*inputs).shape) == (8, 3, 64, 64)


def test_unknown_workload_lists_the_names():
    with pytest.raises(UserError, match="unknown workload 'resnet51'.*resnet50"):
        get_workload("resnet51")


def test_cli_workloads_json():
    out = tlm("workloads", "--json")
    assert out.returncode == 0
    rows = json.loads(out.stdout)
    assert {r["name"] for r in rows if r["split"] == "test"} == set(PAPER_TABLE1)
    assert all({"name", "input_shapes", "split"} <= set(r) for r in rows)


USER_MODEL = textwrap.dedent("""
    import torch

    class MLP(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = torch.nn.Linear(64, 96)
            self.fc2 = torch.nn.Linear(96, 32)

        def forward(self, x):
            return self.fc2(torch.relu(self.fc1(x)))

    def model():
        return MLP(), (torch.randn(8, 64),)

    def broken():
        raise RuntimeError("no weights")
""")


def test_user_module_tasks(tmp_path):
    path = tmp_path / "mymodel.py"
    path.write_text(USER_MODEL)
    out = tlm("tasks", "--module", f"{path}:model", "--json")
    assert out.returncode == 0, out.stderr
    tasks = json.loads(out.stdout)
    assert tasks and all(t["weight"] >= 1 for t in tasks)
    # The two linears: 8x64x96 and 8x96x32 multiply-adds.
    assert sorted(t["flops"] for t in tasks)[-2:] == pytest.approx([2 * 8 * 96 * 32, 2 * 8 * 64 * 96], rel=0.1)


@pytest.mark.parametrize("args, words", [
    (["tasks", "resnet51"], "unknown workload"),
    (["tasks", "--module", "nofile.py:model"], "no file"),
    (["tasks", "--module", "{path}:nofn"], "no function 'nofn'"),
    (["tasks", "--module", "{path}:broken"], "raised RuntimeError: no weights"),
    (["tasks", "--module", "{bad}:model"], "import failed"),
    (["tasks", "bert_tiny", "--target", "{{"], "bad --target"),
    (["tasks"], "give exactly one of WORKLOAD or --module"),
])
def test_cli_errors_are_one_line(tmp_path, args, words):
    path = tmp_path / "m.py"
    path.write_text(USER_MODEL)
    bad = tmp_path / "bad.py"
    bad.write_text("import no_such_package\n")
    out = tlm(*[a.format(path=path, bad=bad) for a in args])
    assert out.returncode == 2
    lines = [line for line in out.stderr.splitlines() if line.startswith("tlm: error:")]
    assert len(lines) == 1 and words in lines[0], out.stderr
    assert "Traceback" not in out.stderr


def test_parse_module_needs_fn():
    with pytest.raises(UserError, match="FILE.py:FN"):
        parse_module("model.py")
