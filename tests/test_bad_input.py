"""Bad input files (issue 30): every command that reads a file, given one that is truncated, corrupt,
empty or of the wrong kind, says in one line which file is bad and what to do, and exits non-zero,
without a traceback. A record store with unreadable lines keeps its good ones and says how many it
skipped; a corrupt cache entry is extracted again.

Table-driven: each case makes one bad input in a fresh folder and runs the real CLI in-process on it.
The error comes before any heavy work (compile, measure, train), on bert_tiny's cached tasks.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tlm_core.cli import main
from tlm_core.paths import REPO_ROOT

PRETRAIN = REPO_ROOT / "data" / "pretrain" / "sentences.parquet"
RECORDS = REPO_ROOT / "data" / "demonstrations" / "records.parquet"


@pytest.fixture(autouse=True)
def _quiet(monkeypatch, tmp_path):
    monkeypatch.setenv("TLM_PROGRESS", "0")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf_datasets"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("TLM_CHECKPOINT", raising=False)


@pytest.fixture(scope="session")
def good(tmp_path_factory):
    """Good inputs, tiny: a checkpoint, pretraining sentences, measured records, an export, a store."""
    import pandas as pd

    from tlm_core.hub.dataset import export
    from tlm_core.model.checkpoint import build, save
    from tlm_core.train.demonstrations import restore

    root = tmp_path_factory.mktemp("good")
    save(build("tiny", 2816), root / "model")
    save(build("small", 2816), root / "small")  # its weights do not fit the tiny config
    pd.read_parquet(PRETRAIN).head(40).to_parquet(root / "pretrain.parquet", index=False)
    records = pd.read_parquet(RECORDS)
    records = records[(records.status == "ok") & ~records.validation]  # SFT data: it trains on them
    records.head(60).to_parquet(root / "records.parquet", index=False)
    export(root / "export", pretrain=root / "pretrain.parquet", records=root / "records.parquet")
    restore(root / "store", root / "records.parquet")
    (root / "run").mkdir()
    (root / "run" / "summary.json").write_text(json.dumps({"seconds": 1.0}))
    return root


# -- bad-input makers: each writes one bad thing under `tmp` and returns its path ------------------------


def _copy(good: Path, name: str, tmp: Path) -> Path:
    shutil.copytree(good / name, tmp / name)
    return tmp / name


def truncated(name, keep=0.5):
    def make(path: Path) -> Path:
        data = path.read_bytes()
        path.write_bytes(data[:max(1, int(len(data) * keep))])
        return path
    make.__name__ = name
    return make


def writes(data: bytes | str):
    def make(path: Path) -> Path:
        if path.is_dir():
            shutil.rmtree(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
        return path
    return make


def folder(path: Path) -> Path:
    path.unlink()
    path.mkdir()
    return path


RANDOM = bytes(range(256)) * 12 + b"\x00\xff" * 500  # not UTF-8, not JSON, not parquet, not safetensors


def _checkpoint(file: str, make):
    """A copy of the good checkpoint with one of its files made bad."""
    def setup(good, tmp):
        model = _copy(good, "model", tmp)
        return model, make(model / file)
    return setup


def _other_weights(good, tmp):
    model = _copy(good, "model", tmp)
    shutil.copy(good / "small" / "model.safetensors", model / "model.safetensors")
    return model, model / "model.safetensors"


def _a_file(good, tmp):
    path = writes("not a folder")(tmp / "model")
    return path, path


def _store(lines: bytes | str | None, named: str = "file"):
    """A record store whose records.jsonl holds `lines` (None: records.jsonl is a folder); the message
    names its file, or the store folder (a store of readable records that are no use)."""
    def setup(good, tmp):
        path = tmp / "store" / "records.jsonl"
        path.mkdir(parents=True) if lines is None else writes(lines)(path)
        return tmp / "store", path if named == "file" else tmp / "store"
    return setup


OTHER = json.dumps({"key": "k1", "task_hash": "0123456789abcdef", "status": "ok", "latency_s": 0.001,
                    "trace": "[]", "workload": "resnet50"}) + "\n"
GARBAGE = RANDOM + b"\n" + RANDOM + b"\n"


def _parquet(make):
    def setup(good, tmp):
        path = tmp / "table.parquet"
        shutil.copy(good / "records.parquet", path)
        return path, make(path)
    return setup


def _columns(good, tmp):
    import pandas as pd

    path = tmp / "table.parquet"
    pd.DataFrame({"a": [1, 2]}).to_parquet(path)
    return path, path


def _export(rel: str, make):
    """A copy of the good export with one file made bad."""
    def setup(good, tmp):
        out = _copy(good, "export", tmp)
        target = next(out.glob(rel)) if "*" in rel else out / rel
        return out, make(target)
    return setup


def _no_shards(path: Path) -> Path:
    for shard in path.glob("*.parquet"):
        shard.unlink()
    return path


def _export_columns(good, tmp):
    import pandas as pd

    out = _copy(good, "export", tmp)
    shard = next(out.glob("measured/*.parquet"))
    pd.DataFrame({"a": [1]}).to_parquet(shard)
    return out, shard


def _run_file(name: str, make):
    """A run folder (good otherwise) with `name` made bad: target.json, summary.json, training.json..."""
    def setup(good, tmp):
        run = tmp / "run"
        run.mkdir()
        return run, make(run / name)
    return setup


def _module(source: bytes | str | None):
    def setup(good, tmp):
        path = tmp / "model.py"
        path.mkdir() if source is None else writes(source)(path)
        return f"{path}:fn", path
    return setup


def _target(spec: str):
    def setup(good, tmp):
        return spec, "--target"
    return setup


def _target_file(good, tmp):
    path = writes('{"kind": "llvm"}')(tmp / "target.json")
    return str(path), path


def _resume(good, tmp):
    out = tmp / "pre"
    return out, writes(RANDOM)(out / "resume" / "state.pt")


def _gen_store(good, tmp):
    writes(GARBAGE)(tmp / "gen" / "candidates" / "records.jsonl")
    return tmp / "gen", tmp / "gen" / "candidates" / "records.jsonl"


def _iterate_config(good, tmp):
    out = tmp / "it"
    return out, writes('{"init": "x", ')(out / "iterate_config.json")


def _iterate_target(good, tmp):
    out = tmp / "it"
    return out, writes("[1, 2]")(out / "target.json")


# -- the table: (id, argv with {X} for the bad input and {good} for the good ones, setup) -------------------

M = "{good}/model"
CASES = [
    # the checkpoint: tlm generate --checkpoint, tlm train sft/iterate --init, tlm train ship --model
    ("generate/safetensors-truncated", "generate bert_tiny --k 1 --checkpoint {X} --out {tmp}/gen",
     _checkpoint("model.safetensors", truncated("half"))),
    ("generate/safetensors-random", "generate bert_tiny --k 1 --checkpoint {X} --out {tmp}/gen",
     _checkpoint("model.safetensors", writes(RANDOM))),
    ("generate/safetensors-empty", "generate bert_tiny --k 1 --checkpoint {X} --out {tmp}/gen",
     _checkpoint("model.safetensors", writes(b""))),
    ("generate/safetensors-folder", "generate bert_tiny --k 1 --checkpoint {X} --out {tmp}/gen",
     _checkpoint("model.safetensors", folder)),
    ("generate/safetensors-other-model", "generate bert_tiny --k 1 --checkpoint {X} --out {tmp}/gen", _other_weights),
    ("generate/config-truncated", "generate bert_tiny --k 1 --checkpoint {X} --out {tmp}/gen",
     _checkpoint("config.json", truncated("half"))),
    ("generate/config-array", "generate bert_tiny --k 1 --checkpoint {X} --out {tmp}/gen",
     _checkpoint("config.json", writes("[1, 2, 3]"))),
    ("generate/config-not-gpt2", "generate bert_tiny --k 1 --checkpoint {X} --out {tmp}/gen",
     _checkpoint("config.json", writes('{"model_type": "bert"}'))),
    ("generate/tokenizer-truncated", "generate bert_tiny --k 1 --checkpoint {X} --out {tmp}/gen",
     _checkpoint("tokenizer.json", truncated("half"))),
    ("generate/tokenizer-wrong-shape", "generate bert_tiny --k 1 --checkpoint {X} --out {tmp}/gen",
     _checkpoint("tokenizer.json", writes('{"version": "1.0"}'))),
    ("generate/tokenizer-config-random", "generate bert_tiny --k 1 --checkpoint {X} --out {tmp}/gen",
     _checkpoint("tokenizer_config.json", writes(RANDOM))),
    ("generate/checkpoint-is-a-file", "generate bert_tiny --k 1 --checkpoint {X} --out {tmp}/gen", _a_file),
    ("generate/out-store-garbage", f"generate bert_tiny --k 1 --checkpoint {M} --out {{X}}", _gen_store),
    ("sft/init-truncated", "train sft --init {X} --records {good}/records.parquet --out {tmp}/sft",
     _checkpoint("model.safetensors", truncated("tail", 0.9))),
    ("iterate/init-truncated", "train iterate --init {X} --store {tmp}/store --out {tmp}/it --rounds 1",
     _checkpoint("model.safetensors", truncated("half"))),
    ("iterate/init-config-empty", "train iterate --init {X} --store {tmp}/store --out {tmp}/it --rounds 1",
     _checkpoint("config.json", writes(""))),
    ("ship/model-truncated", "train ship --model {X} --pretrain {good}/run --records {good}/records.parquet "
     "--to {tmp}/shipped", _checkpoint("model.safetensors", truncated("half"))),
    # files beside a run: target.json, iterate_config.json, summary.json, training.json, resume/state.pt
    ("iterate/out-config-truncated", f"train iterate --init {M} --store {{tmp}}/store --out {{X}} --rounds 1",
     _iterate_config),
    ("iterate/out-target-array", f"train iterate --init {M} --store {{tmp}}/store --out {{X}} --rounds 1",
     _iterate_target),
    ("iterate/store-garbage", f"train iterate --init {M} --store {{X}} --out {{tmp}}/it --rounds 1",
     _store(GARBAGE)),
    ("ship/iterate-target-truncated", f"train ship --model {M} --pretrain {{good}}/run --iterate {{X}} "
     "--records {good}/records.parquet --to {tmp}/shipped", _run_file("target.json", writes('{"mcpu": "zn'))),
    ("ship/pretrain-summary-random", f"train ship --model {M} --pretrain {{X}} --records {{good}}/records.parquet "
     "--to {tmp}/shipped", _run_file("summary.json", writes(RANDOM))),
    ("ship/to-training-json-truncated", f"train ship --model {M} --pretrain {{good}}/run "
     "--records {good}/records.parquet --to {X}", _run_file("training.json", writes('{"hardware": {"mc'))),
    ("ship/iterate-convergence-garbage", f"train ship --model {M} --pretrain {{good}}/run --iterate {{X}} "
     "--records {good}/records.parquet --to {tmp}/shipped", _run_file("convergence.jsonl", writes("x\ny\n"))),
    ("pretrain/resume-state-random", "train pretrain --data {good}/pretrain.parquet --config tiny --out {X}",
     _resume),
    # the record store: tlm tune --out, tlm compile/bench/profile --db
    ("tune/out-garbage", "tune bert_tiny --method random --budget 1 --out {X}", _store(GARBAGE)),
    ("tune/out-records-folder", "tune bert_tiny --method random --budget 1 --out {X}", _store(None)),
    ("compile/db-garbage", "compile bert_tiny --db {X} --out {tmp}/m.so", _store(GARBAGE)),
    ("compile/db-json-not-records", "compile bert_tiny --db {X} --out {tmp}/m.so", _store('[1, 2]\n{"a": 1}\n')),
    ("compile/db-other-workload", "compile bert_tiny --db {X} --out {tmp}/m.so", _store(OTHER, "folder")),
    ("compile/db-empty", "compile bert_tiny --db {X} --out {tmp}/m.so", _store("", "folder")),
    ("compile/db-records-folder", "compile bert_tiny --db {X} --out {tmp}/m.so", _store(None)),
    ("bench/db-garbage", "bench bert_tiny --db {X}", _store(GARBAGE)),
    ("bench/db-other-workload", "bench bert_tiny --db {X}", _store(OTHER, "folder")),
    ("profile/db-garbage", "profile bert_tiny --db {X}", _store(GARBAGE)),
    ("profile/db-other-workload", "profile bert_tiny --db {X}", _store(OTHER, "folder")),
    # measured records: tlm train sft/ship --records, tlm dataset export --records
    ("sft/records-truncated", f"train sft --init {M} --records {{X}} --out {{tmp}}/sft", _parquet(truncated("half"))),
    ("sft/records-random", f"train sft --init {M} --records {{X}} --out {{tmp}}/sft", _parquet(writes(RANDOM))),
    ("sft/records-wrong-columns", f"train sft --init {M} --records {{X}} --out {{tmp}}/sft", _columns),
    ("sft/records-store-garbage", f"train sft --init {M} --records {{X}} --out {{tmp}}/sft", _store(GARBAGE)),
    ("ship/records-empty", f"train ship --model {M} --pretrain {{good}}/run --records {{X}} --to {{tmp}}/shipped",
     _parquet(writes(b""))),
    ("export/records-truncated", "dataset export --no-pretrain --records {X} --out {tmp}/ds",
     _parquet(truncated("half"))),
    ("export/records-store-garbage", "dataset export --no-pretrain --records {X} --out {tmp}/ds", _store(GARBAGE)),
    # pretraining sentences: tlm train pretrain --data, tlm dataset export --pretrain
    ("pretrain/data-truncated", "train pretrain --data {X} --config tiny --out {tmp}/pre", _parquet(truncated("half"))),
    ("pretrain/data-empty", "train pretrain --data {X} --config tiny --out {tmp}/pre", _parquet(writes(b""))),
    ("pretrain/data-wrong-columns", "train pretrain --data {X} --config tiny --out {tmp}/pre", _columns),
    ("export/pretrain-truncated", "dataset export --pretrain {X} --no-records --out {tmp}/ds",
     _parquet(truncated("half"))),
    ("export/pretrain-wrong-columns", "dataset export --pretrain {X} --no-records --out {tmp}/ds", _columns),
    # a dataset folder: tlm dataset load/push
    ("load/shard-truncated", "dataset load {X}", _export("measured/*.parquet", truncated("half"))),
    ("load/shard-random", "dataset load {X}", _export("pretrain/*.parquet", writes(RANDOM))),
    ("load/shard-wrong-columns", "dataset load {X}", _export_columns),
    ("load/shard-missing", "dataset load {X}", _export("demonstrations", _no_shards)),
    ("load/card-random", "dataset load {X}", _export("README.md", writes(RANDOM))),
    ("load/card-bad-yaml", "dataset load {X}", _export("README.md", writes("---\nconfigs: [a: b: c\n---\n"))),
    ("load/card-configs-wrong-shape", "dataset load {X}", _export("README.md", writes("---\nconfigs: hello\n---\n"))),
    ("push/shard-truncated", "dataset push {X} --repo-id org/name", _export("measured/*.parquet", truncated("half"))),
    ("push/card-random", "dataset push {X} --repo-id org/name", _export("README.md", writes(RANDOM))),
    # a target JSON and a user module: tlm tasks/tune/... --target, --module
    ("tasks/target-truncated", "tasks bert_tiny --target {X}", _target('{"kind": "llvm", "mcpu"')),
    ("tasks/target-array", "tasks bert_tiny --target {X}", _target("[1, 2]")),
    ("tasks/target-cores-not-a-number", "tasks bert_tiny --target {X}", _target('{"kind": "llvm", "num-cores": "x"}')),
    ("tasks/target-hardware-wrong-type", "tasks bert_tiny --target {X}",
     _target('{"kind": "llvm", "hardware": {"features": 5}}')),
    ("tasks/target-a-file", "tasks bert_tiny --target {X}", _target_file),
    ("tune/target-null-cores", "tune bert_tiny --method random --budget 1 --out {tmp}/t --target {X}",
     _target('{"kind": "llvm", "num-cores": null}')),
    ("tasks/module-random", "tasks --module {X}", _module(RANDOM)),
    ("tasks/module-syntax", "tasks --module {X}", _module("def fn(:\n")),
    ("tasks/module-raises-two-lines", "tasks --module {X}", _module('raise RuntimeError("one\\ntwo")\n')),
    ("tasks/module-folder", "tasks --module {X}", _module(None)),
    ("tune/module-wrong-return", "tune --module {X} --method random --budget 1 --out {tmp}/t",
     _module("def fn():\n    return 1\n")),
    # the other commands that read one of these files: sample, roundtrip, train collect, train ranker
    ("sample/target-array", "sample bert_tiny -n 2 --out {tmp}/s.parquet --target {X}", _target("[1, 2]")),
    ("sample/module-syntax", "sample --module {X} -n 2 --out {tmp}/s.parquet", _module("def fn(:\n")),
    ("roundtrip/target-truncated", "roundtrip bert_tiny -n 1 --target {X}", _target('{"kind": "llvm", "mcpu"')),
    ("roundtrip/module-random", "roundtrip --module {X} -n 1", _module(RANDOM)),
    ("collect/store-garbage", "train collect --per-task 1 --store {X}", _store(GARBAGE)),
    ("ranker/records-truncated", "train ranker --records {X} --out {tmp}/rk", _parquet(truncated("half"))),
    ("ranker/records-wrong-columns", "train ranker --records {X} --out {tmp}/rk", _columns),
]


#: The one progress line a command says before it reads the file: `tlm tasks` imports a module to extract it.
PROGRESS = {"tasks": "extracting tasks of "}


@pytest.mark.parametrize("argv, setup", [pytest.param(a, s, id=i) for i, a, s in CASES])
def test_a_bad_file_is_one_line_naming_it(argv, setup, good, tmp_path, capsys):
    arg, named = setup(good, tmp_path)
    args = [a.format(X=arg, good=good, tmp=tmp_path) for a in argv.split()]
    capsys.readouterr()
    rc = main(args)  # an exception here is the traceback this test forbids
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    if args[0] in PROGRESS and len(lines) > 1 and lines[0].startswith(PROGRESS[args[0]]):
        lines = lines[1:]
    assert rc != 0
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert lines[0].startswith("tlm: error: "), err
    assert str(named) in lines[0], (str(named), lines[0])


def test_the_console_command_exits_2_in_one_line(good, tmp_path):
    """The issue's probe, as a user runs it: a truncated model.safetensors ended `tlm generate` in a traceback."""
    import subprocess
    import sys

    model, bad = _checkpoint("model.safetensors", truncated("half"))(good, tmp_path)
    tlm = [sys.executable, "-c", "import sys; from tlm_core.cli import main; sys.exit(main())"]  # the console script
    run = subprocess.run([*tlm, "generate", "bert_tiny", "--k", "1", "--checkpoint",
                          str(model), "--out", str(tmp_path / "gen")], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "TLM_PROGRESS": "0"})
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith(f"tlm: error: {bad}: truncated or not a safetensors file")


