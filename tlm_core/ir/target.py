"""Targets as data: the hardware description the tensor language reads, and its TVM target.

`--target host` detects this machine; `--target JSON` takes a TVM target dict, optionally with a
`"hardware"` object that overrides detected fields (for a machine other than this one).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tlm_core.errors import UserError

_SYS_CACHE = Path("/sys/devices/system/cpu/cpu0/cache")


@dataclass(frozen=True)
class Hardware:
    """What the schedule depends on: kind, ISA, cores, vector width and cache sizes."""

    kind: str  # "llvm" (CPU) or "cuda"
    mcpu: str  # LLVM CPU name, e.g. "znver3"; GPU arch for cuda, e.g. "sm_90"
    num_cores: int  # cores the schedule may use (threads for parallel loops)
    simd_bits: int  # widest vector register (CPU); 0 when not applicable
    vector_registers: int  # architectural vector registers (register-tile budget)
    l1d_kb: int
    l2_kb: int
    l3_kb: int
    features: tuple[str, ...] = ()  # ISA extensions that matter for code generation

    def tvm_target_dict(self) -> dict:
        """The TVM target dict this hardware compiles for."""
        if self.kind == "cuda":
            return {"kind": "cuda", "arch": self.mcpu}
        return {"kind": "llvm", "mcpu": self.mcpu, "num-cores": self.num_cores}

    def to_json(self) -> str:
        """Canonical JSON (sorted keys): part of every content key."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Hardware:
        d = json.loads(text)
        d["features"] = tuple(d.get("features", ()))
        return cls(**d)


def describe(hw: dict) -> str:
    """A hardware record (Hardware's JSON, as records, search logs and cards hold it) in words."""
    return (f"{hw.get('mcpu', '?')} ({hw.get('num_cores', '?')} cores, {hw.get('simd_bits', '?')}-bit SIMD, "
            f"{hw.get('vector_registers', '?')} vector registers, L2 {hw.get('l2_kb', '?')} KiB)")


def other_than(records, hardware: Hardware) -> list[str]:
    """In words, each hardware record (as `describe` takes them; a "tvm" key is ignored) that is not
    `hardware`: what a search log or a model's data was measured on, where that is not this machine."""
    here = json.loads(hardware.to_json())
    return sorted({describe(r) for r in ({k: v for k, v in (r or {}).items() if k != "tvm"} for r in records)
                   if r != here})


@dataclass(frozen=True)
class ResolvedTarget:
    """A parsed `--target`: the hardware data and the TVM target built from it."""

    hardware: Hardware

    @property
    def tvm(self):
        """The `tvm.target.Target` (built lazily: importing TVM costs seconds)."""
        return _tvm_target(json.dumps(self.hardware.tvm_target_dict(), sort_keys=True))

    @property
    def kind(self) -> str:
        return self.hardware.kind


@cache
def _tvm_target(dict_json: str):
    import tvm

    return tvm.target.Target(json.loads(dict_json))


def _cache_kb(level: int, kinds: tuple[str, ...]) -> int:
    for index in sorted(_SYS_CACHE.glob("index*")):
        try:
            lvl = int((index / "level").read_text())
            typ = (index / "type").read_text().strip()
            size = (index / "size").read_text().strip()
        except OSError:
            continue
        if lvl == level and typ in kinds:
            return _kb(size)
    return 0


def _kb(size: str) -> int:
    """'32K' / '1M' / '4096' (bytes) as KiB, the way sysfs writes cache sizes."""
    scale = {"K": 1, "M": 1024, "G": 1024 * 1024}
    if size[-1] in scale:
        return int(size[:-1]) * scale[size[-1]]
    return int(size) // 1024


def _cpu_features(mcpu: str) -> tuple[str, ...]:
    """ISA features LLVM enables for `mcpu` (the ones a tensor program's code depends on)."""
    import tvm
    from tvm.target import codegen

    feats = codegen.llvm_get_cpu_features(tvm.target.Target({"kind": "llvm", "mcpu": mcpu}))
    keep = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vnni", "avxvnni", "neon", "sve", "dotprod")
    return tuple(f for f in keep if f in feats)


def _simd(features: tuple[str, ...]) -> tuple[int, int]:
    """(vector width in bits, number of vector registers) from the ISA features."""
    if "avx512f" in features:
        return 512, 32
    if "avx" in features or "avx2" in features:
        return 256, 16
    if "sve" in features or "neon" in features:
        return 128, 32
    return 128, 16


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@cache
def detect_host() -> Hardware:
    """This machine as data: LLVM CPU name, cores, SIMD width, cache sizes.

    Cached on disk under a fingerprint of the CPU and TVM version: asking LLVM needs TVM, whose
    import alone costs ~3 s, and a cached `tlm tasks` should answer at once.
    """
    import hashlib

    from tlm_core.paths import cache_dir
    from tlm_core.tvm_env import versions

    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    flags = sorted({line for line in cpuinfo.splitlines() if line.startswith(("model name", "flags"))})
    fingerprint = hashlib.sha256(json.dumps([flags, _cores(), versions()["apache-tvm"]]).encode()).hexdigest()[:16]
    path = cache_dir() / f"host-{fingerprint}.json"
    if path.exists():
        try:
            return Hardware.from_json(path.read_text())
        except (OSError, ValueError, TypeError, AttributeError):  # torn or corrupt (ValueError: JSON, UTF-8): probe again
            pass
    hw = _probe_host()
    path.write_text(hw.to_json())
    return hw


