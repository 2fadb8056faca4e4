"""The dataset card (`README.md` of an export): its YAML header for the Hub and `datasets`, and its text,
the template `templates/dataset_card.md` filled from the exported tables and their provenance."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from string import Template

from tlm_core.errors import UserError
from tlm_core.hub import CONFIGS

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
              "run_crash, wrong_result, reference_error), or `slower`: stopped as over MeasureConfig.prune_slower "
              "times its subgraph's best (tuning runs only; not a failure)",
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
    """The dataset card: `templates/dataset_card.md` filled with the header, counts, schema, hardware, versions."""
    import yaml

    configurations = [f"| `{name}` | {written[name]['rows']:,} | {written[name]['bytes']:,} | {_DESCRIPTIONS[name]} |"
                      for name in CONFIGS if name in written]
    counts = []
    if "measured" in tables:
        df = tables["measured"]
        statuses = Counter(df["status"])
        counts.append("`measured` by status: " + ", ".join(f"{k} {v:,}" for k, v in statuses.most_common()) +
                      f"; {df['task_hash'].nunique():,} subgraphs of {df['workload'].nunique():,} workloads"
                      + (f", rounds {sorted({int(r) for r in df['round']})}" if "round" in df else "")
                      + (", methods " + ", ".join(f"{k} {v:,}" for k, v in Counter(df["method"]).most_common())
                         if "method" in df else "") + ".")
    if "demonstrations" in tables:
        d = tables["demonstrations"]
        counts.append(f"`demonstrations`: the {top} fastest `ok` programs per subgraph "
                      f"(`best_programs(records, {top})`), {d['task_hash'].nunique():,} subgraphs; "
                      "subgraphs with `validation` true are kept out (the held-out test of meaning).")
    if "pretrain" in tables:
        p = tables["pretrain"]
        counts.append(f"`pretrain`: {len(p):,} sentences of {p['task_hash'].nunique():,} subgraphs of "
                      f"{p['workload'].nunique():,} training workload(s); subgraphs that a test workload "
                      "(Table 1 of the paper) has are held out.")
    loads = [f'{name} = load_dataset("{repo_id}", "{name}", split="train")  # or a local folder'
             for name in CONFIGS if name in written]
    schemas = [f"### `{name}`\n\n{_schema_table(written[name]['schema'])}" for name in CONFIGS if name in written]
    template = Template((Path(__file__).parent / "templates" / "dataset_card.md").read_text())
    return template.substitute(
        header=yaml.safe_dump(card_header(written), sort_keys=False, allow_unicode=True, width=120).rstrip(),
        configurations="\n".join(configurations), counts="\n".join(counts), load_examples="\n".join(loads),
        repo_id=repo_id, schemas="\n\n".join(schemas), hardware=_hardware_section(tables, meta),
        versions=_versions_section(meta, prov), pretrain_command=_pretrain_command(meta), top=top)


def read_card_header(folder) -> dict:
    """The YAML header of a dataset card (`README.md`); {} when there is none. A card that is not text or
    whose header is not YAML is a UserError naming it."""
    import yaml

    path = Path(folder) / "README.md"
    if not path.is_file():
        return {}
    fix = "write the folder again with `tlm dataset export --out DIR`"
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise UserError(f"{path}: binary data, not a dataset card ({fix})") from None
    if not text.startswith("---"):
        return {}
    end = text.find("\n---", 3)
    if end < 0:
        return {}
    try:
        header = yaml.safe_load(text[3:end])
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" at line {where.line + 2}" if where is not None else ""
        raise UserError(f"{path}: its YAML header does not parse{line} ({fix})") from None
    return header if isinstance(header, dict) else {}
