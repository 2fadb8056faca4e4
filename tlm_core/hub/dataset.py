"""The project's data as a Hugging Face dataset: export to a folder, push to the Hub, load it back.

Three configurations, each one split `train` of zstd parquet shards, with a dataset card
(`README.md`) whose YAML header tells the Hub and `datasets.load_dataset` where they are:

* `pretrain`: random valid sentences (Algorithm 1), the pretraining data (`tlm sample`);
* `measured`: every measured program of the demonstration data, failures included with their kind
  (`status`) and reason (`error`);
* `demonstrations`: the fastest measured programs per subgraph, the SFT data
  (`tlm_core.train.demonstrations.best_programs`, validation subgraphs excluded).

`load_frame(source, config)` gives the trainer the same table from a local export or a Hub
repository (at a pinned revision), so the pipeline can train from either.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections import Counter
from pathlib import Path

from tlm_core.errors import UserError
from tlm_core.paths import REPO_ROOT
from tlm_core.ui import log

CONFIGS = ("pretrain", "measured", "demonstrations")

DEFAULT_PRETRAIN = REPO_ROOT / "data" / "pretrain" / "sentences.parquet"
DEFAULT_RECORDS_EXPORT = REPO_ROOT / "data" / "demonstrations" / "records.parquet"
DEFAULT_RECORDS_STORE = REPO_ROOT / "data" / "demonstrations" / "store"

#: Rows per parquet shard (the pretraining data, 200,000 sentences, is one shard of ~20 MB).
SHARD_ROWS = 250_000
#: Seconds to wait for the Hub before giving up on a push (the upload itself has no limit).
PROBE_TIMEOUT_S = 10.0
#: A Hub repository id: ORG/NAME (or a bare NAME under the token's user).
REPO_ID = re.compile(r"^(?:[A-Za-z0-9][\w.-]*/)?[A-Za-z0-9][\w.-]*$")
#: The trainer reads these columns.
TRAIN_COLUMNS = ("prompt", "decisions")

_DESCRIPTIONS = {
    "pretrain": "Random valid sentences (Algorithm 1: every decision uniform over its valid domain) of the "
                "training subgraphs: the pretraining data.",
    "measured": "Every measured program of the training subgraphs, failures included: status is `ok` or the "
                "failure kind, error its reason.",
    "demonstrations": "The fastest measured programs of each training subgraph, validation subgraphs "
                      "excluded: the supervised fine-tuning (SFT) data.",
}

_COLUMN_DOCS = {
    "workload": "training workload the subgraph was extracted from (`tlm workloads --split train`)",
    "task_name": "TVM name of the subgraph (fused operator)",
    "task_hash": "structural hash of the subgraph (the same subgraph in two models has one hash)",
    "weight": "how many times the subgraph occurs in its workload",
    "sketch": "index of the schedule sketch (design-space skeleton) the decisions fill",
    "prompt": "the sentence's prompt: subgraph, hardware and sketch tokens",
    "decisions": "the schedule decisions the model writes; `prompt + ' ' + decisions` is the sentence",
    "prompt_tokens": "tokens of the prompt",
    "decision_tokens": "tokens of the decisions",
    "method": "what proposed the program: `random` (round 0) or `tlm` (the model, later rounds)",
    "round": "round of the iterative loop (0 = random programs)",
    "status": "`ok`, or the failure kind (build_error, build_timeout, build_crash, run_error, run_timeout, "
              "run_crash, wrong_result, reference_error)",
    "error": "why it failed (last 300 characters), empty when ok",
    "latency_s": "median of the timed repeats in seconds (null unless ok)",
    "max_rel_err": "max relative error of the output against the unscheduled program",
    "key": "content key of the record (task, schedule, target, versions, measurement settings)",
    "target": "hardware the program was measured on, as JSON",
    "measured_at": "UTC time of the measurement",
    "validation": "the subgraph belongs to the fixed 5% held out of SFT",
    "inputs": "version of the measurement inputs (2: in-bounds indices, integer masks 1; 1: integers 0)",
    "stale": "a subgraph with integer inputs measured on version-1 inputs: kept, but not counted",
}


# ---------------------------------------------------------------------------------------------- export


def _sidecar(path: Path) -> dict | None:
    side = Path(str(path) + ".provenance.json")
    if side.exists():
        try:
            return json.loads(side.read_text())
        except json.JSONDecodeError:
            return None
    return None


def _read_pretrain(source):
    import pandas as pd

    if source is None:
        return None, None
    if isinstance(source, pd.DataFrame):
        return source, None
    path = Path(source)
    if not path.is_file():
        raise UserError(f"--pretrain {path}: no such file (make one with `tlm sample`, or give --no-pretrain)")
    return pd.read_parquet(path), {"file": _rel(path), "provenance": _sidecar(path)}


def _read_records(source):
    """Records table and what is known about how it was measured (versions, measurement settings)."""
    import pandas as pd

    from tlm_core.train.demonstrations import load_records

    if source is None:
        return None, None
    if isinstance(source, pd.DataFrame):
        return source, {}
    path = Path(source)
    df = load_records(path)
    meta: dict = {"file": _rel(path)}
    if path.is_dir():
        meta["store"] = path
    else:
        meta["provenance"] = _sidecar(path)
    return df, meta


def _store_meta(store: Path, keys: set) -> dict:
    """Versions and measurement settings of the store's records that are in the table (it may grow meanwhile)."""
    from tlm_core.measure.store import RecordStore

    versions, settings = Counter(), Counter()
    for r in RecordStore(store):
        if r["key"] in keys:
            versions[json.dumps(r.get("versions"), sort_keys=True)] += 1
            settings[json.dumps(r.get("measure"), sort_keys=True)] += 1
    return {"versions": [{"count": n, **(json.loads(v) or {})} for v, n in versions.most_common()],
            "measure": [{"count": n, **(json.loads(s) or {})} for s, n in settings.most_common()]}