def _probe_host() -> Hardware:
    from tvm.target import codegen

    mcpu = codegen.llvm_get_system_cpu()
    features = _cpu_features(mcpu)
    simd_bits, vregs = _simd(features)
    return Hardware(
        kind="llvm",
        mcpu=mcpu,
        num_cores=_cores(),
        simd_bits=simd_bits,
        vector_registers=vregs,
        l1d_kb=_cache_kb(1, ("Data", "Unified")),
        l2_kb=_cache_kb(2, ("Unified",)),
        l3_kb=_cache_kb(3, ("Unified",)),
        features=features,
    )


def _detect_cuda() -> Hardware:
    import tvm

    dev = tvm.cuda(0)
    if not dev.exist:
        raise UserError("target 'cuda' needs a CUDA device and this machine has none; use --target host")
    arch = "sm_" + dev.compute_version.replace(".", "")
    return Hardware(
        kind="cuda",
        mcpu=arch,
        num_cores=dev.multi_processor_count,
        simd_bits=0,
        vector_registers=0,
        l1d_kb=dev.max_shared_memory_per_block // 1024,
        l2_kb=0,
        l3_kb=0,
        features=(),
    )


def resolve_target(spec: str = "host") -> ResolvedTarget:
    """Parse `--target`: 'host', 'cuda', or a JSON TVM target dict (+ optional "hardware")."""
    spec = spec.strip()
    if spec == "host":
        return ResolvedTarget(detect_host())
    if spec == "cuda":
        return ResolvedTarget(_detect_cuda())
    if not spec.startswith(("{", "[")) and Path(spec).expanduser().exists():
        raise UserError(f"bad --target {spec!r}: a path; --target takes the JSON itself, not a file: "
                        f"--target \"$(cat {spec})\" (a TVM target dict such as "
                        '\'{"kind": "llvm", "mcpu": "znver3", "num-cores": 2}\')')
    try:
        d = json.loads(spec)
    except json.JSONDecodeError:
        raise UserError(
            f"bad --target {spec!r}: use 'host', 'cuda' or a JSON TVM target dict such as "
            '\'{"kind": "llvm", "mcpu": "znver3", "num-cores": 2}\''
        ) from None
    if not isinstance(d, dict) or "kind" not in d:
        raise UserError(f"bad --target {spec!r}: the JSON must be an object with a \"kind\"")
    overrides = d.pop("hardware", {}) or {}
    kind = d["kind"]
    if kind == "cuda":
        hw = _detect_cuda()
    elif kind == "llvm":
        hw = _llvm_from_dict(d)
    else:
        raise UserError(f"bad --target: kind {kind!r} is not supported; use 'llvm' or 'cuda'")
    if not isinstance(overrides, dict):
        raise UserError("bad --target: \"hardware\" must be an object of hardware fields, e.g. {\"l2_kb\": 512}")
    names = {f.name for f in dataclasses.fields(Hardware)}
    unknown = set(overrides) - names
    if unknown:
        raise UserError(f"bad --target: unknown hardware fields {sorted(unknown)}; known: {sorted(names)}")
    for name, value in overrides.items():
        if name == "features":
            ok = isinstance(value, list) and all(isinstance(f, str) for f in value)
        elif name in ("kind", "mcpu"):
            ok = isinstance(value, str)
        else:
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        if not ok:
            want = ("a list of strings" if name == "features" else "a string" if name in ("kind", "mcpu")
                    else "a whole number >= 0")
            raise UserError(f"bad --target: hardware field {name!r} is {json.dumps(value)}, not {want}")
    if "features" in overrides:
        overrides["features"] = tuple(overrides["features"])
    hw = dataclasses.replace(hw, **overrides)
    try:
        _tvm_target(json.dumps(hw.tvm_target_dict(), sort_keys=True))
    except Exception as err:  # TVM raises ValueError/TVMError with a long message
        raise UserError(f"bad --target: TVM rejects it: {str(err).splitlines()[0]}") from None
    return ResolvedTarget(hw)


def _llvm_from_dict(d: dict) -> Hardware:
    from tvm.target import codegen

    extra = set(d) - {"kind", "mcpu", "num-cores"}
    if extra:
        raise UserError(f"bad --target: keys {sorted(extra)} are not supported; use kind, mcpu, num-cores")
    host = detect_host()
    mcpu = d.get("mcpu", host.mcpu)
    import tvm

    known = set(codegen.llvm_get_cpu_archlist(tvm.target.Target({"kind": "llvm"})))
    if known and mcpu not in known:
        raise UserError(f"bad --target: LLVM does not know mcpu {mcpu!r} (this machine is {host.mcpu!r})")
    cores = d.get("num-cores", host.num_cores)
    if (isinstance(cores, str) and cores.strip().isdigit()) or (isinstance(cores, float) and cores.is_integer()):
        cores = int(cores)  # as int() took them
    if not isinstance(cores, int) or isinstance(cores, bool) or cores < 1:
        raise UserError(f"bad --target: \"num-cores\" is {json.dumps(cores)}, not a whole number >= 1")
    if mcpu == host.mcpu:
        return dataclasses.replace(host, num_cores=cores)
    features = _cpu_features(mcpu)
    simd_bits, vregs = _simd(features)
    # Cache sizes of another CPU are not knowable from its name: give them in "hardware".
    return Hardware("llvm", mcpu, cores, simd_bits, vregs, 0, 0, 0, features)
