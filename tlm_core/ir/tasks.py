"""Task extraction: PyTorch model -> torch.export -> Relax -> legalize + fuse -> MetaSchedule tasks.

Tasks are deduplicated by structural hash and carry their weight (occurrences in the model) and
FLOPs. Extraction is cached on disk under a content key (model definition, target, versions), so
a second call is instant; shipped caches in data/tasks are read first.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from tlm_core.errors import UserError, reason
from tlm_core.ir.target import ResolvedTarget
from tlm_core.ir.workloads import UserModule, Workload, canonical
from tlm_core.paths import cache_dir, data_dir
from tlm_core.tvm_env import versions
from tlm_core.ui import log, progress

#: Bump when the extraction pipeline changes what it produces (invalidates every cache).
#: 2: batch norm decomposed for inference, 2-D convolutions in NHWC (CONV_LAYOUTS), and weights marked
#: layout-free (AttachAttrLayoutFreeBuffers), so MetaSchedule's RewriteLayout postprocessor may store
#: each weight in the order its schedule reads it.
#: 3: the transcendental functions of activations and softmax in TVM's fast polynomial forms
#: (FAST_MATH): TVM lowers erf and exp on llvm to scalar libm calls, which no schedule vectorizes.
#: 4: `cumsum` of a bool or integer tensor accumulates in int64, as in PyTorch (TVM's frontend keeps
#: the input's dtype: a bool cumsum that LLVM cannot compile; gpt2's attention mask). Other models'
#: tasks are those of 3.
#: 5: a weight read through a flipped index (`3 - h`: a transposed convolution's kernel) is no longer
#: layout-free (`_flipped_weights_stay_in_place`): TVM miscompiles its re-layout. Only the transposed
#: convolutions (dcgan's) change; every other task is that of 4, hash for hash.
#: 6: a transposed convolution is a sub-pixel convolution (`subpixel.rewrite`): a stride-1 conv2d on
#: the undilated input (NHWC, weights layout-free like any other), then depth-to-space. TVM's own
#: lowering multiplies by the zeros of a dilated input (dcgan: 1,320 ms against eager's 61). Only the
#: transposed convolutions' tasks change (dcgan's); every other task is that of 5, hash for hash.
#: 7: a batched matmul of a weight broadcast over the batch is a matmul of the flattened batch
#: (`shared_weight.rewrite`): the attention output projection of a transformer at batch > 1
#: (bert_large's, llama's), which PyTorch exports as `expand` + `bmm`, read a copy of its weight per
#: batch (bert_large: 75.6 ms where its other 1024 x 1024 x 1024 matmuls took 12.0). bert_large gets 3
#: new tasks, llama 1 (its output projection is now the task of its query/key/value ones); the other
#: 10 Table-1 workloads' tasks are those of 6, hash for hash (checked 2026-12-06).
#: 8: a workload built by its layer rule (`repeat`: llama) also has the subgraphs of its 1-layer build
#: that its 2-layer build lacks, at weight 0 (`_extract_repeated`): the rule runs the 1-layer build end
#: to end, where they ran unscheduled. llama gets 1 new task; every other task is that of 7.
PIPELINE_VERSION = 8

#: The pipeline of the training subgraphs: every record in data/demonstrations (and the ranker's
#: features, the held-out rule against the test subgraphs) was measured on tasks of version 1, so
#: the training side extracts with it; the later versions' subgraphs are new to the model (the NHWC
#: convolutions above all) until demonstration data is measured on them.
TRAINING_PIPELINE = 1


def pipeline_of(source) -> int:
    """The pipeline a workload's subgraphs are extracted and compiled with: the training data's for a
    training workload (its records were measured on those tasks), the current one for the rest."""
    return TRAINING_PIPELINE if getattr(source, "split", None) == "train" else PIPELINE_VERSION


#: 2-D convolutions are converted to NHWC (Relax ConvertLayout) before legalization. MetaSchedule's CPU
#: schedules of NHWC convolutions are much faster than of NCHW ones (vectors run along the channels):
#: resnet50's three heaviest convolutions after 64 MetaSchedule trials each took 2.22, 2.37, 2.58 ms in
#: NCHW and 1.34, 1.42, 1.30 ms in NHWC (results/layout-choice/). The weight layout (OHWI) hardly
#: matters: RewriteLayout re-lays each weight out for its schedule anyway.
CONV_LAYOUTS: dict = {"relax.nn.conv2d": ["NHWC", "OHWI"]}


def _fast_math_legalizations() -> dict:
    """Legalizations of the activations whose TVM forms call erf or exp, with topi's fast_erf and
    fast_exp (polynomials, vectorizable, within float32 rounding of the libm functions on the
    range that matters): TVM lowers tir.erf and tir.exp on llvm to calls of libm's scalar erff
    and expf, so a GELU kernel could not be vectorized by any schedule (bert_base's GELU: 7.65 ms in
    the compiled model against PyTorch's 1.49, whose erf is a vectorized polynomial too).
    `relax.transform.FastMathTransform` does the same for the plain ops (exp, erf, tanh, softmax)."""
    from tvm import te, tirx, topi

    def gelu(bb, call):
        def f(x: te.Tensor):
            dtype = x.dtype
            erf = topi.fast_erf(topi.multiply(x, tirx.const(0.5**0.5, dtype)))
            return topi.multiply(x, topi.add(topi.multiply(erf, tirx.const(0.5, dtype)), tirx.const(0.5, dtype)))

        return bb.call_te(f, call.args[0], primfunc_name_hint="gelu")

    def sigmoid_of(x: te.Tensor) -> te.Tensor:
        one = tirx.const(1.0, x.dtype)
        return topi.divide(one, topi.add(one, topi.fast_exp(topi.negative(x))))

    def sigmoid(bb, call):
        return bb.call_te(sigmoid_of, call.args[0], primfunc_name_hint="sigmoid")

    def silu(bb, call):
        return bb.call_te(lambda x: topi.multiply(x, sigmoid_of(x)), call.args[0], primfunc_name_hint="silu")

    return {"relax.nn.gelu": gelu, "relax.sigmoid": sigmoid, "relax.nn.silu": silu}


@dataclass(frozen=True)
class Task:
    """One tuning task: a fused subgraph as a TIR PrimFunc, with weight and FLOPs."""

    name: str
    weight: int  # occurrences in the model (scaled by layer count for `repeat` workloads)
    flops: float
    hash: str  # structural hash of the PrimFunc module, 16 hex digits
    mod_json: str = field(repr=False, compare=False)

    @property
    def mod(self):
        """The task's IRModule (deserialized once per process)."""
        return _load_mod(self.hash, self.mod_json)

    @property
    def integer_inputs(self) -> bool:
        """Whether a buffer parameter is an integer or bool: measurement inputs then change the work."""
        return _integer_inputs(self.hash, self.mod_json)

    @classmethod
    def from_mod(cls, name: str, mod, weight: int = 1) -> Task:
        """A task from an IRModule with one PrimFunc "main" (tests, user kernels)."""
        import tvm
        from tvm.s_tir.analysis import estimate_tir_flops

        return cls(name, weight, float(estimate_tir_flops(mod)), structural_hash(mod), tvm.ir.save_json(mod))

    def summary(self) -> dict:
        return {"name": self.name, "weight": self.weight, "flops": self.flops, "hash": self.hash}


@cache
def _load_mod(_hash: str, mod_json: str):
    import tvm

    return tvm.ir.load_json(mod_json)


def has_integer_inputs(func) -> bool:
    """Whether any buffer parameter is an integer or bool (its values can change the work done)."""
    return any(not str(p.dtype).startswith("float") for p in func.params)


@cache
def _integer_inputs(task_hash: str, mod_json: str) -> bool:
    return has_integer_inputs(_load_mod(task_hash, mod_json)["main"])


def structural_hash(mod) -> str:
    """Structural hash of an IRModule as 16 hex digits (names of variables do not count)."""
    import tvm_ffi

    return f"{tvm_ffi.structural_hash(mod) & (2**64 - 1):016x}"


def cache_key(source: Workload | UserModule, target: ResolvedTarget, pipeline: int = PIPELINE_VERSION) -> str:
    """Content key of an extraction: model definition, target, versions and pipeline."""
    v = versions()
    payload = {"source": source.content_key(), "target": target.hardware.tvm_target_dict(),
               "versions": [v["apache-tvm"], v["torch"], v["transformers"]], "pipeline": pipeline,
               **({"conv_layouts": CONV_LAYOUTS} if pipeline >= 2 else {})}
    return hashlib.sha256(canonical(payload).encode()).hexdigest()[:20]


def _cache_name(source: Workload | UserModule, key: str) -> str:
    return f"{source.name.replace(':', '_')}-{key}.json"


def extract_tasks(source: Workload | UserModule, target: ResolvedTarget, use_cache: bool = True,
                  pipeline: int | None = None) -> list[Task]:
    """The model's tuning tasks, heaviest first; cached by content. `pipeline`: the version of
    `fused_relax`, by default `pipeline_of(source)`."""
    pipeline = pipeline_of(source) if pipeline is None else pipeline
    if pipeline not in range(1, PIPELINE_VERSION + 1):
        raise ValueError(f"pipeline {pipeline}: versions 1 to {PIPELINE_VERSION} exist")
    key = cache_key(source, target, pipeline)
    name = _cache_name(source, key)
    if use_cache:
        for folder in (data_dir() / "tasks", cache_dir() / "tasks"):
            if (folder / name).is_file():
                tasks = _read(folder / name, key)
                if tasks is not None:
                    return tasks
    start = time.perf_counter()
    if source.repeat is None:
        tasks = _extract_model(*source.build(), target, pipeline)
    else:
        tasks = _extract_repeated(source, target, pipeline)
    tasks.sort(key=lambda t: (-t.flops * t.weight, t.name))
    out = cache_dir() / "tasks" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"key": key, "source": source.to_json(), "target": target.hardware.tvm_target_dict(),
           "versions": versions(), "seconds": round(time.perf_counter() - start, 2),
           "tasks": [{**t.summary(), "mod": t.mod_json} for t in tasks]}
    tmp = out.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(doc))
    tmp.replace(out)  # atomic: a killed extraction never leaves a half-written cache
    return tasks


