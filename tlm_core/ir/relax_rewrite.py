"""Rewriting the calls of one Relax operator across a module: what the pipeline's own rewrites
(`subpixel`, `shared_weight`) share."""

from __future__ import annotations


def static_shape(expr) -> list[int] | None:
    """The static shape of a Relax expression, or None (symbolic, or not a tensor)."""
    try:
        return [int(d) for d in expr.ty.shape]  # TVM 0.27: `ty` (the struct info of older versions)
    except (TypeError, AttributeError, ValueError):
        return None


def out_dtype(attrs) -> str | None:
    """An operator's `out_dtype` attribute, None where it is unset ("" or void: the input's)."""
    dtype = str(attrs.out_dtype)
    return None if dtype in ("", "void") else dtype


def rewrite_calls(mod, op_name: str, rewrite):
    """`mod` with each call of `op_name` in its Relax functions replaced by `rewrite(mutator, call)`,
    where that is not None (None: the call stays). `rewrite` may emit bindings with
    `mutator.builder_` and read a variable's bound value with `mutator.lookup_binding`; the call it
    gets has its arguments rewritten already."""
    import tvm
    from tvm import relax
    from tvm.relax.expr_functor import PyExprMutator, mutator

    op = tvm.ir.Op.get(op_name)

    @mutator
    class Rewriter(PyExprMutator):
        def visit_call_(self, call):
            call = super().visit_call_(call)
            if call.op != op or (new := rewrite(self, call)) is None:
                return call
            return new

    rewriter = Rewriter(mod)
    for gv, func in mod.functions_items():
        if isinstance(func, relax.Function):
            rewriter.builder_.update_func(gv, rewriter.visit_expr(func))
    return rewriter.builder_.get()
