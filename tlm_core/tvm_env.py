"""Importing TVM the fast way, and the versions that key every cache."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from functools import cache

_INTRIN_PKG = "tvm.s_tir.tensor_intrin"


def load_tensor_intrinsics(target_kind: str) -> None:
    """Register the tensor intrinsics a target kind can use, and only those.

    MetaSchedule's TuneContext and LocalBuilder `import tvm.s_tir.tensor_intrin`, whose package
    __init__ also registers the CUDA/ROCm intrinsics, tens of seconds per fresh process, none of
    which an llvm target uses. We put the package in sys.modules without running its __init__ and
    import just the CPU submodules (a fraction of a second); a cuda target runs the full __init__.
    """
    pkg = sys.modules.get(_INTRIN_PKG)
    if pkg is None:
        spec = importlib.util.find_spec(_INTRIN_PKG)
        pkg = importlib.util.module_from_spec(spec)
        sys.modules[_INTRIN_PKG] = pkg
    if target_kind == "cuda":
        if not hasattr(pkg, "cuda"):
            pkg.__spec__.loader.exec_module(pkg)
        return
    for sub in ("x86", "arm_cpu"):
        importlib.import_module(f"{_INTRIN_PKG}.{sub}")


@cache
def versions() -> dict[str, str]:
    """Versions of the packages that change what is compiled or measured."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for dist in ("tlm", "apache-tvm", "apache-tvm-ffi", "torch", "transformers"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "absent"
    return out