def _read(path: Path, key: str) -> list[Task] | None:
    """The tasks of a cache file; None (said on stderr) when it is torn, corrupt or of another key, and
    the tasks are extracted again (the new file replaces it in the writable cache)."""
    try:
        doc = json.loads(path.read_text())
        if doc.get("key", key) != key:
            raise ValueError(f"key {doc.get('key')!r}, not {key!r}")
        tasks = [Task(t["name"], t["weight"], t["flops"], t["hash"], t["mod"]) for t in doc["tasks"]]
        if not all(isinstance(t.name, str) and isinstance(t.hash, str) and isinstance(t.mod_json, str)
                   and isinstance(t.weight, int) and isinstance(t.flops, (int, float)) for t in tasks):
            raise TypeError("a task field of the wrong type")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:  # ValueError: JSON, UTF-8
        log(f"warning: task cache {path} is unreadable ({reason(err, 80)}): extracting the tasks again"
            + ("" if path.parent == cache_dir() / "tasks" else f" (delete {path}: it is read first)"))
        return None
    return tasks


def _extract_repeated(source: Workload, target: ResolvedTarget, pipeline: int) -> list[Task]:
    """Tasks of a model too big to build whole: weights from 1- and 2-layer builds, scaled.

    A task's weight in an L-layer model is w1 + (L - 1) * (w2 - w1): what one more layer adds,
    times the extra layers; embedding and head tasks (w2 == w1) keep their weight.

    A subgraph of the 1-layer build only (pipeline 8 on) comes at weight 0: no L-layer model has it, but
    the layer rule runs the 1-layer build end to end, so it must be tuned with the rest. Left out,
    llama's (its attention mask fused with the residual add, which the 2-layer build fuses apart) ran
    unscheduled there, and the rule, latency(1) x (2 - L) + latency(2) x (L - 1), took 30 x its
    untuned time off the model (0.14 s of 105 s, 2026-12-07). The weights stay the 2-layer build's
    counts scaled: for llama that counts the mask subgraph L - 1 times and its `where + add` 2(L - 1)
    times where a whole model runs them once and L times (element-wise subgraphs, a few ms each).
    """
    arg, layers = source.repeat
    one = {t.hash: t for t in _extract_model(*source.build(**{arg: 1}), target, pipeline)}
    two = {t.hash: t for t in _extract_model(*source.build(**{arg: 2}), target, pipeline)}
    out = []
    for h, t in two.items():
        w1 = one[h].weight if h in one else 0
        out.append(Task(t.name, w1 + (layers - 1) * (t.weight - w1), t.flops, h, t.mod_json))
    if pipeline >= 8:
        names = {t.name for t in out}
        for h, t in one.items():
            if h not in two:  # a name of its own: task names key per-subgraph rows beside hashes
                out.append(Task(t.name if t.name not in names else f"{t.name}_1{arg}", 0, t.flops, h, t.mod_json))
    return out


