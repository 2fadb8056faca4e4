"""Sentences: prompt tokens (subgraph, hardware, sketch) + <sep> + decision tokens + <eos>.

A decision is written as its header (what is being decided: kind and space) then ':' then its
value, so the model sees the space before it answers:

    tile n 4 ext 256 limit 64 : 8 1 4 8        SamplePerfectTile of a 256-loop into 4 factors
    categorical of 4 0 16 64 512 : 2           SampleCategorical, candidates listed, value = index
    location : 3 | root_loc | inline_loc       SampleComputeLocation
    parallel_ext limit 32 : 16                 meta_schedule.parallel annotation
    vectorize_ext limit 64 : 32                meta_schedule.vectorize annotation
"""

from __future__ import annotations

from functools import cache

from tlm_core.language.program import Decision, Program
from tlm_core.language.prompt import hardware_tokens, sketch_tokens, subgraph_tokens
from tlm_core.language.vocab import BOS, EOS, SEP, number, read_number

_EXTENT_WORD = {"parallel": "parallel_ext", "vectorize": "vectorize_ext"}
_WORD_EXTENT = {v: k for k, v in _EXTENT_WORD.items()}


def prompt(task, hardware, space, sketch: int) -> list[str]:
    """The prompt of a program of `task` on `hardware` using sketch `sketch` of `space`."""
    return [BOS, *subgraph_tokens(task.mod), *hardware_tokens(hardware),
            *sketch_tokens(sketch, space.sketches[sketch].trace), SEP]


def header_tokens(d: Decision) -> list[str]:
    """The tokens that introduce a decision (everything up to and including ':')."""
    return list(_header(d.kind, tuple(d.header)))


@cache
def _header(kind: str, header: tuple[int, ...]) -> tuple[str, ...]:
    # Cached: sampling writes the same few headers hundreds of thousands of times.
    if kind == "tile":
        n, ext, limit = header
        return ("tile", "n", *number(n), "ext", *number(ext), "limit", *number(limit), ":")
    if kind == "categorical":
        return ("categorical", "of", *number(len(header)), *(t for c in header for t in number(c)), ":")
    if kind == "location":
        return ("location", ":")
    return (_EXTENT_WORD[kind], "limit", *number(header[0]), ":")


def value_tokens(d: Decision) -> list[str]:
    """The tokens of a decision's value."""
    return list(_value(d.kind, tuple(d.value)))


@cache
def _value(kind: str, value: tuple[int, ...]) -> tuple[str, ...]:
    if kind == "location":
        loc = value[0]
        return ("inline_loc",) if loc == -2 else ("root_loc",) if loc == -1 else tuple(number(loc))
    return tuple(t for v in value for t in number(v))


def decision_tokens(program: Program) -> list[str]:
    out: list[str] = []
    for d in program.decisions:
        out += _header(d.kind, d.header)
        out += _value(d.kind, d.value)
    out.append(EOS)
    return out


def encode(program: Program, prompt_tokens: list[str]) -> list[str]:
    """The whole sentence."""
    return [*prompt_tokens, *decision_tokens(program)]


def decode(tokens: list[str]) -> Program:
    """The program of a sentence (prompt's sketch index + decisions); raises ValueError if malformed."""
    sketch_at = tokens.index("<sketch>")
    sketch, _ = read_number(tokens, sketch_at + 1)
    pos = tokens.index(SEP) + 1
    decisions = []
    while tokens[pos] != EOS:
        word = tokens[pos]
        if word == "tile":
            n, pos = read_number(tokens, pos + 2)
            ext, pos = read_number(tokens, pos + 1)
            limit, pos = read_number(tokens, pos + 1)
            pos += 1  # ':'
            factors = []
            for _ in range(n):
                f, pos = read_number(tokens, pos)
                factors.append(f)
            decisions.append(Decision("tile", (n, ext, limit), tuple(factors)))
        elif word == "categorical":
            k, pos = read_number(tokens, pos + 2)
            cands = []
            for _ in range(k):
                c, pos = read_number(tokens, pos)
                cands.append(c)
            idx, pos = read_number(tokens, pos + 1)
            decisions.append(Decision("categorical", tuple(cands), (idx,)))
        elif word == "location":
            pos += 2
            if tokens[pos] in ("inline_loc", "root_loc"):
                loc, pos = (-2 if tokens[pos] == "inline_loc" else -1), pos + 1
            else:
                loc, pos = read_number(tokens, pos)
            decisions.append(Decision("location", (), (loc,)))
        elif word in _WORD_EXTENT:
            limit, pos = read_number(tokens, pos + 2)
            value, pos = read_number(tokens, pos + 1)
            decisions.append(Decision(_WORD_EXTENT[word], (limit,), (value,)))
        else:
            raise ValueError(f"unexpected token {word!r} at {pos} in the decisions")
    return Program(sketch, tuple(decisions))