# -- what is not an error: a store with some unreadable lines, a corrupt cache ----------------------------


def test_a_store_with_unreadable_lines_keeps_the_rest_and_says_how_many(good, tmp_path, capsys):
    from tlm_core.measure.store import RecordStore

    store = tmp_path / "store"
    shutil.copytree(good / "store", store)
    n = len(RecordStore(store))
    with open(store / "records.jsonl", "ab") as f:
        f.write(b"not a record\n" + RANDOM.translate(None, b"\r\n") + b"\n" + b'{"key": "torn", "v"')  # + a torn tail
    capsys.readouterr()
    rc = main(["dataset", "export", "--no-pretrain", "--records", str(store), "--out", str(tmp_path / "ds"), "--json"])
    out = capsys.readouterr()
    assert rc == 0
    assert json.loads(out.out)["configs"]["measured"] == n
    warnings = [line for line in out.err.splitlines() if "unreadable" in line]
    assert len(warnings) == 1 and "skipped 2 unreadable line(s)" in warnings[0], out.err
    assert str(store / "records.jsonl") in warnings[0] and f"read {n} records" in warnings[0]


def test_a_store_of_only_a_torn_line_is_an_empty_store(tmp_path):
    """A writer killed during its first record leaves no readable line: not an error, so the run resumes."""
    from tlm_core.measure.store import RecordStore

    (tmp_path / "records.jsonl").write_bytes(b'{"key": "a", "v"')
    store = RecordStore(tmp_path)
    assert len(store) == 0
    store.add({"key": "b"})
    assert [r["key"] for r in RecordStore(tmp_path)] == ["b"]