def _cumsum_as_torch(node, importer):
    """aten.cumsum as PyTorch computes it: a bool or integer input without a dtype accumulates in int64
    (TVM's own conversion keeps the input's dtype)."""
    from tvm import relax

    x = importer.env[node.args[0]]
    dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
    dtype = node.kwargs.get("dtype")
    if dtype is not None:
        dtype = importer._convert_data_type(str(dtype), importer.env)
    elif str(x.ty.dtype) == "bool" or str(x.ty.dtype).startswith(("int", "uint")):
        dtype = "int64"
    return importer.block_builder.emit(relax.op.cumsum(x, dim, dtype))


def fused_relax(module, inputs: tuple, pipeline: int = PIPELINE_VERSION):
    """torch.export -> Relax -> legalize + fuse: the module whose fused PrimFuncs are the tasks.

    Task extraction and end-to-end compilation both use it, so their subgraphs match hash for hash.
    Version 1 (the training data's) is legalize + fuse alone.
    """
    import torch
    import tvm
    import tvm.relax.frontend.torch
    from tvm import relax

    try:
        with torch.no_grad():
            exported = torch.export.export(module, inputs)
    except Exception as err:  # noqa: BLE001 - any export failure is the model's, reported in one line
        raise UserError(f"torch.export failed on the model: {type(err).__name__}: {str(err).splitlines()[0]}") from None
    mod = relax.frontend.torch.from_exported_program(
        exported, keep_params_as_input=False,
        custom_convert_map={"cumsum.default": _cumsum_as_torch} if pipeline >= 4 else None)
    del exported
    # MetaSchedule's own CPU pipeline (relax.pipeline.static_shape_tuning_pipeline with
    # cpu_weight_prepack): batch norm becomes elementwise ops on constants (fused into the convolution's
    # epilogue), convolutions go to NHWC, then legalize and fuse, then every weight (a constant here)
    # is marked layout-free. A schedule may then re-lay a weight out in the order it reads it
    # (RewriteLayout); `compile` splits that re-layout out of the kernel and folds it into the
    # constant, so it costs nothing per inference.
    fast = pipeline >= 3
    legalize = relax.transform.LegalizeOps(_fast_math_legalizations() if fast else None)
    fuse = [legalize, relax.transform.AnnotateTIROpPattern(), relax.transform.FoldConstant(),
            relax.transform.FuseOps(), relax.transform.FuseTIR()]
    if pipeline == 1:
        return tvm.transform.Sequential(fuse)(mod)
    if pipeline >= 6:
        from tlm_core.ir import subpixel

        mod = subpixel.rewrite(mod)
    if pipeline >= 7:
        from tlm_core.ir import shared_weight

        mod = shared_weight.rewrite(mod)
    mod = tvm.transform.Sequential([
        relax.transform.DecomposeOpsForInference(),
        relax.transform.CanonicalizeBindings(),
        relax.transform.ConvertLayout(CONV_LAYOUTS),
        *([relax.transform.FastMathTransform()] if fast else []),
        *fuse,
        relax.transform.AttachAttrLayoutFreeBuffers(),
    ])(mod)
    return _flipped_weights_stay_in_place(mod) if pipeline >= 5 else mod


