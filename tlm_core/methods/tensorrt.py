"""`tensorrt`: NVIDIA TensorRT end to end; needs a CUDA device and the `tensorrt` package."""

from __future__ import annotations

from tlm_core.methods import Method, register


def _available() -> tuple[bool, str]:
    import importlib.util

    try:
        import torch

        cuda = torch.cuda.is_available()
    except Exception:  # noqa: BLE001
        cuda = False
    if not cuda:
        return False, "unavailable: no CUDA device"
    if importlib.util.find_spec("tensorrt") is None:
        return False, "unavailable: the tensorrt package is not installed"
    return False, "unavailable: the TensorRT path is not implemented in this version"


METHOD = register(Method("tensorrt", "NVIDIA TensorRT (GPU only), end to end", False, _available))