def _rel(path: Path) -> str:
    path = Path(path).resolve()
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def _write_config(df, folder: Path) -> dict:
    """zstd parquet shards `train-0000i-of-0000n.parquet`; returns the arrow schema and sizes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    table = pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False)
    shards = max(1, -(-len(df) // SHARD_ROWS))
    size = 0
    for i in range(shards):
        path = folder / f"train-{i:05d}-of-{shards:05d}.parquet"
        pq.write_table(table.slice(i * SHARD_ROWS, SHARD_ROWS), path, compression="zstd")
        size += path.stat().st_size
    return {"schema": table.schema, "rows": len(df), "bytes": size, "shards": shards,
            "memory_bytes": table.nbytes}


def export(out_dir, *, pretrain=DEFAULT_PRETRAIN, records=None, top: int = 2, repo_id: str | None = None) -> dict:
    """Write a `datasets`-loadable folder: one config per table, a dataset card and provenance.json.

    pretrain: parquet written by `tlm sample` (or a DataFrame); None leaves the config out.
    records: a record-store folder or exported parquet of measured records (or a DataFrame); None
    uses the committed export, else the default store, else leaves `measured`/`demonstrations` out.
    top: programs per subgraph in `demonstrations` (the SFT setting).
    repo_id: the Hub id the card's loading examples name (default: ORG/NAME).
    """
    from tlm_core.train.demonstrations import best_programs

    if top < 1:
        raise UserError("--top must be at least 1")
    if repo_id is not None and not REPO_ID.match(repo_id):
        raise UserError(f"--repo-id {repo_id!r}: expected ORG/NAME")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "provenance.json").exists():
        raise UserError(f"--out {out}: not empty and not a previous export; give a new or empty folder")
    if records is None:
        if DEFAULT_RECORDS_EXPORT.exists():
            records = DEFAULT_RECORDS_EXPORT
        elif (DEFAULT_RECORDS_STORE / "records.jsonl").exists():
            records = DEFAULT_RECORDS_STORE
    elif records is False:  # explicitly none
        records = None

    tables: dict = {}
    meta: dict = {}
    df, meta["pretrain"] = _read_pretrain(pretrain)
    if df is not None:
        tables["pretrain"] = df
    rec, meta["records"] = _read_records(records)
    if rec is not None and meta["records"].get("store"):  # settings of the records in the table only
        meta["records"].update(_store_meta(meta["records"].pop("store"), set(rec["key"]) if len(rec) else set()))
    if rec is not None and len(rec):
        tables["measured"] = rec
        best = best_programs(rec, top)
        if len(best):
            tables["demonstrations"] = best
    elif rec is not None:
        log(f"{records}: no measured records yet; `measured` and `demonstrations` left out")
    if not tables:
        raise UserError("nothing to export: give --pretrain FILE and/or --records FILE_OR_STORE")

    out.mkdir(parents=True, exist_ok=True)
    for stale in set(CONFIGS) - set(tables):
        if (out / stale).is_dir():
            shutil.rmtree(out / stale)
    written = {}
    for name, table in tables.items():
        log(f"writing {name}: {len(table):,} rows")
        written[name] = _write_config(table, out / name)

    from tlm_core.provenance import provenance

    prov = provenance(command="tlm dataset export", top=top, library_versions=_library_versions(),
                      configs={k: {"rows": v["rows"], "bytes": v["bytes"]} for k, v in written.items()},
                      sources=meta)
    (out / "provenance.json").write_text(json.dumps(prov, indent=2, default=str) + "\n")
    (out / "README.md").write_text(card(tables, written, meta, prov, top, repo_id or "ORG/NAME"))
    summary = {"out": str(out), "configs": {k: v["rows"] for k, v in written.items()},
               "bytes": sum(v["bytes"] for v in written.values())}
    return summary


def _library_versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("datasets", "huggingface_hub", "pyarrow", "pandas"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "absent"
    return out


# ------------------------------------------------------------------------------------------------ card


def _features_yaml(schema) -> list | None:
    """The `dataset_info` features list (what `datasets` infers from the parquet schema)."""
    try:
        from datasets import Features

        return Features.from_arrow_schema(schema)._to_yaml_list()
    except (ImportError, AttributeError, TypeError, ValueError, NotImplementedError):
        # a private helper of `datasets`: the card stays valid without dataset_info features
        return None


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                        (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < limit:
            return name
    return "10M<n<100M"


def card_header(written: dict) -> dict:
    """The YAML header: configs with data_files, license, tags, dataset_info."""
    configs, infos = [], []
    for name in CONFIGS:
        if name not in written:
            continue
        entry = {"config_name": name, "data_files": [{"split": "train", "path": f"{name}/train-*.parquet"}]}
        if name == next(c for c in CONFIGS if c in written):
            entry["default"] = True
        configs.append(entry)
        info = {"config_name": name}
        features = _features_yaml(written[name]["schema"])
        if features is not None:
            info["features"] = features
        info["splits"] = [{"name": "train", "num_bytes": written[name]["memory_bytes"],
                           "num_examples": written[name]["rows"]}]
        info["download_size"] = written[name]["bytes"]
        info["dataset_size"] = written[name]["memory_bytes"]
        infos.append(info)
    return {
        "license": "apache-2.0",
        "pretty_name": "TLM tensor-language sentences and measured TVM schedules",
        "task_categories": ["text-generation"],
        "tags": ["tvm", "tensor-compiler", "tensor-program", "schedule", "autotuning", "tlm", "code-generation"],
        "size_categories": [_size_category(max(v["rows"] for v in written.values()))],
        "configs": configs,
        "dataset_info": infos,
    }


def _schema_table(schema) -> str:
    lines = ["| column | type | meaning |", "|---|---|---|"]
    for field in schema:
        kind = "string" if str(field.type) == "large_string" else field.type
        lines.append(f"| `{field.name}` | {kind} | {_COLUMN_DOCS.get(field.name, '')} |")
    return "\n".join(lines)


def _hardware_section(tables: dict, meta: dict) -> str:
    lines = []
    pre = (meta.get("pretrain") or {}).get("provenance")
    if pre:
        t = pre.get("target") or {}
        lines.append(f"* `pretrain`: sampled (not measured) on {pre.get('cpu', '?')} ({pre.get('machine', '?')}), "
                     f"target `{json.dumps(t.get('tvm', t), sort_keys=True)}`, "
                     f"{pre.get('date', '?')}, commit `{pre.get('git_commit', '?')[:12]}`.")
    if "measured" in tables:
        df = tables["measured"]
        rprov = (meta.get("records") or {}).get("provenance") or {}
        cpu = f" ({rprov['cpu']})" if rprov.get("cpu") else ""
        lines.append(f"* `measured` / `demonstrations`: measured{cpu} on these targets (records per target):")
        lines.append("")
        lines.append("  | records | kind | mcpu | cores | SIMD bits | features | L1d / L2 / L3 KiB |")
        lines.append("  |---|---|---|---|---|---|---|")
        for target_json, n in Counter(df["target"]).most_common():
            try:
                t = json.loads(target_json)
            except (TypeError, json.JSONDecodeError):
                t = {}
            feats = ", ".join(t.get("features", []))
            caches = " / ".join(str(t.get(k, "?")) for k in ("l1d_kb", "l2_kb", "l3_kb"))
            lines.append(f"  | {n:,} | {t.get('kind', '?')} | {t.get('mcpu', '?')} | {t.get('num_cores', '?')} | "
                         f"{t.get('simd_bits', '?')} | {feats} | {caches} |")
        lines.append("")
        lines.append("  Every candidate is built by TVM, its output checked against the unscheduled program "
                     "(max relative error <= 1e-3, else `wrong_result`), and timed: `latency_s` is the median "
                     "of the timed repeats, each at least 10 ms.")
        measure = (meta.get("records") or {}).get("measure")
        if measure:
            settings = [f"{m.get('count', 0):,} records: "
                        + ", ".join(f"{k}={v}" for k, v in sorted(m.items()) if k != "count") for m in measure]
            lines.append("  Measurement settings: " + "; ".join(settings) + ".")
    return "\n".join(lines)


def _versions_section(meta: dict, prov: dict) -> str:
    lines = ["| data | python | tlm | apache-tvm | apache-tvm-ffi | torch | transformers |",
             "|---|---|---|---|---|---|---|"]
    keys = ("python", "tlm", "apache-tvm", "apache-tvm-ffi", "torch", "transformers")

    def row(label, v):
        lines.append(f"| {label} | " + " | ".join(str((v or {}).get(k, "?")) for k in keys) + " |")

    pre = (meta.get("pretrain") or {}).get("provenance")
    if pre:
        row("pretrain (sampled)", pre.get("versions"))
    rec = meta.get("records") or {}
    for v in rec.get("versions") or []:
        row(f"measured ({v.get('count', 0):,} records)", v)
    if rec.get("provenance"):
        row("measured (export)", rec["provenance"].get("versions"))
    row("this export", prov.get("versions"))
    libs = ", ".join(f"{k} {v}" for k, v in prov.get("library_versions", {}).items())
    lines.append("")
    lines.append(f"Exported {prov.get('date')} from commit `{prov.get('git_commit')}`"
                 f"{' (uncommitted changes)' if prov.get('git_dirty') else ''} with {libs}. "
                 "`provenance.json` holds all of it, with the provenance sidecars of the sources.")
    return "\n".join(lines)


def _pretrain_command(meta: dict) -> str:
    pre = (meta.get("pretrain") or {}).get("provenance") or {}
    summary = pre.get("summary") or {}
    if pre.get("command") and summary.get("sentences"):
        return (f"`{pre['command']} <{len(summary.get('workloads', []))} training workloads> "
                f"-n {summary['sentences']} --seed {pre.get('seed', 0)}`")
    return "`tlm sample <training workloads> -n N --seed S`"


def card(tables: dict, written: dict, meta: dict, prov: dict, top: int, repo_id: str = "ORG/NAME") -> str:
    """The dataset card: YAML header + schema, hardware, versions, counts, how to load."""
    import yaml

    header = yaml.safe_dump(card_header(written), sort_keys=False, allow_unicode=True, width=120)
    parts = ["---", header.rstrip(), "---", "",
             "# TLM: tensor-language sentences and measured TVM schedules", "",
             ("Data of a reimplementation of TLM (*Enabling Tensor Language Model to Assist in Generating "
              "High-Performance Tensor Programs for Deep Learning*, OSDI 2024): a GPT-2 writes the schedule "
              "decisions of Apache TVM (MetaSchedule) tensor programs as sentences of a tensor language. "
              "A sentence is a prompt (the subgraph, the hardware, the sketch) followed by the decisions; "
              "`prompt + \" \" + decisions` is the sentence, and `tlm_core.language.sentence.decode` reads it "
              "back into a schedule."), "",
             "## Configurations", "",
             "| config | rows | parquet bytes | what |", "|---|---|---|---|"]
    for name in CONFIGS:
        if name in written:
            w = written[name]
            parts.append(f"| `{name}` | {w['rows']:,} | {w['bytes']:,} | {_DESCRIPTIONS[name]} |")
    parts.append("")
    if "measured" in tables:
        df = tables["measured"]
        counts = Counter(df["status"])
        parts.append("`measured` by status: " + ", ".join(f"{k} {v:,}" for k, v in counts.most_common()) +
                     f"; {df['task_hash'].nunique():,} subgraphs of {df['workload'].nunique():,} workloads"
                     + (f", rounds {sorted({int(r) for r in df['round']})}" if "round" in df else "")
                     + (", methods " + ", ".join(f"{k} {v:,}" for k, v in Counter(df["method"]).most_common())
                        if "method" in df else "") + ".")
    if "demonstrations" in tables:
        d = tables["demonstrations"]
        parts.append(f"`demonstrations`: the {top} fastest `ok` programs per subgraph "
                     f"(`best_programs(records, {top})`), {d['task_hash'].nunique():,} subgraphs; "
                     "subgraphs with `validation` true are kept out (the held-out test of meaning).")
    if "pretrain" in tables:
        p = tables["pretrain"]
        parts.append(f"`pretrain`: {len(p):,} sentences of {p['task_hash'].nunique():,} subgraphs of "
                     f"{p['workload'].nunique():,} training workload(s); subgraphs that a test workload "
                     "(Table 1 of the paper) has are held out.")
    parts += ["", "## How to load", "", "```python", "from datasets import load_dataset", ""]
    for name in CONFIGS:
        if name in written:
            parts.append(f'{name} = load_dataset("{repo_id}", "{name}", split="train")  # or a local folder')
    parts += ["```", "", "With the `tlm` package (a pinned revision makes training reproducible):", "", "```bash",
              f"tlm dataset load {repo_id} --config measured --revision <commit>", "```", "",
              "```python", "from tlm_core.hub.dataset import load_frame",
              f'df = load_frame("{repo_id}", "demonstrations", revision="<commit>")  # pandas: prompt, decisions, ...',
              "```", "", "## Schema", ""]
    for name in CONFIGS:
        if name in written:
            parts += [f"### `{name}`", "", _schema_table(written[name]["schema"]), ""]
    parts += ["## Hardware", "", _hardware_section(tables, meta), "",
              "## Versions", "", _versions_section(meta, prov), "",
              "## How it was made", "",
              "* `pretrain`: " + _pretrain_command(meta) + " (random valid programs).",
              ("* `measured`: `tlm train collect` (round 0, random programs) and `tlm train iterate` (programs "
               "the model generated), every candidate measured on the hardware above."),
              f"* this folder: `tlm dataset export --top {top}`; pushed with `tlm dataset push`.", "",
              "## License", "", "Apache-2.0, like the code that made it.", ""]
    return "\n".join(parts)


def read_card_header(folder) -> dict:
    """The YAML header of a dataset card (`README.md`); {} when there is none."""
    import yaml

    path = Path(folder) / "README.md"
    if not path.is_file():
        return {}
    text = path.read_text()
    if not text.startswith("---"):
        return {}
    end = text.find("\n---", 3)
    if end < 0:
        return {}
    header = yaml.safe_load(text[3:end])
    return header if isinstance(header, dict) else {}


# ------------------------------------------------------------------------------------------------ push


def _token() -> str | None:
    """HF_TOKEN, else the token of `hf auth login`."""
    from huggingface_hub import get_token

    return os.environ.get("HF_TOKEN") or get_token()


def _network_errors() -> tuple:
    from huggingface_hub.errors import HfHubHTTPError

    errors: list = [OSError, HfHubHTTPError, ValueError]
    for mod in ("httpx2", "httpx", "requests"):  # the HTTP client of this huggingface_hub release
        try:
            m = __import__(mod)
        except ImportError:
            continue
        errors.append(getattr(m, "HTTPError", None) or m.RequestException)
    return tuple(e for e in errors if isinstance(e, type))


def _reason(err: Exception) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text[:200]}" if text else type(err).__name__


def _offline() -> bool:
    flags = (os.environ.get(v, "").upper() for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))
    return any(f in ("1", "ON", "YES", "TRUE") for f in flags)


def _probe(api_path: str, token: str | None):
    """GET the Hub API with a timeout: a clear UserError at once when the Hub cannot be reached.

    The client's own calls wait without limit, and `datasets` retries for half a minute.
    """
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    headers = {"authorization": f"Bearer {token}"} if token else {}
    try:
        return get_session().get(f"{constants.ENDPOINT}{api_path}", headers=headers, timeout=PROBE_TIMEOUT_S)
    except _network_errors() as err:
        raise UserError(f"cannot reach the Hugging Face Hub at {constants.ENDPOINT} ({_reason(err)}); "
                        "check the network (or set HF_ENDPOINT)") from None


def push(folder, repo_id: str, revision: str | None = None, private: bool = False) -> dict:
    """Upload an exported folder to the Hub dataset `repo_id` (created if missing; revision = branch)."""
    from huggingface_hub import HfApi

    folder = Path(folder)
    if not (folder / "README.md").is_file() or not read_card_header(folder).get("configs"):
        raise UserError(f"{folder}: not an exported dataset folder (make one with `tlm dataset export --out DIR`)")
    if not REPO_ID.match(repo_id):
        raise UserError(f"--repo-id {repo_id!r}: expected ORG/NAME")
    token = _token()
    if not token:
        raise UserError("no Hugging Face token: set HF_TOKEN or run `hf auth login`")
    errors = _network_errors()
    r = _probe("/api/whoami-v2", token)
    if r.status_code == 401:
        raise UserError("the Hugging Face token was refused (401): set a valid HF_TOKEN or run `hf auth login`")
    api = HfApi(token=token)
    try:
        url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        if revision:
            api.create_branch(repo_id, repo_type="dataset", branch=revision, exist_ok=True)
        info = api.upload_folder(repo_id=repo_id, repo_type="dataset", folder_path=folder, revision=revision,
                                 commit_message="tlm dataset push", delete_patterns=["*.parquet"])
    except errors as err:
        raise UserError(f"push to {repo_id} failed: {_reason(err)}") from None
    return {"repo_id": repo_id, "url": str(url), "revision": revision or "main",
            "commit": getattr(info, "oid", None), "commit_url": getattr(info, "commit_url", None)}


# ------------------------------------------------------------------------------------------------ load


def _resolve(source) -> tuple[str, Path | None]:
    """('local', folder) or ('hub', None); UserError when it is neither."""
    path = Path(source)
    if path.exists():
        if not path.is_dir():
            raise UserError(f"{source}: a file, not a dataset folder (give the folder `tlm dataset export` wrote)")
        if not read_card_header(path).get("configs"):
            raise UserError(f"{source}: no dataset card with configs (README.md) in this folder; "
                            "make one with `tlm dataset export --out DIR`")
        return "local", path
    s = str(source)
    if s.startswith((".", "/", "~")) or s.count("/") != 1 or not REPO_ID.match(s):
        raise UserError(f"{source}: no such folder, and not a Hub dataset id (ORG/NAME)")
    return "hub", None


def _check_hub(repo_id: str, revision: str | None) -> None:
    """Fail fast and clearly when a Hub dataset (at a revision) cannot be read; skipped offline (cache)."""
    from urllib.parse import quote

    if _offline():
        return
    token = _token()
    path = f"/api/datasets/{repo_id}" + (f"/revision/{quote(revision, safe='')}" if revision else "")
    r = _probe(path, token)
    if r.status_code in (401, 403, 404):
        what = f"{repo_id} at revision {revision}" if revision else repo_id
        hint = "" if token else " (private? set HF_TOKEN or run `hf auth login`)"
        raise UserError(f"no Hub dataset {what} (HTTP {r.status_code}){hint}")


def configs_of(source, revision: str | None = None) -> list[str]:
    """The configurations a local export or Hub dataset has."""
    kind, path = _resolve(source)
    if kind == "local":
        return [c["config_name"] for c in read_card_header(path)["configs"]]
    from datasets import get_dataset_config_names

    _check_hub(str(source), revision)
    try:
        return list(get_dataset_config_names(str(source), revision=revision))
    except _network_errors() + _datasets_errors() as err:
        raise UserError(f"cannot read {source} from the Hugging Face Hub: {_reason(err)}") from None


def _datasets_errors() -> tuple:
    try:
        from datasets.exceptions import DatasetNotFoundError

        return (DatasetNotFoundError, FileNotFoundError)
    except ImportError:
        return (FileNotFoundError,)


def load(source, config: str, revision: str | None = None, cache_dir=None):
    """One configuration as a `datasets.Dataset`: from a local export folder or a Hub id (pinned revision)."""
    from datasets import load_dataset

    kind, path = _resolve(source)
    if kind == "local":
        if revision:
            raise UserError("--revision applies to Hub datasets, not to a local folder")
        names = configs_of(path)
        if config not in names:
            raise UserError(f"{source}: no config {config!r}; it has {', '.join(names)}")
        try:
            return load_dataset(str(path), config, split="train", cache_dir=cache_dir)
        except (ValueError, FileNotFoundError) as err:
            raise UserError(f"{source}: cannot load config {config!r}: {_reason(err)}") from None
    _check_hub(str(source), revision)
    try:
        return load_dataset(str(source), config, split="train", revision=revision, cache_dir=cache_dir)
    except _network_errors() + _datasets_errors() as err:
        raise UserError(f"cannot load {source} ({config}) from the Hugging Face Hub"
                        f"{f' at revision {revision}' if revision else ''}: {_reason(err)}") from None


def load_frame(source, config: str = "demonstrations", revision: str | None = None, cache_dir=None):
    """One configuration as a pandas DataFrame with the columns the trainer reads (prompt, decisions)."""
    df = load(source, config, revision, cache_dir).to_pandas()
    missing = [c for c in TRAIN_COLUMNS if c not in df.columns]
    if missing:
        raise UserError(f"{source} ({config}): no column {', '.join(missing)}; the trainer needs "
                        f"{', '.join(TRAIN_COLUMNS)}")
    return df
