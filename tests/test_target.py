import json

import pytest

from tlm_core.errors import UserError
from tlm_core.ir.target import Hardware, resolve_target


def test_host_is_described_by_data(host):
    hw = host.hardware
    assert hw.kind == "llvm" and hw.num_cores >= 1
    assert hw.simd_bits in (128, 256, 512) and hw.vector_registers in (16, 32)
    assert hw.l1d_kb > 0 and hw.l2_kb > 0
    assert Hardware.from_json(hw.to_json()) == hw  # the description round-trips as data
    assert host.tvm.kind.name == "llvm" and int(host.tvm.attrs["num-cores"]) == hw.num_cores


def test_json_target_with_hardware_override(host):
    spec = {"kind": "llvm", "mcpu": "skylake-avx512", "num-cores": 4, "hardware": {"l2_kb": 1024}}
    hw = resolve_target(json.dumps(spec)).hardware
    assert (hw.mcpu, hw.num_cores, hw.simd_bits, hw.l2_kb) == ("skylake-avx512", 4, 512, 1024)
    assert "avx512f" in hw.features


@pytest.mark.parametrize("spec, words", [
    ("fast-cpu", "use 'host'"),
    ('{"kind": "opencl"}', "not supported"),
    ('{"kind": "llvm", "mcpu": "no-such-cpu"}', "does not know mcpu"),
    ('{"kind": "llvm", "hardware": {"l9_kb": 1}}', "unknown hardware fields"),
    ("[1, 2]", "must be an object"),
])
def test_bad_targets_say_what_is_wrong(spec, words):
    with pytest.raises(UserError, match=words):
        resolve_target(spec)


def test_cuda_without_a_gpu_is_a_clear_error():
    import tvm

    if tvm.cuda(0).exist:
        pytest.skip("this machine has a CUDA device")
    with pytest.raises(UserError, match="needs a CUDA device"):
        resolve_target("cuda")
