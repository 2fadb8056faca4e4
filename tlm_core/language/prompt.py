"""The prompt: the subgraph (buffers, blocks, iterators, the computation), the hardware, the sketch.

The subgraph is written from its TIR, not its name: each buffer's dtype and shape, and for each
block its iterators (spatial S / reduction R / other O, with extents) and its computation in prefix
notation over a fixed set of operators, with loads written as buffer ids and index expressions.
Two structurally different subgraphs get different prompts (a test checks this over the zoo).
"""

from __future__ import annotations

from tlm_core.ir.target import Hardware
from tlm_core.language.vocab import CALLS, DTYPES, FEATURES, INSTRUCTIONS, number

_BINARY = {"Add": "+", "Sub": "-", "Mul": "*", "Div": "/", "Mod": "%", "FloorDiv": "//", "FloorMod": "fmod",
           "Min": "min", "Max": "max", "EQ": "==", "NE": "!=", "LT": "<", "LE": "<=", "GT": ">", "GE": ">=",
           "And": "and", "Or": "or"}
_SAMPLING = {"SamplePerfectTile", "SampleCategorical", "SampleComputeLocation"}
_ANNOTATIONS = {"meta_schedule.tiling_structure": "tiling_structure", "meta_schedule.parallel": "parallel",
                "meta_schedule.vectorize": "vectorize", "meta_schedule.unroll_explicit": "unroll_explicit",
                "meta_schedule.unroll_implicit": "unroll_implicit",
                "meta_schedule.auto_tensorize": "auto_tensorize",
                "meta_schedule.cooperative_fetch": "cooperative_fetch",
                "meta_schedule.layout_rewrite_preproc": "rewrite_layout"}


def _dtype(dtype) -> str:
    s = str(dtype)
    return s if s in DTYPES else "dtype_other"


def _int(value: int) -> list[str]:
    return number(value) if value >= 0 else ["neg", *number(-value)]


class _SubgraphWriter:
    """Walks a PrimFunc and writes its tokens; buffers and iterators are numbered by appearance."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self.buffers: dict = {}  # Buffer -> id
        self.vars: dict = {}  # block iterator Var -> index within its block

    def buffer_id(self, buf) -> list[str]:
        if buf not in self.buffers:
            self.buffers[buf] = len(self.buffers)
        return ["b", *number(self.buffers[buf])]

    def shape(self, buf) -> list[str]:
        toks = ["["]
        for dim in buf.shape:
            toks += _int(int(dim)) if hasattr(dim, "value") or isinstance(dim, int) else ["var"]
        return toks + ["]"]

    def expr(self, e) -> list[str]:
        name = type(e).__name__
        if name in _BINARY:
            return [_BINARY[name], *self.expr(e.a), *self.expr(e.b)]
        if name == "IntImm":
            return _int(int(e.value))
        if name == "FloatImm":  # 4 significant digits: tells eps=1e-5 from eps=1e-12
            v = float(e.value)
            if v != v or v in (float("inf"), float("-inf")):
                return ["fconst", "nan" if v != v else "inf" if v > 0 else "-inf"]
            mantissa, exponent = f"{v:.3e}".split("e")
            m = int(round(float(mantissa) * 1000))
            return ["fconst", *_int(m), *_int(int(exponent))]
        if name == "Var":
            return ["i", *number(self.vars[e])] if e in self.vars else ["var"]
        if name in ("TensorLoad", "BufferLoad"):  # tirx calls a buffer load TensorLoad
            toks = ["load", *self.buffer_id(e.source if hasattr(e, "source") else e.buffer), "["]
            for idx in e.indices:
                toks += self.expr(idx)
            return toks + ["]"]
        if name == "Cast":
            return ["cast", _dtype(e.ty), *self.expr(e.value)]
        if name == "Not":
            return ["not", *self.expr(e.a)]
        if name == "Select":
            return ["select", *self.expr(e.condition), *self.expr(e.true_value), *self.expr(e.false_value)]
        if name == "Call":
            op = str(e.op.name).rsplit(".", 1)[-1]
            head = ["call", op] if op in CALLS else ["call_other"]
            if op == "if_then_else":
                head = ["if_then_else"]
            toks = list(head) + ["("]
            for arg in e.args:
                toks += self.expr(arg)
            return toks + [")"]
        if name == "Let":
            return ["let", *self.expr(e.value), *self.expr(e.body)]
        if name in ("Ramp", "Broadcast"):
            return [name.lower()]
        return ["expr_other"]

    def stmt(self, s) -> None:
        name = type(s).__name__
        if name == "SBlockRealize":
            self.stmt(s.block)
        elif name == "SBlock":
            for buf in s.alloc_buffers:
                self.out += ["alloc", *self.buffer_id(buf), _dtype(buf.dtype), *self.shape(buf)]
            if s.name_hint != "root":
                self.block(s)
            else:
                self.stmt(s.body)
        elif name == "SeqStmt":
            for child in s.seq:
                self.stmt(child)
        elif name == "For" or hasattr(s, "body"):  # For, LetStmt, AttrStmt, AllocBuffer, DeclBuffer
            self.stmt(s.body)
        elif hasattr(s, "then_case"):
            self.stmt(s.then_case)

    def block(self, blk) -> None:
        self.vars = {iv.var: k for k, iv in enumerate(blk.iter_vars)}
        toks = ["block", "iters"]
        for iv in blk.iter_vars:
            kind = {0: "S", 2: "R"}.get(int(iv.iter_type), "O")
            toks += [kind, *_int(int(iv.dom.extent))]
        body = blk.body
        if type(body).__name__ == "BufferStore":
            toks += ["=", "store", *self.buffer_id(body.buffer), "["]
            for idx in body.indices:
                toks += self.expr(idx)
            toks += ["]", *self.expr(body.value)]
        else:
            toks += ["=", "expr_other"]
        if blk.init is not None and type(blk.init).__name__ == "BufferStore":
            toks += ["init", *self.expr(blk.init.value)]
        self.out += toks


def subgraph_tokens(mod) -> list[str]:
    """Tokens of a task's PrimFunc "main": parameter buffers, then blocks in program order."""
    func = mod["main"]
    w = _SubgraphWriter()
    out = ["<subgraph>"]
    for param in func.params:
        out += ["buf", *w.buffer_id(param), _dtype(param.dtype), *w.shape(param)]
    w.stmt(func.body)
    return out + w.out


def hardware_tokens(hw: Hardware) -> list[str]:
    """Tokens of the hardware description (every field the schedule may depend on)."""
    if hw.kind == "cuda":
        return ["<hw>", "cuda", "sm", *number(int(hw.mcpu.removeprefix("sm_"))), "cores", *number(hw.num_cores),
                "l1", *number(hw.l1d_kb)]
    toks = ["<hw>", "llvm", "cores", *number(hw.num_cores), "simd", *number(hw.simd_bits),
            "vregs", *number(hw.vector_registers), "l1", *number(hw.l1d_kb), "l2", *number(hw.l2_kb),
            "l3", *number(hw.l3_kb)]
    return toks + [f"+{f}" for f in hw.features if f in FEATURES]


def sketch_tokens(index: int, trace) -> list[str]:
    """Tokens of a sketch: its index in the design space, then its non-sampling instructions."""
    toks = ["<sketch>", *number(index)]
    for inst in trace.insts:
        kind = inst.kind.name
        if kind in _SAMPLING:
            continue
        toks.append(kind if kind in INSTRUCTIONS else "inst_other")
        if kind == "Annotate":
            toks.append(_ANNOTATIONS.get(str(inst.attrs[0]), "ann_other"))
    return toks
