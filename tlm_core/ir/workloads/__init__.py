"""Workloads as data: named networks at fixed input shapes, and users' own PyTorch modules.

A workload is a builder name, its keyword arguments and input specs (see `zoo.py` for the table).
`resolve(name_or_none, module_spec)` turns the CLI's `WORKLOAD | --module FILE.py:FN` into one.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

from tlm_core.errors import UserError, reason

#: (shape, dtype); integer inputs are token ids, drawn from [0, 1000) (every vocabulary here is larger).
InputSpec = tuple[tuple[int, ...], str]


@dataclass(frozen=True)
class Workload:
    """A network at fixed input shapes, buildable with random weights and no download."""

    name: str
    builder: str  # key of builders()
    inputs: tuple[InputSpec, ...]
    split: str  # "test" (Table 1, held out) or "train"
    kwargs: tuple[tuple[str, object], ...] = ()  # builder arguments, hashable
    # Too big to build whole (LLaMA-7B): (builder argument counting layers, real layer count).
    # Tasks come from 1- and 2-layer builds: per-layer weights scale to the real count.
    repeat: tuple[str, int] | None = None
    description: str = ""

    def build(self, **overrides) -> tuple[torch.nn.Module, tuple]:  # noqa: F821
        """(module in eval mode, example inputs), deterministic."""
        import torch

        torch.manual_seed(0)
        module = builders()[self.builder](**{**dict(self.kwargs), **overrides})
        return module.eval(), example_inputs(self.inputs)

    def layers(self, n: int) -> Workload:
        """The `n`-layer build of a workload too big to build whole (its `repeat` rule), as a workload
        of its own: built and run whole, its subgraphs are the full workload's (same hashes)."""
        arg, _ = self.repeat
        return replace(self, name=f"{self.name}-{n}{arg}", kwargs=(*self.kwargs, (arg, n)), repeat=None,
                       description=f"{self.description} ({n} of its {arg})")

    def content_key(self) -> dict:
        """What the extracted tasks depend on (beside target and versions)."""
        return {"builder": self.builder, "kwargs": [list(kv) for kv in self.kwargs],
                "inputs": [[list(s), d] for s, d in self.inputs], "repeat": self.repeat}

    def to_json(self) -> dict:
        return {"name": self.name, "split": self.split, "input_shapes": [list(s) for s, _ in self.inputs],
                "input_dtypes": [d for _, d in self.inputs], "builder": self.builder,
                "kwargs": dict(self.kwargs), "layers_scaled": self.repeat, "description": self.description}


@dataclass(frozen=True)
class UserModule:
    """`--module FILE.py:FN`: FN() returns (torch.nn.Module, tuple_of_example_inputs)."""

    path: Path
    fn: str
    split: str = "user"
    repeat = None

    @property
    def name(self) -> str:
        return f"{self.path.stem}:{self.fn}"

    def build(self) -> tuple[torch.nn.Module, tuple]:  # noqa: F821
        """Import the file and call FN; any failure is the user's to fix, reported in one line."""
        import torch

        torch.manual_seed(0)
        spec = importlib.util.spec_from_file_location(f"tlm_user_{self.path.stem}", self.path)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as err:
            raise UserError(f"--module {self.path}: import failed: {reason(err)}") from None
        fn = getattr(module, self.fn, None)
        if not callable(fn):
            raise UserError(f"--module {self.path}: no function {self.fn!r} in the file")
        try:
            result = fn()
        except Exception as err:
            raise UserError(f"--module {self.path}:{self.fn}: {self.fn}() raised {reason(err)}") from None
        if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], torch.nn.Module)
                and isinstance(result[1], tuple)):
            raise UserError(f"--module {self.path}:{self.fn}: {self.fn}() must return (torch.nn.Module, "
                            "tuple_of_inputs)")
        return result[0].eval(), result[1]

    def content_key(self) -> dict:
        # The file's bytes stand for the model; a model that imports other files of the user's
        # should be re-extracted with --no-cache after editing them.
        return {"module_sha256": hashlib.sha256(self.path.read_bytes()).hexdigest(), "fn": self.fn}

    def to_json(self) -> dict:
        return {"name": self.name, "split": self.split, "path": str(self.path), "fn": self.fn}


def example_inputs(specs: tuple[InputSpec, ...]) -> tuple:
    """Deterministic example tensors for input specs (floats ~ N(0,1), ints as token ids)."""
    import torch

    gen = torch.Generator().manual_seed(0)
    out = []
    for shape, dtype in specs:
        if dtype.startswith("int"):
            out.append(torch.randint(0, 1000, shape, generator=gen, dtype=getattr(torch, dtype)))
        else:
            out.append(torch.randn(shape, generator=gen, dtype=getattr(torch, dtype)))
    return tuple(out)


@cache
def builders() -> dict[str, Callable]:
    """Builder name -> constructor (imported on first use: `tlm workloads` must not import torch)."""
    from tlm_core.ir.workloads import hf_models, torch_models

    return {
        "hf_resnet": hf_models.resnet,
        "hf_mobilenet_v2": hf_models.mobilenet_v2,
        "hf_bert": hf_models.bert,
        "hf_gpt2": hf_models.gpt2,
        "hf_llama": hf_models.llama,
        "hf_vit": hf_models.vit,
        "resnet": torch_models.resnet,
        "densenet": torch_models.densenet,
        "resnet3d": torch_models.resnet3d,
        "dcgan": torch_models.dcgan_generator,
        "vgg": torch_models.vgg,
    }


def all_workloads() -> list[Workload]:
    """The test workloads (Table 1) then the training set."""
    from tlm_core.ir.workloads.zoo import TEST, TRAIN

    return [*TEST, *TRAIN]


def get_workload(name: str) -> Workload:
    """A workload by name, or a UserError listing the names."""
    table = {w.name: w for w in all_workloads()}
    if name not in table:
        test = " ".join(w.name for w in all_workloads() if w.split == "test")
        raise UserError(f"unknown workload {name!r}; test workloads: {test} (all: `tlm workloads`)")
    return table[name]


def parse_module(spec: str) -> UserModule:
    """`FILE.py:FN` -> UserModule, checking the file exists."""
    path, sep, fn = spec.rpartition(":")
    if not sep or not path or not fn:
        raise UserError(f"bad --module {spec!r}: use FILE.py:FN, FN returning (module, example_inputs)")
    p = Path(path).expanduser().resolve()
    if p.is_dir():
        raise UserError(f"--module {path}: a folder, not a Python file (give FILE.py:FN)")
    if not p.is_file():
        raise UserError(f"--module: no file {path!r}")
    return UserModule(p, fn)


def resolve(name: str | None, module: str | None) -> Workload | UserModule:
    """The CLI's `WORKLOAD | --module FILE.py:FN`."""
    if (name is None) == (module is None):
        raise UserError("give exactly one of WORKLOAD or --module FILE.py:FN")
    return get_workload(name) if name else parse_module(module)


def canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))