def flipped_weights(func) -> list[int]:
    """Positions of the layout-free parameters a block reads through a decreasing index (`3 - h`).

    Why they must stay in place: TVM 0.27's iterator-map simplification, which TransformLayout uses
    to rewrite every access of a re-laid-out buffer, gets splits of a negated iterator wrong:
    `(3 - w) // 2` and `(3 - w) % 2` over w in [0, 4) become `w // -2 + 1` and `w % -2 * -1`
    (1 0 0 -1 and 0 1 0 1 for w = 0..3, not 1 1 0 0 and 1 0 1 0). A transposed convolution reads its
    kernel flipped (`kernel_transform`); when a schedule's RewriteLayout splits the kernel's width,
    the candidate reads the wrong weights and out of bounds: 10 of dcgan's 40 transposed-convolution
    candidates were wrong (relative errors 1 to 3e303), 3 crashed (docs/results-history.md).
    """
    from tvm import sym
    from tvm.s_tir import Schedule

    free = [int(i) for i in (func.attrs or {}).get("layout_free_buffers", ())]
    if not free:
        return []
    params = list(func.params)
    sch = Schedule(func)
    flipped = set()
    for rv in sch.get_child_blocks(sch.get_sblock("root")):
        block = sch.get(rv)
        iters = [iv.var for iv in block.iter_vars]
        for region in block.reads:
            hit = [i for i in free if params[i].same_as(region.source)]
            if not hit:
                continue
            for r in region.region:
                coeffs = list(sym.detect_linear_equation(r.min, iters))[:-1]  # empty when not linear
                if any(getattr(c, "value", 0) < 0 for c in coeffs):
                    flipped.update(hit)
    return sorted(flipped)


