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
from tlm_core.hub import CONFIGS
from tlm_core.hub.card import card, read_card_header
from tlm_core.paths import REPO_ROOT
from tlm_core.ui import log

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
#: The columns of the pretraining data (`tlm sample`) that the export and its card read.
PRETRAIN_COLUMNS = ("workload", "task_hash", *TRAIN_COLUMNS)

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
    from tlm_core.train.demonstrations import read_parquet

    path = Path(source)
    if not path.is_file():
        raise UserError(f"--pretrain {path}: no such file (make one with `tlm sample`, or give --no-pretrain)")
    df = read_parquet(path, "a table of sentences", "give the parquet `tlm sample` wrote, or --no-pretrain",
                      required=PRETRAIN_COLUMNS)
    return df, {"file": _rel(path), "provenance": _sidecar(path)}


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


def _card_configs(folder: Path) -> dict[str, list[str]]:
    """Config name -> its data_files patterns, from the card of a local export; a UserError naming the card
    when its configs are not a list of {config_name, data_files}."""
    card_path = folder / "README.md"
    configs = read_card_header(folder).get("configs")
    out: dict[str, list[str]] = {}
    for c in configs if isinstance(configs, list) else [None]:
        files = c.get("data_files") if isinstance(c, dict) else None
        files = [files] if isinstance(files, (str, dict)) else files
        paths = [f if isinstance(f, str) else f.get("path") if isinstance(f, dict) else None for f in files or [None]]
        if not isinstance(c.get("config_name") if isinstance(c, dict) else None, str) or not all(
                isinstance(x, str) for x in paths):
            raise UserError(f"{card_path}: its configs are not a list of {{config_name, data_files}} (write the folder "
                            "again with `tlm dataset export --out DIR`)")
        out[c["config_name"]] = paths
    return out


def check_files(folder: Path, names=None) -> None:
    """Each data file of the export's configs `names` (default: all) is there and is parquet with the
    columns the card says; else a UserError naming the file (before anything is loaded or uploaded)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tlm_core.train.demonstrations import arrow_reason

    fix = "write the folder again with `tlm dataset export --out DIR`"
    configs = _card_configs(folder)
    infos = read_card_header(folder).get("dataset_info")
    columns = {i.get("config_name"): [f.get("name") for f in i.get("features") or [] if isinstance(f, dict)]
               for i in infos if isinstance(i, dict)} if isinstance(infos, list) else {}
    for name in names or configs:
        for pattern in configs.get(name, []):
            files = sorted(folder.glob(pattern))
            if not files:
                raise UserError(f"{folder / pattern}: no such file: config {name!r} of the card has no data ({fix})")
            for path in files:
                if not path.is_file():
                    raise UserError(f"{path}: a folder, not a parquet file ({fix})")
                try:
                    schema = pq.read_schema(path)
                except (pa.ArrowException, OSError) as err:
                    raise UserError(f"{path}: truncated or not a parquet file ({arrow_reason(err)}) ({fix})") from None
                want = columns.get(name)
                if want and list(schema.names) != want:
                    missing = [c for c in want if c not in schema.names]
                    extra = [c for c in schema.names if c not in want]
                    diff = "; ".join(f"{what} {', '.join(map(str, cs[:5]))}{', ...' if len(cs) > 5 else ''}"
                                     for what, cs in (("no column", missing), ("columns not in the card", extra)) if cs)
                    raise UserError(f"{path}: not the table the card says config {name!r} holds "
                                    f"({diff or 'columns in another order'}) ({fix})")


def push(folder, repo_id: str, revision: str | None = None, private: bool = False) -> dict:
    """Upload an exported folder to the Hub dataset `repo_id` (created if missing; revision = branch)."""
    from huggingface_hub import HfApi

    folder = Path(folder)
    if not (folder / "README.md").is_file() or not read_card_header(folder).get("configs"):
        raise UserError(f"{folder}: not an exported dataset folder (make one with `tlm dataset export --out DIR`)")
    check_files(folder)
    if not REPO_ID.match(repo_id):
        raise UserError(f"--repo-id {repo_id!r}: expected ORG/NAME")
    token = _token()
    if not token:
        raise UserError("no Hugging Face token: set HF_TOKEN or run `hf auth login`")
    log(f"pushing {folder} to https://huggingface.co/datasets/{repo_id} ...")  # once the folder checks out
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
        check_files(path)
        return list(_card_configs(path))
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
        check_files(path, [config])
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
