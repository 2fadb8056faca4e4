"""A program in the tensor language: a sketch of a task's design space plus its decisions.

Decisions, in replay order: every sampling instruction of the sketch (SamplePerfectTile,
SampleCategorical, SampleComputeLocation) and the sketch's parallel and vectorize extents (the
`meta_schedule.parallel` / `meta_schedule.vectorize` annotations, which TLM treats as decisions).
`replay` applies a program to its task through the live schedule: a decision provider sees each
decision's space in the current schedule state (what the generator masks the model's logits with).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tlm_core.language import domains

#: Annotation keys whose values are decisions, and the decision kind each becomes.
EXTENT_ANNOTATIONS = {"meta_schedule.parallel": "parallel", "meta_schedule.vectorize": "vectorize"}


@dataclass(frozen=True)
class Decision:
    """One decision: its kind, the header describing its space, and the value taken."""

    kind: str  # "tile" | "categorical" | "location" | "parallel" | "vectorize"
    header: tuple[int, ...]  # tile: (n, extent, max_innermost); categorical: candidates; extents: (limit,)
    value: tuple[int, ...]  # tile: n factors; categorical: (index,); location: (loc,); extents: (extent,)


@dataclass(frozen=True)
class Program:
    """A sketch (by index in the task's design space) and its decisions."""

    sketch: int
    decisions: tuple[Decision, ...]


class InvalidDecision(ValueError):
    """A decision outside its valid domain in the current schedule state."""


def _annotation_kind(inst) -> str | None:
    if inst.kind.name != "Annotate":
        return None
    return EXTENT_ANNOTATIONS.get(str(inst.attrs[0]))


# Per-sketch caches are keyed by id(space): design_space() caches every space for the life of the
# process, so the id is stable, and it tells apart spaces of one task on two targets.
_EXTENT_INSTS: dict = {}  # (id(space), sketch, position, value) -> Instruction
_BASE: dict = {}  # task hash -> unscheduled Schedule, copied for each replay


def _with_extent(key: tuple, inst, value: int):
    """The Annotate instruction with another value (annotation values are inputs, not decisions)."""
    if key + (value,) not in _EXTENT_INSTS:
        import tvm
        from tvm.s_tir.schedule import Instruction

        inputs = [inst.inputs[0], tvm.tirx.IntImm("int32", value)]
        _EXTENT_INSTS[key + (value,)] = Instruction(inst.kind, inputs, inst.attrs, inst.outputs)
    return _EXTENT_INSTS[key + (value,)]


def _fresh_schedule(task, seed: int):
    """A new schedule of the task: a copy of a cached one (cheaper than parsing the module again)."""
    from tvm.s_tir import Schedule
    from tvm.s_tir.schedule import _ffi_api

    if task.hash not in _BASE:
        _BASE[task.hash] = Schedule(task.mod)
    sch = _ffi_api.ScheduleCopy(_BASE[task.hash])
    _ffi_api.ScheduleSeed(sch, max(1, seed))  # sch.seed() goes through a slow type-checking wrapper
    return sch


#: chooser(kind, header, domain) -> value, where domain() lists the valid values in the current
#: state (computed only when asked: listing compute locations costs schedule copies). Random
#: sampling, replay and the model all answer through it. A chooser may return None for a
#: compute location: TVM then samples it uniformly from the valid ones (the same distribution).
Chooser = Callable[[str, tuple, Callable[[], list]], "tuple | None"]
_SAMPLING = ("SamplePerfectTile", "SampleCategorical", "SampleComputeLocation")


_STATIC: dict = {}  # (id(space), sketch) -> {position: tile header} or None
_INSTS: dict = {}  # (id(space), sketch) -> [(position, instruction, extent-annotation kind or None)]


def _sketch_insts(space, sketch_index: int) -> list:
    """The sketch's instructions as Python objects, read from TVM once (FFI containers are slow)."""
    key = (id(space), sketch_index)
    if key not in _INSTS:
        _INSTS[key] = [(pos, inst, _annotation_kind(inst))
                       for pos, inst in enumerate(space.sketches[sketch_index].trace.insts)]
    return _INSTS[key]


def _static_tiles(space, sketch_index: int) -> dict | None:
    """Tile headers known before replay, or None when some loop extent depends on a decision.

    A loop's extent is fixed when its LoopRV was made before any instruction consumed a sampled
    value (a Split by sampled factors, a ComputeAt to a sampled location...): then every replay
    sees the same extent, and tiles can be drawn without calling back into Python per instruction.
    """
    key = (id(space), sketch_index)
    if key in _STATIC:
        return _STATIC[key]
    trace = space.sketches[sketch_index].trace
    # One slow replay gives every tiled loop's extent (the headers of its tile decisions, in order).
    import numpy as np

    _, probe = replay(space, sketch_index, random_chooser(np.random.default_rng(0)), None, fast=False)
    tile_headers = iter([d.header for d in probe.decisions if d.kind == "tile"])
    sampled_rvs, static_rvs, dynamic, headers = set(), set(), False, {}
    for pos, inst in enumerate(trace.insts):
        if any(hash(x) in sampled_rvs for x in inst.inputs):
            dynamic = True
        if inst.kind.name == "SamplePerfectTile":
            headers[pos] = next(tile_headers)
            if hash(inst.inputs[0]) not in static_rvs:
                _STATIC[key] = None
                return None
        outputs = {hash(o) for o in inst.outputs}
        if inst.kind.name in _SAMPLING:
            sampled_rvs |= outputs
        elif not dynamic:
            static_rvs |= outputs
    _STATIC[key] = headers
    return headers


def replay(space, sketch_index: int, choose: Chooser, hardware, seed: int = 1, fast: bool = True):
    """Apply the sketch with decisions from `choose`; (schedule, Program), postprocessors applied.

    Returns (None, program) when a postprocessor rejects the program.
    """
    from tvm.s_tir import Trace
    from tvm.s_tir.schedule import _ffi_api

    # Extent annotations are inputs of the trace, not decisions: chosen before the replay.
    insts, extents = [], {}
    for pos, inst, kind in _sketch_insts(space, sketch_index):
        if kind is None:
            insts.append(inst)
            continue
        limit = int(inst.inputs[1])
        value = choose(kind, (limit,), lambda: domains.extent_domain(kind, limit, hardware))
        extents[pos] = Decision(kind, (limit,), tuple(value))
        insts.append(_with_extent((id(space), sketch_index, pos), inst, value[0]))
    sch = _fresh_schedule(space.task, seed)
    sampled: dict[int, list] = {}  # instruction position -> [kind, header, value or None]
    counter = [0]  # the provider sees every instruction, in trace order
    raised: list[Exception] = []  # exceptions cross TVM's FFI as RuntimeError: keep the original

    def provider(inst, inputs, attrs, decision):
        try:
            return choose_for(inst, inputs, attrs, decision)
        except Exception as err:
            raised.append(err)
            raise

    def choose_for(inst, inputs, attrs, decision):
        pos = counter[0]
        counter[0] += 1
        name = inst.kind.name
        if name == "SamplePerfectTile":
            n, max_inner = int(attrs[0]), int(attrs[1])
            header = (n, int(_ffi_api.ScheduleGet(sch, inputs[0]).extent), max_inner)  # no type-check wrapper
            value = choose("tile", header, lambda: domains.tile_domain(header[1], n, max_inner))
            sampled[pos] = ["tile", header, tuple(value)]
            return [int(v) for v in value]
        if name == "SampleCategorical":
            header = tuple(int(c) for c in attrs[0])
            value = choose("categorical", header, lambda: domains.categorical_domain(header))
            sampled[pos] = ["categorical", header, tuple(value)]
            return int(value[0])
        if name == "SampleComputeLocation":
            value = choose("location", (), lambda: domains.location_domain(sch, inputs[0]))
            sampled[pos] = ["location", (), None if value is None else tuple(value)]
            return None if value is None else int(value[0])
        return decision

    static = _static_tiles(space, sketch_index) if fast and getattr(choose, "stateless", False) else None
    if static is not None:
        # Fast path: every decision drawn up front, one replay without Python callbacks.
        chosen = {}
        for pos, inst in enumerate(insts):
            name = inst.kind.name
            if name == "SamplePerfectTile":
                header = static[pos]
                value = choose("tile", header, lambda h=header: domains.tile_domain(h[1], h[0], h[2]))
                sampled[pos] = ["tile", header, tuple(value)]
                chosen[inst] = [int(v) for v in value]
            elif name == "SampleCategorical":
                header = tuple(int(c) for c in inst.attrs[0])
                value = choose("categorical", header, lambda h=header: domains.categorical_domain(h))
                sampled[pos] = ["categorical", header, tuple(value)]
                chosen[inst] = int(value[0])
            elif name == "SampleComputeLocation":
                sampled[pos] = ["location", (), None]  # left to TVM: uniform over the valid ones
        Trace(insts, chosen).apply_to_schedule(sch, remove_postproc=True)
    else:
        try:
            Trace(insts, {}).apply_to_schedule(sch, remove_postproc=True, decision_provider=provider)
        except Exception:
            if raised:
                raise raised[0] from None
            raise
    made = None  # what TVM sampled, read from the trace only when a location was left to it
    decisions = []
    for pos in range(len(insts)):
        if pos in extents:
            decisions.append(extents[pos])
        elif pos in sampled:
            kind, header, value = sampled[pos]
            if value is None:  # TVM sampled it
                if made is None:
                    made = [sch.trace.decisions[i] for i in sch.trace.insts if i.kind.name in _SAMPLING]
                value = (int(made[sum(1 for p in sampled if p < pos)]),)
            decisions.append(Decision(kind, header, value))
    program = Program(sketch_index, tuple(decisions))
    if not all(p.apply(sch) for p in space.postprocs):
        return None, program
    return sch, program


def random_chooser(rng) -> Chooser:
    """Algorithm 1: each decision uniformly from its valid domain."""

    def choose(kind, header, domain):
        if kind == "location":
            return None  # TVM samples uniformly among the valid locations, without listing them
        values = domain()
        return values[int(rng.integers(len(values)))]

    choose.stateless = True  # needs no live schedule state: replay may take its fast path
    return choose


def program_chooser(program: Program) -> Chooser:
    """Replays a given program; raises InvalidDecision on a value outside its current domain."""
    # Extents are chosen before the replay, sampling decisions during it: two queues, each in order.
    extents = [d for d in program.decisions if d.kind in EXTENT_ANNOTATIONS.values()]
    sampling = [d for d in program.decisions if d.kind not in EXTENT_ANNOTATIONS.values()]

    def choose(kind, header, domain):
        queue = extents if kind in EXTENT_ANNOTATIONS.values() else sampling
        if not queue:
            raise InvalidDecision(f"the program has fewer {kind} decisions than sketch {program.sketch}")
        d = queue.pop(0)
        if d.kind != kind or tuple(d.header) != tuple(header):
            raise InvalidDecision(f"decision {d.kind}{d.header} where the sketch has {kind}{header}")
        if d.value not in domain():
            raise InvalidDecision(f"{kind} value {d.value} is not in its domain here")
        return d.value

    return choose


def apply_program(space, program: Program, hardware):
    """The scheduled (postprocessed) program, or InvalidDecision."""
    if not 0 <= program.sketch < len(space.sketches):
        raise InvalidDecision(f"sketch {program.sketch} does not exist ({len(space.sketches)} sketches)")
    sch, replayed = replay(space, program.sketch, program_chooser(program), hardware)
    if len(replayed.decisions) != len(program.decisions):
        raise InvalidDecision("the program has more decisions than its sketch")
    if sch is None:
        raise InvalidDecision("a postprocessor rejects the program")
    return sch


_SIMPLE: dict = {}  # (id(space), sketch) -> the sketch's instructions without dead code


def _simple_sketch(space, sketch_index: int) -> list:
    key = (id(space), sketch_index)
    if key not in _SIMPLE:
        _SIMPLE[key] = list(space.sketches[sketch_index].trace.simplified(remove_postproc=True).insts)
    return _SIMPLE[key]


def program_of_trace(space, trace, hardware) -> Program | None:
    """The program of the language that a tuned trace of the task's space is, or None.

    A trace that MetaSchedule tuned (its database, a user's tuning log) is one of the space's sketches
    with its sampling decisions and its parallel/vectorize annotation values filled in, then its
    postprocessors. It is that sketch's program when its instructions before the postprocessors match
    the sketch's one by one (kind and attributes), every value lies in its decision's domain, and
    replaying the program builds the same module as the trace does (checked: a trace of
    another space, or of another task, is None). So search results become sentences: demonstrations.
    """
    # Compared without dead code: MetaSchedule's database keeps traces simplified (a sketch's
    # GetSBlock of a block it never schedules is gone), a replayed one is not.
    simple = trace.simplified(remove_postproc=False)
    every = list(simple.insts)
    decided = dict(simple.decisions.items())
    target_mod = None
    for index in range(len(space.sketches)):
        sketch = _simple_sketch(space, index)
        # The sketch's part of the trace; what follows it (MetaSchedule's EnterPostproc and the
        # postprocessors' instructions) the check of the built module below covers.
        insts = every[:len(sketch)]
        if len(insts) != len(sketch) or not all(
                mine.kind.name == theirs.kind.name and str(mine.attrs) == str(theirs.attrs)
                for mine, theirs in zip(sketch, insts)):
            continue
        extents = [(int(theirs.inputs[1]),) for theirs in insts if _annotation_kind(theirs) is not None]
        sampling = [decided[i] for i in insts if i.kind.name in _SAMPLING]

        def choose(kind, header, domain, extents=extents, sampling=sampling):
            if kind in EXTENT_ANNOTATIONS.values():
                value = extents.pop(0)
            else:
                d = sampling.pop(0)
                value = tuple(int(x) for x in d) if kind == "tile" else (int(d),)
            if value not in domain():
                raise InvalidDecision(f"{kind} value {value} is not in its domain here")
            return value

        try:
            sch, program = replay(space, index, choose, hardware, fast=False)
        except (InvalidDecision, RuntimeError, ValueError, IndexError):  # TVM's errors are RuntimeErrors
            continue
        if sch is None:
            continue
        if target_mod is None:
            target_mod = _script(space.task.mod, trace)
        if _script(space.task.mod, sch.trace) == target_mod:
            return program
    return None


def _script(mod, trace) -> str:
    """The module a trace builds, as TVMScript text. Compared as text, not structurally: a trace read
    back from MetaSchedule's JSON database holds the layout rewrite's annotation `True` as `1`."""
    from tvm.s_tir import Schedule

    sch = Schedule(mod)
    trace.apply_to_schedule(sch, remove_postproc=False)
    return sch.mod.script().replace('"meta_schedule.layout_rewrite_preproc": True',
                                    '"meta_schedule.layout_rewrite_preproc": 1')
