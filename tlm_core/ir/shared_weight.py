"""A batched matmul whose weight is one matrix broadcast over the batch, as one matmul of the
flattened batch (pipeline 7).

Why: PyTorch decomposes `linear` on an input it cannot view as a matrix (BERT's attention output
after its heads are transposed back, at batch > 1) into `expand` of the weight to [B, K, N] and a
`bmm`. The Relax frontend keeps both; FoldConstant then stores the broadcast weight B times over, and
the task is a batched matmul reading a separate copy of the weight per batch: bert_large's attention
output projection (4 x 256 tokens, 1024 x 1024) took 75.6 ms after 64 TLM programs on the Zen 4 host
where its query/key/value projections, the same matmul on a flattened batch, took 12.0 ms
(`results/znver4/figure13/full/stores/bert_large-tlm-64`): 35% of the model's subgraph sum.

    matmul(broadcast_to(x, S), broadcast_to(w, [B.., K, N]))   (x: [B.., M, K], w: [K, N])
      -> reshape(matmul(reshape(x, [B.. x M, K]), w), [B.., M, N])

computes the same sums (each output is the same K-long dot product) with one copy of the weight and
the matrix form of every other linear layer. Only matmuls of that form change; the broadcasts they
leave unused are removed before FoldConstant could store them.
"""

from __future__ import annotations

import math

from tlm_core.ir.relax_rewrite import out_dtype, rewrite_calls, static_shape


def rewrite(mod):
    """`mod` with every batched matmul of a batch-broadcast 2-D weight a matmul of the flattened batch."""
    from tvm import relax

    # The broadcasts the rewritten matmuls leave unused go before FoldConstant could store them.
    return relax.transform.DeadCodeElimination()(rewrite_calls(mod, "relax.matmul", _flattened))


def _broadcast(mutator, var):
    """The `broadcast_to` call `var` is bound to, or None."""
    import tvm
    from tvm import relax

    value = mutator.lookup_binding(var) if isinstance(var, relax.Var) else None
    return value if isinstance(value, relax.Call) and value.op == tvm.ir.Op.get("relax.broadcast_to") else None


def _flattened(mutator, call):
    """The flattened form of one matmul, or None where its weight is not a broadcast matrix."""
    from tvm import relax

    a, b = call.args
    spread = _broadcast(mutator, b)
    if spread is None:
        return None
    w = spread.args[0]
    a_shape, b_shape, w_shape, out = static_shape(a), static_shape(b), static_shape(w), static_shape(call)
    if (None in (a_shape, b_shape, w_shape, out) or len(w_shape) != 2 or len(a_shape) < 3
            or b_shape[-2:] != w_shape or a_shape[:-2] != b_shape[:-2]):
        return None
    x = a
    if (same := _broadcast(mutator, a)) is not None and static_shape(same.args[0]) == a_shape:
        x = same.args[0]  # a broadcast to its own shape: a no-op the frontend writes
    bb = mutator.builder_
    flat = bb.emit(relax.op.reshape(x, (math.prod(a_shape[:-1]), a_shape[-1])))
    y = bb.emit(relax.op.matmul(flat, w, out_dtype=out_dtype(call.attrs)))
    return relax.op.reshape(y, out)