def test_a_corrupt_task_cache_entry_is_extracted_again(tmp_path, monkeypatch, capsys):
    from tlm_core.ir.target import resolve_target
    from tlm_core.ir.tasks import _cache_name, cache_key
    from tlm_core.ir.workloads import parse_module

    monkeypatch.setenv("TLM_CACHE", str(tmp_path / "cache"))
    module = tmp_path / "lin.py"
    module.write_text("import torch\n\ndef fn():\n    return torch.nn.Linear(8, 4), (torch.randn(2, 8),)\n")
    source = parse_module(f"{module}:fn")
    entry = tmp_path / "cache" / "tasks" / _cache_name(source, cache_key(source, resolve_target("host")))
    entry.parent.mkdir(parents=True)
    entry.write_text('{"key": "' + entry.stem.rsplit("-", 1)[1] + '", "tasks": [{"name": "fused_matm')  # torn
    capsys.readouterr()
    rc = main(["tasks", "--module", f"{module}:fn", "--json"])
    out = capsys.readouterr()
    assert rc == 0 and [t["name"] for t in json.loads(out.out)] == ["fused_matmul_add1"]
    assert f"task cache {entry} is unreadable" in out.err and "extracting the tasks again" in out.err
    assert json.loads(entry.read_text())["tasks"]  # rewritten whole
    capsys.readouterr()
    assert main(["tasks", "--module", f"{module}:fn"]) == 0
    assert "unreadable" not in capsys.readouterr().err


