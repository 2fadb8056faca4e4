"""Small TIR kernels for tests and benchmarks: a matmul, and programs that crash, hang or lie."""

from __future__ import annotations

import tvm
from tvm import te
from tvm.script import tirx as T

from tlm_core.ir.tasks import Task


def matmul(n: int = 256, m: int | None = None, k: int | None = None) -> Task:
    """C[n, m] = A[n, k] @ B[k, m] in float32."""
    m, k = m or n, k or n
    a = te.placeholder((n, k), name="A")
    b = te.placeholder((k, m), name="B")
    r = te.reduce_axis((0, k), name="k")
    c = te.compute((n, m), lambda i, j: te.sum(a[i, r] * b[r, j], axis=r), name="C")
    return Task.from_mod(f"matmul_{n}x{m}x{k}", tvm.IRModule({"main": te.create_prim_func([a, b, c])}))


def weighted_matmul(n: int = 128) -> Task:
    """`matmul` with B marked a layout-free weight, as task extraction marks a model's constants: a
    schedule may then re-lay B out in the order it reads it (MetaSchedule's RewriteLayout)."""
    task = matmul(n)
    func = task.mod["main"].with_attr("layout_free_buffers", [1])
    return Task.from_mod(f"weighted_matmul_{n}", tvm.IRModule({"main": func}))


def scale_add(n: int = 1024) -> Task:
    """D = A * 2 + 1 through an intermediate buffer (two blocks, so a schedule can corrupt the middle)."""
    a = te.placeholder((n,), name="A")
    b = te.compute((n,), lambda i: a[i] * 2.0, name="B")
    d = te.compute((n,), lambda i: b[i] + 1.0, name="D")
    return Task.from_mod(f"scale_add_{n}", tvm.IRModule({"main": te.create_prim_func([a, d])}))


@T.prim_func(s_tir=True)
def _segfault(a: T.Buffer((4,), "float32"), b: T.Buffer((4,), "float32")):
    T.func_attr({"tirx.noalias": True})
    for i in range(4):
        with T.sblock("B"):
            vi = T.axis.spatial(4, i)
            # Far outside any mapping: the store faults.
            b[vi + 1_000_000_000_000] = a[vi]


@T.prim_func(s_tir=True)
def _hang(a: T.Buffer((1,), "float32"), b: T.Buffer((1,), "float32")):
    T.func_attr({"tirx.noalias": True})
    for i in range(1 << 50):  # ~10^15 dependent additions: hours
        with T.sblock("B"):
            vi = T.axis.reduce(1 << 50, i)  # noqa: F841 (TVMScript binds the block axis)
            with T.init():
                b[0] = T.float32(0)
            b[0] = b[0] * T.float32(0.999999) + a[0]


def segfault() -> Task:
    """A program whose store faults (the process dies with SIGSEGV)."""
    return Task.from_mod("segfault", tvm.IRModule({"main": _segfault}))


def hang() -> Task:
    """A program that runs for hours."""
    return Task.from_mod("hang", tvm.IRModule({"main": _hang}))


def gather(rows: int = 64, n: int = 32, d: int = 16) -> Task:
    """out[i, :] = table[int32(ids[i]), :]: int64 ids cast before they index (as a model's embedding)."""
    table = te.placeholder((rows, d), name="table")
    ids = te.placeholder((n,), dtype="int64", name="ids")
    ids32 = te.compute((n,), lambda i: ids[i].astype("int32"), name="ids32")
    out = te.compute((n, d), lambda i, j: table[ids32[i], j], name="out")
    return Task.from_mod(f"gather_{rows}x{n}x{d}", tvm.IRModule({"main": te.create_prim_func([table, ids, out])}))


def masked_exp(n: int = 64) -> Task:
    """out[i, j] = exp(x[i, j]) where mask[i] != 0, else 0: an attention-mask-like Select."""
    x = te.placeholder((n, n), name="x")
    mask = te.placeholder((n,), dtype="int8", name="mask")
    out = te.compute((n, n), lambda i, j: te.if_then_else(mask[i] != 0, te.exp(x[i, j]), 0.0), name="out")
    return Task.from_mod(f"masked_exp_{n}", tvm.IRModule({"main": te.create_prim_func([x, mask, out])}))
