"""The constrained generator: K valid programs of a task from the model, in one batched pass.

Valid by construction. Every decision is generated through the live schedule: its header tokens are
forced (what is being decided, read from the schedule state), then the model writes the value with
its logits masked to the valid domain in that state. The domain's values, written as token sequences
(`value_tokens`), form a trie, so a value of several tokens (a tile's n factors, a `<num>` number)
stays valid token by token; a token the trie leaves no choice about (a tile's last factor, whose
product is fixed) is appended without asking the model.

One pass with a KV cache. The prompts of the task's sketches are encoded once, in one forward; the
cache is then gathered to the K rows of the batch (each row a candidate, its sketch's prompt). Each
step feeds every row only its new tokens (a header, or the last value token) with explicit
position ids; rows fed fewer tokens than others are left-padded, and pads are masked out of the
attention for good. Rows advance one decision at a time in lockstep: while some rows are inside a
value, the rows starting a new decision wait, so that headers go through the model together.

Decisions come in sentence order (trace order), which is not the order in which `replay` asks its
chooser: replay picks the parallel/vectorize extents before it applies the trace, while a sentence
writes them where their annotation sits, after some tiles (a chooser answering in replay's order
would make the model write tokens out of the order it was trained on). So each candidate first
walks its sketch in sentence order:
  * static sketches (every loop extent known before replay, no compute location: dense, matmul,
    element-wise) need no schedule at all: each request is read from the sketch, the same for all;
  * the others are applied by TVM with a decision provider, in a thread per candidate: the provider
    posts each decision (header and domain, read from the live schedule) to the main thread and
    blocks for the model's answer; the extent annotations are asked for where the provider meets
    them (their values do not change the schedule before the postprocessors). Only one thread runs
    at a time (strict hand-off), so generation is deterministic. Compute-location domains are
    listed with a few TVM trials (`location_domain`) and shared by candidates with equal prefixes.
Then the finished program is applied with `replay()` (postprocessors included). A postprocessor
rejection, a replay that disagrees with the walk, or any exception is counted as invalid, never
hidden; programs with the same decisions are counted as duplicates and kept once.

The model's forward passes take most of the time, the final replays with postprocessors most of
the rest; `benchmarks/bench_generate.py` (`nox -s benchmarks`) measures it.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from tlm_core.language import domains
from tlm_core.language.program import (
    EXTENT_ANNOTATIONS,
    Decision,
    Program,
    _fresh_schedule,
    _sketch_insts,
    _static_tiles,
    replay,
)
from tlm_core.language.sampling import spread
from tlm_core.language.sentence import header_tokens, prompt, value_tokens
from tlm_core.language.vocab import PAD, tokens

_EXTENT_KINDS = frozenset(EXTENT_ANNOTATIONS.values())
#: Candidates per batch: the KV cache of a batch is rows x layers x (prompt + decisions) x width.
MAX_BATCH = 128


@dataclass(frozen=True)
class GenerationResult:
    """What `generate` made of one task."""

    programs: list  # [(Schedule, Program)]: valid, postprocessed, distinct, in turn over the sketches
    scores: list  # per program: model log-likelihood of the value tokens it chose (forced ones left out)
    invalid: int  # candidates rejected by a postprocessor or failed by an exception (must be 0)
    duplicates: int  # candidates whose decisions equal an earlier candidate's
    decisions: int  # decisions generated, over every candidate
    seconds: float
    candidates: int = 0  # candidates generated (valid + invalid + duplicates)
    forwards: int = 0  # model forward passes (prompt encoding included)
    sampled_tokens: int = 0  # value tokens the model chose (tokens forced by the domain excluded)
    errors: list = field(default_factory=list)  # why each invalid candidate failed


# -- value tries ------------------------------------------------------------------------------------


@dataclass(eq=False)
class _Node:
    """A trie node over token ids: `value` is set on leaves (the decision's value), children otherwise."""

    children: dict = field(default_factory=dict)
    value: tuple | None = None
    _ids: object = None

    def ids(self):
        import torch

        if self._ids is None:
            self._ids = torch.tensor(sorted(self.children), dtype=torch.long)
        return self._ids


_IDS: dict[str, int] = {}
_TRIES: dict = {}  # (kind, header[, domain]) -> trie


def _token_ids(toks: list[str]) -> list[int]:
    if not _IDS:
        _IDS.update({t: i for i, t in enumerate(tokens())})
    return [_IDS[t] for t in toks]


def _build_trie(kind: str, header: tuple, values: list) -> _Node:
    if not values:
        raise ValueError(f"the {kind} decision {header} has no valid value here")
    root = _Node()
    for value in values:
        node = root
        for t in _token_ids(value_tokens(Decision(kind, header, tuple(value)))):
            node = node.children.setdefault(t, _Node())
        node.value = tuple(value)
    return root


def _trie(kind: str, header: tuple, domain: Callable[[], list]) -> _Node:
    if kind in ("tile", "categorical"):  # the domain is a function of the header: listed once
        key = (kind, header)
    else:  # locations depend on the schedule state, extents (in principle) on the hardware
        key = (kind, header, tuple(domain()))
    if key not in _TRIES:
        _TRIES[key] = _build_trie(kind, header, domain())
    return _TRIES[key]


_HEADERS: dict = {}  # (kind, header) -> token ids


def _header_ids(kind: str, header: tuple) -> list[int]:
    if (kind, header) not in _HEADERS:
        _HEADERS[kind, header] = _token_ids(header_tokens(Decision(kind, header, ())))
    return _HEADERS[kind, header]


# -- decision requests in sentence order ------------------------------------------------------------
# A request stream is a generator: it yields (kind, header, domain) and is sent each chosen value.


def _is_static(space, sketch: int) -> bool:
    if any(inst.kind.name == "SampleComputeLocation" for _, inst, _ in _sketch_insts(space, sketch)):
        return False
    return _static_tiles(space, sketch) is not None


def _static_requests(space, sketch: int, hardware) -> list:
    """The requests of a static sketch: the same for every candidate, read from the sketch."""
    headers = _static_tiles(space, sketch)
    out = []
    for pos, inst, kind in _sketch_insts(space, sketch):
        name = inst.kind.name
        if kind is not None:
            limit = int(inst.inputs[1])
            out.append((kind, (limit,), lambda k=kind, lim=limit: domains.extent_domain(k, lim, hardware)))
        elif name == "SamplePerfectTile":
            h = headers[pos]
            out.append(("tile", h, lambda h=h: domains.tile_domain(h[1], h[0], h[2])))
        elif name == "SampleCategorical":
            h = tuple(int(c) for c in inst.attrs[0])
            out.append(("categorical", h, lambda h=h: domains.categorical_domain(h)))
    return out


def _replayed_requests(requests: list) -> Iterator:
    for r in requests:  # noqa: UP028 - values are sent in: `yield from` would pass them to the list
        yield r


def location_domain(sch, block_rv) -> list[tuple[int]]:
    """`domains.location_domain` with a few trials instead of one per loop, on the schedule itself.

    TVM snaps a location that is not valid to the nearest valid one below it (or root), so asking for
    the highest loop gives the highest valid loop, asking below that gives the next one, and so on;
    root (-1) is always valid, inline (-2) takes one trial. About 4x faster than one trial per loop
    (a trial costs a full feasibility analysis); a test checks it against `domains.location_domain`.
    The trials append instructions to the schedule's trace: for throw-away schedules only.
    """

    def trial(loc: int) -> int | None:
        try:
            sch.sample_compute_location(block_rv, decision=loc)
        except Exception:  # noqa: BLE001 - TVM raises a generic error for an impossible location
            return None
        trace = sch.trace
        return int(trace.decisions[trace.insts[-1]])

    loops, q = [], domains._count_loops(sch.mod["main"].body) - 1
    while q >= 0:
        got = trial(q)
        if got is None:  # not expected: fall back to one trial per location
            return domains.location_domain(sch, block_rv)
        if got < 0:
            break
        if got > q:  # not expected either
            return domains.location_domain(sch, block_rv)
        loops.append((got,))
        q = got - 1
    return ([(-2,)] if trial(-2) == -2 else []) + [(-1,)] + loops[::-1]


class _Abort(Exception):
    """Sent to a live replay thread whose candidate is given up (the generator was closed)."""


class _LiveWalk(threading.Thread):
    """A sketch applied by TVM with a provider that asks the main thread for each decision."""

    def __init__(self, space, sketch: int, hardware, locations: dict):
        super().__init__(daemon=True)
        self.space, self.sketch, self.hardware = space, sketch, hardware
        # Location domains by (sketch, position, sampling decisions so far): the schedule state is a
        # function of those, so candidates that agree so far share the (costly) listing. Shared by
        # the candidates of one `generate` call; only one thread runs at a time.
        self.locations = locations
        self.so_far: list = []
        self.requests: queue.SimpleQueue = queue.SimpleQueue()
        self.answers: queue.SimpleQueue = queue.SimpleQueue()

    def ask(self, kind, header, domain):
        self.requests.put(("ask", (kind, header, domain)))
        value = self.answers.get()
        if value is _Abort:
            raise _Abort()
        if kind not in _EXTENT_KINDS:
            self.so_far.append(tuple(value))
        return value

    def run(self) -> None:
        from tvm.s_tir import Trace
        from tvm.s_tir.schedule import _ffi_api

        try:
            insts = _sketch_insts(self.space, self.sketch)
            sch = _fresh_schedule(self.space.task, 1)
            counter = [0]
            raised: list[Exception] = []

            def provider(inst, inputs, attrs, decision):
                try:
                    return choose_for(inst, inputs, attrs, decision)
                except BaseException as err:  # crosses TVM's FFI as a RuntimeError: keep the original
                    raised.append(err)
                    raise

            def choose_for(inst, inputs, attrs, decision):
                pos = counter[0]
                counter[0] += 1
                kind = insts[pos][2]
                name = inst.kind.name
                if kind is not None:  # the annotation's value is replaced at the final replay
                    limit = int(insts[pos][1].inputs[1])
                    self.ask(kind, (limit,), lambda: domains.extent_domain(kind, limit, self.hardware))
                    return decision
                if name == "SamplePerfectTile":
                    n, max_inner = int(attrs[0]), int(attrs[1])
                    header = (n, int(_ffi_api.ScheduleGet(sch, inputs[0]).extent), max_inner)
                    value = self.ask("tile", header, lambda: domains.tile_domain(header[1], n, max_inner))
                    return [int(v) for v in value]
                if name == "SampleCategorical":
                    header = tuple(int(c) for c in attrs[0])
                    return int(self.ask("categorical", header, lambda: domains.categorical_domain(header))[0])
                if name == "SampleComputeLocation":
                    key = (self.sketch, pos, tuple(self.so_far))
                    if key not in self.locations:  # listed here, in this thread's schedule state
                        self.locations[key] = location_domain(sch, inputs[0])
                    dom = self.locations[key]
                    return int(self.ask("location", (), lambda: dom)[0])
                return decision

            try:
                Trace([i for _, i, _ in insts], {}).apply_to_schedule(sch, remove_postproc=True,
                                                                       decision_provider=provider)
            except Exception:
                if raised:
                    raise raised[0] from None
                raise
            self.requests.put(("done", None))
        except _Abort:
            pass
        except BaseException as err:  # noqa: BLE001 - reported to the main thread as an invalid candidate
            self.requests.put(("error", err))

    def stream(self) -> Iterator:
        self.start()
        finished = False
        try:
            while True:
                what, payload = self.requests.get()
                if what == "done":
                    finished = True
                    return
                if what == "error":
                    finished = True
                    raise payload
                self.answers.put((yield payload))
        finally:
            if not finished:
                self.answers.put(_Abort)
            self.join(timeout=10)


# -- the batched, KV-cached decoder -----------------------------------------------------------------


class _Row:
    """One candidate: its request stream, the tokens to feed next, its place in the current value."""

    __slots__ = ("decisions", "done", "error", "feed", "header", "kind", "mid", "node", "pos", "score",
                 "sketch", "stream")

    def __init__(self, sketch: int, stream, pos: int):
        self.sketch, self.stream, self.pos = sketch, stream, pos
        self.decisions: list[Decision] = []
        self.feed: list[int] = []
        self.node = None
        self.kind = self.header = None
        self.score = 0.0
        self.done = False
        self.error: str | None = None
        self.mid = False  # inside a value (fed one token per step), as opposed to starting a decision

    def start(self, request) -> None:
        """Take the next request (or finish); walk forced tokens until the model must choose."""
        while request is not None:
            self.kind, self.header, domain = request
            self.feed += _header_ids(self.kind, self.header)
            self.node = _trie(self.kind, self.header, domain)
            self.mid = False
            request = self._walk()
            if request is False:  # the model must choose
                return
        self.done = True

    def _walk(self):
        """Follow single-child trie nodes; at a leaf, record the decision and return the next request."""
        node = self.node
        while node.value is None and len(node.children) == 1:
            (t, node), = node.children.items()
            self.feed.append(t)
        self.node = node
        if node.value is None:
            return False
        self.decisions.append(Decision(self.kind, self.header, node.value))
        try:
            return self.stream.send(node.value)
        except StopIteration:
            return None

    def chose(self, token: int) -> None:
        """The model chose `token` at the current node."""
        self.feed.append(token)
        self.node = self.node.children[token]
        self.mid = True
        request = self._walk()
        if request is not False:
            self.start(request)


def _first_request(stream):
    try:
        return next(stream)
    except StopIteration:
        return None


def _sample(logits, rows_nodes, greedy: bool, temperature: float, top_k: int, top_p: float, gen):
    """Tokens for the rows (logits: rows x vocab), masked to each row's trie node."""
    import torch

    mask = torch.full_like(logits, float("-inf"))
    r = torch.cat([torch.full((len(n.children),), i, dtype=torch.long) for i, n in enumerate(rows_nodes)])
    c = torch.cat([n.ids() for n in rows_nodes])
    mask[r, c] = 0.0
    masked = logits + mask
    if greedy:
        return masked.argmax(-1)
    masked = masked / temperature
    if top_k > 0 and top_k < masked.shape[-1]:
        kth = masked.topk(top_k, dim=-1).values[:, -1:]
        masked = masked.masked_fill(masked < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = masked.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        drop = probs.cumsum(-1) - probs > top_p  # keeps the smallest prefix reaching top_p (at least one)
        masked = masked.scatter(-1, order, sorted_logits.masked_fill(drop, float("-inf")))
    return torch.multinomial(masked.softmax(-1), 1, generator=gen).squeeze(-1)


_LAYER = []


def _growing_cache(kv: list, capacity: int):
    """A DynamicCache whose layers write into preallocated buffers (DynamicLayer concatenates: every
    step would copy the whole cache) and grow by doubling."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    if not _LAYER:
        class GrowingLayer(DynamicLayer):
            def __init__(self, keys, values, capacity: int):
                super().__init__()
                self.lazy_initialization(keys, values)
                b, h, n, d = keys.shape
                self._k = keys.new_empty((b, h, max(capacity, n), d))
                self._v = values.new_empty((b, h, max(capacity, n), d))
                self._k[:, :, :n] = keys
                self._v[:, :, :n] = values
                self._n = n
                self._views()

            def _views(self) -> None:
                self.keys, self.values = self._k[:, :, :self._n], self._v[:, :, :self._n]

            def update(self, key_states, value_states, *args, **kwargs):
                n, add = self._n, key_states.shape[-2]
                if n + add > self._k.shape[-2]:
                    b, h, cap, d = self._k.shape
                    k = self._k.new_empty((b, h, max(2 * cap, n + add), d))
                    v = self._v.new_empty((b, h, max(2 * cap, n + add), d))
                    k[:, :, :n], v[:, :, :n] = self._k[:, :, :n], self._v[:, :, :n]
                    self._k, self._v = k, v
                self._k[:, :, n:n + add] = key_states
                self._v[:, :, n:n + add] = value_states
                self._n = n + add
                self._views()
                return self.keys, self.values

            def batch_select_indices(self, indices) -> None:
                self._k, self._v = self._k[indices], self._v[indices]
                self._views()

        _LAYER.append(GrowingLayer)
    cache = DynamicCache()
    cache.layers = [_LAYER[0](k, v, capacity) for k, v in kv]
    cache.layer_class_to_replicate = None
    return cache


def _n_positions(model) -> int:
    return getattr(model.config, "n_positions", None) or model.config.max_position_embeddings


class _Decoder:
    """Runs the model over batches of rows; the sketches' prompts are encoded once."""

    def __init__(self, model, prompts: dict[int, list[int]], greedy, temperature, top_k, top_p, gen):
        import torch

        self.model, self.gen = model, gen
        self.greedy, self.temperature, self.top_k, self.top_p = greedy, temperature, top_k, top_p
        self.pad = _token_ids([PAD])[0]
        self.n_positions = _n_positions(model)
        self.forwards = 0
        self.sampled = 0
        # All the sketches' prompts in one forward, right-padded.
        self.sketches = sorted(prompts)
        self.row_of = {s: i for i, s in enumerate(self.sketches)}
        self.lengths = torch.tensor([len(prompts[s]) for s in self.sketches])
        width = int(self.lengths.max())
        ids = torch.full((len(self.sketches), width), self.pad, dtype=torch.long)
        mask = torch.zeros((len(self.sketches), width), dtype=torch.long)
        for i, s in enumerate(self.sketches):
            ids[i, :len(prompts[s])] = torch.tensor(prompts[s])
            mask[i, :len(prompts[s])] = 1
        out = model(input_ids=ids, attention_mask=mask, position_ids=torch.arange(width).expand_as(ids),
                    use_cache=True, logits_to_keep=1)
        self.forwards += 1
        self.prompt_kv = [(layer[0], layer[1]) for layer in out.past_key_values]
        self.prompt_mask = mask

    def run(self, rows: list[_Row]) -> None:
        """Generate every row to its end (rows already `start`ed); failures go to `row.error`."""
        import torch

        idx = torch.tensor([self.row_of[r.sketch] for r in rows])
        cache = _growing_cache([(k[idx], v[idx]) for k, v in self.prompt_kv], self.prompt_mask.shape[1] + 256)
        attn = self.prompt_mask[idx]
        live = list(rows)
        while True:
            keep = [i for i, r in enumerate(live) if not r.done and r.error is None]
            if not keep:
                return
            if len(keep) < len(live):
                sel = torch.tensor(keep)
                cache.batch_select_indices(sel)
                attn = attn[sel]
                live = [live[i] for i in keep]
            # Rows inside a value go first; rows starting a decision wait for them (headers together).
            running = [r for r in live if r.mid] or live
            run_set = set(map(id, running))
            width = max(len(r.feed) for r in running)
            ids = torch.full((len(live), width), self.pad, dtype=torch.long)
            step_mask = torch.zeros((len(live), width), dtype=torch.long)
            positions = torch.zeros((len(live), width), dtype=torch.long)
            for i, r in enumerate(live):
                if id(r) not in run_set:
                    continue
                n = len(r.feed)
                if r.pos + n > self.n_positions:
                    r.error = f"the sentence outgrows the model's {self.n_positions} positions"
                    continue
                ids[i, width - n:] = torch.tensor(r.feed)
                step_mask[i, width - n:] = 1
                positions[i, width - n:] = torch.arange(r.pos, r.pos + n)
            attn = torch.cat([attn, step_mask], dim=1)
            out = self.model(input_ids=ids, past_key_values=cache, attention_mask=attn, position_ids=positions,
                             use_cache=True, logits_to_keep=1)
            self.forwards += 1
            logits = out.logits[:, -1, :].float()
            chosen = [i for i, r in enumerate(live) if id(r) in run_set and r.error is None]
            if not chosen:
                continue
            sub = logits[chosen]
            toks = _sample(sub, [live[i].node for i in chosen], self.greedy, self.temperature, self.top_k,
                           self.top_p, self.gen).tolist()
            logp = sub.log_softmax(-1).gather(1, torch.tensor(toks)[:, None]).squeeze(1).tolist()
            self.sampled += len(chosen)
            for i, t, lp in zip(chosen, toks, logp):
                r = live[i]
                r.pos += len(r.feed)
                r.feed = []
                r.score += lp
                try:
                    r.chose(t)
                except Exception as err:  # noqa: BLE001 - the live replay failed: an invalid candidate
                    r.error = f"{type(err).__name__}: {err}"


# -- the public API ----------------------------------------------------------------------------------


def _decode(model, prompts, rows, greedy, temperature, top_k, top_p, gen, space, hardware, per_sketch, statics):
    """Make the rows (one per candidate) and generate them, MAX_BATCH at a time."""
    import torch

    positions = _n_positions(model)
    fits = {s: p for s, p in prompts.items() if len(p) < positions}
    locations: dict = {}
    with torch.inference_mode():
        decoder = _Decoder(model, fits, greedy, temperature, top_k, top_p, gen) if fits else None
        for s in prompts:
            for _ in range(per_sketch[s]):
                if s in statics:
                    stream = _replayed_requests(statics[s])
                else:
                    stream = _LiveWalk(space, s, hardware, locations).stream()
                rows.append(_Row(s, stream, len(prompts[s])))
                if s not in fits:
                    rows[-1].error = f"its prompt has {len(prompts[s])} tokens, the model {positions} positions"
        for b in range(0, len(rows), MAX_BATCH):
            batch = [r for r in rows[b:b + MAX_BATCH] if r.error is None]
            try:
                for r in batch:
                    try:
                        r.start(_first_request(r.stream))
                    except Exception as err:  # noqa: BLE001 - the live replay failed: an invalid candidate
                        r.error = f"{type(err).__name__}: {err}"
                if batch:
                    decoder.run(batch)
            finally:
                for r in batch:
                    r.stream.close()  # ends the live replay threads of rows that did not finish
    return decoder


def _round_robin(sketches: list[int]) -> list[int]:
    """Indices in turn over the sketches (first of each sketch, then second of each...), order kept
    within a sketch. Rows come out grouped by sketch; in turn, the first j programs spread over the
    sketches as a run for j would (`spread`), so measuring a prefix is measuring a smaller k.
    """
    groups: dict[int, list[int]] = {}
    for i, s in enumerate(sketches):
        groups.setdefault(s, []).append(i)
    queues = [groups[s] for s in sorted(groups)]
    return [q[j] for j in range(max(map(len, queues), default=0)) for q in queues if j < len(q)]


def _given(program: Program):
    """A chooser that answers with the program's decisions (checked by comparing the replay's program)."""
    extents = [d for d in program.decisions if d.kind in _EXTENT_KINDS]
    sampling = [d for d in program.decisions if d.kind not in _EXTENT_KINDS]

    def choose(kind, header, domain):
        d = (extents if kind in _EXTENT_KINDS else sampling).pop(0)
        return d.value

    return choose


def generate(model, task, space, hardware, k: int, *, temperature: float = 1.0, top_k: int = 0,
             top_p: float = 1.0, seed: int = 0, threads: int | None = 1) -> GenerationResult:
    """K candidate programs of a task from the model (see the module doc).

    K is split evenly over the sketches (each gets one when K >= the number of sketches). Greedy
    (K == 1 or temperature == 0) generates one candidate per sketch; so does K < the number of
    sketches; then the K whose chosen tokens the model finds most likely are kept.

    `threads`: torch's intra-op threads while generating (None: leave torch's setting). One step's
    operations are small (rows x new tokens x width): extra threads gain little, and their spin-waits
    collapse when the cores are shared (a measurement job beside the generator): one thread is the
    safe default.
    """
    import torch

    if k < 1:
        raise ValueError("k must be at least 1")
    start = time.perf_counter()
    greedy = k == 1 or temperature == 0
    n_sketches = len(space.sketches)
    per_sketch = [1] * n_sketches if greedy or k < n_sketches else spread(k, n_sketches)
    gen = torch.Generator().manual_seed(int(seed))
    prompts = {s: _token_ids(prompt(task, hardware, space, s)) for s in range(n_sketches) if per_sketch[s]}
    statics = {s: _static_requests(space, s, hardware) for s in prompts if _is_static(space, s)}
    rows: list[_Row] = []
    previous_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        decoder = _decode(model, prompts, rows, greedy, temperature, top_k, top_p, gen, space, hardware,
                          per_sketch, statics)
    finally:
        torch.set_num_threads(previous_threads)
    programs, scores, errors, seen, duplicates = [], [], [], set(), 0
    for r in rows:
        if r.error is not None:
            errors.append(f"sketch {r.sketch}: {r.error}")
            continue
        program = Program(r.sketch, tuple(r.decisions))
        if program in seen:
            duplicates += 1
            continue
        seen.add(program)
        try:
            sch, replayed = replay(space, r.sketch, _given(program), hardware)
        except Exception as err:  # noqa: BLE001
            errors.append(f"sketch {r.sketch}: replay failed: {type(err).__name__}: {err}")
            continue
        if replayed != program:
            errors.append(f"sketch {r.sketch}: the replay's decisions differ from the generated ones")
        elif sch is None:
            errors.append(f"sketch {r.sketch}: a postprocessor rejects the program")
        else:
            programs.append((sch, program))
            scores.append(r.score)
    if len(programs) > k:  # greedy, or fewer candidates than sketches: the most likely k
        best = sorted(range(len(programs)), key=lambda i: -scores[i])[:k]
        programs, scores = [programs[i] for i in sorted(best)], [scores[i] for i in sorted(best)]
    order = _round_robin([p.sketch for _, p in programs])
    programs, scores = [programs[i] for i in order], [scores[i] for i in order]
    return GenerationResult(programs=programs, scores=scores, invalid=len(errors), duplicates=duplicates,
                            decisions=sum(len(r.decisions) for r in rows), seconds=time.perf_counter() - start,
                            candidates=len(rows), forwards=decoder.forwards if decoder else 0,
                            sampled_tokens=decoder.sampled if decoder else 0,
                            errors=errors)


# -- seeds and keys --------------------------------------------------------------------------------


def task_seed(seed: int, task_hash: str) -> int:
    """The seed of one task's generation: the same whatever other tasks are generated."""
    return int(hashlib.sha256(f"{seed}:{task_hash}".encode()).hexdigest()[:12], 16)


def candidate_key(task_hash: str, trace_json: str) -> str:
    return hashlib.sha256(f"{task_hash}\n{trace_json}".encode()).hexdigest()[:32]