def test_a_corrupt_host_cache_is_probed_again(tmp_path, monkeypatch):
    from tlm_core.ir import target as T

    monkeypatch.setenv("TLM_CACHE", str(tmp_path))
    T.detect_host.cache_clear()
    try:
        here = T.detect_host()
        (path,) = tmp_path.glob("host-*.json")
        path.write_bytes(RANDOM)
        T.detect_host.cache_clear()
        assert T.detect_host() == here
        assert T.Hardware.from_json(path.read_text()) == here
    finally:
        T.detect_host.cache_clear()


def test_good_inputs_still_pass_the_checks(good):
    """The checks take what `tlm` writes: a checkpoint, a records table, an export, a store."""
    from tlm_core.hub.dataset import check_files, configs_of
    from tlm_core.model.checkpoint import check
    from tlm_core.train.demonstrations import load_records

    assert check(good / "model") == good / "model"
    assert len(load_records(good / "records.parquet")) == 60
    assert len(load_records(good / "store")) == 60
    # Several sources are one table, each record once: the store holds what the export holds.
    assert len(load_records([good / "records.parquet", good / "store"])) == 60
    check_files(good / "export")
    assert configs_of(good / "export") == ["pretrain", "measured", "demonstrations"]
    if os.path.isdir(REPO_ROOT / "data" / "dataset"):
        check_files(REPO_ROOT / "data" / "dataset")
    for shipped in sorted((REPO_ROOT / "data").glob("model*")):
        check(shipped)
