"""Rewriting the calls of one Relax operator across a module: what the pipeline's own rewrites
(`subpixel`, `shared_weight`) share."""

from __future__ import annotations


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