def _flipped_weights_stay_in_place(mod):
    """The module with the weights of `flipped_weights` no longer marked layout-free: no schedule
    re-lays them out (they are read as they are, as without the mark)."""
    import tvm

    for gv, func in list(mod.functions.items()):
        if not isinstance(func, tvm.tirx.PrimFunc) or not (flipped := flipped_weights(func)):
            continue
        keep = [int(i) for i in func.attrs["layout_free_buffers"] if int(i) not in flipped]
        mod[gv] = func.with_attr("layout_free_buffers", keep)
    return mod


def _extract_model(module, inputs: tuple, target: ResolvedTarget, pipeline: int) -> list[Task]:
    import tvm
    from tvm.s_tir import meta_schedule as ms
    from tvm.s_tir.analysis import estimate_tir_flops

    mod = fused_relax(module, inputs, pipeline)
    tasks: dict[str, Task] = {}
    for ext in ms.relax_integration.extract_tasks(mod, target.tvm):
        task_mod = ext.dispatched[0]
        h = structural_hash(task_mod)
        if h in tasks:  # same subgraph under another name: one task, summed weight
            old = tasks[h]
            tasks[h] = Task(old.name, old.weight + int(ext.weight), old.flops, h, old.mod_json)
            continue
        tasks[h] = Task(ext.task_name, int(ext.weight), float(estimate_tir_flops(task_mod)), h,
                        tvm.ir.save_json(task_mod))
    return list(tasks.values())


def held_out_hashes(target: ResolvedTarget, pipeline: int = TRAINING_PIPELINE) -> set[str]:
    """Structural hashes of every task of the Table-1 test workloads (the held-out set), extracted with
    `pipeline`, the version the training tasks compared with them were extracted with."""
    from tlm_core.ir.workloads.zoo import TEST

    return {t.hash for w in progress(TEST, "test workloads")
            for t in extract_tasks(w, target, pipeline=pipeline)}


def without_held_out(pairs: list[tuple[Workload | UserModule, Task]], target: ResolvedTarget,
                     held_out: set[str] | None = None,
                     pipeline: int = TRAINING_PIPELINE) -> list[tuple[Workload | UserModule, Task]]:
    """The hold-out rule, the one place it is written: a training workload never contributes a task whose
    structural hash a test (Table-1) task has, so the model is never trained on what it is judged on.
    `pipeline`: the version the training tasks were extracted with (the test tasks are, to compare)."""
    if held_out is None:
        held_out = held_out_hashes(target, pipeline) if any(w.split == "train" for w, _ in pairs) else set()
    return [(w, t) for w, t in pairs if w.split != "train" or t.hash not in held_out]


def training_tasks(workload: Workload, target: ResolvedTarget, held_out: set[str]) -> list[Task]:
    """A training workload's tasks minus any whose structural hash a test task has."""
    return [t for _, t in without_held_out([(workload, t) for t in extract_tasks(workload, target)], target, held_out)]
