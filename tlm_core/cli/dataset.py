"""`tlm dataset export|push|load`: the data as a Hugging Face dataset."""

from __future__ import annotations

from tlm_core.cli.args import add_json, report
from tlm_core.hub.dataset import CONFIGS, DEFAULT_PRETRAIN, configs_of, export, load, push
from tlm_core.ui import emit_json


def cmd_export(args) -> None:
    summary = export(args.out, pretrain=None if args.no_pretrain else args.pretrain,
                     records=False if args.no_records else args.records, top=args.top, repo_id=args.repo_id)
    report(summary, args)


def cmd_push(args) -> None:
    out = push(args.folder, args.repo_id, revision=args.revision, private=args.private)
    report(out, args)


def cmd_load(args) -> None:
    names = [args.config] if args.config else configs_of(args.source, args.revision)
    out = {"source": args.source, "revision": args.revision, "configs": {}}
    for name in names:
        ds = load(args.source, name, args.revision)
        out["configs"][name] = {"rows": ds.num_rows, "columns": list(ds.column_names)}
    if args.json:
        emit_json(out)
        return
    for name, c in out["configs"].items():
        print(f"{name:<16} {c['rows']:>9,} rows  {', '.join(c['columns'])}")


def register(subparsers) -> None:
    """`tlm dataset export|push|load`: the data as a Hugging Face dataset."""
    p = subparsers.add_parser("dataset", help="the data as a Hugging Face dataset: export, push to the Hub, load")
    dsub = p.add_subparsers(dest="dataset_command", required=True)

    q = dsub.add_parser("export", help="write pretrain/measured/demonstrations as parquet + a dataset card")
    q.add_argument("--out", required=True, metavar="DIR", help="output folder (new, empty, or a previous export)")
    q.add_argument("--pretrain", default=str(DEFAULT_PRETRAIN), metavar="FILE.parquet",
                   help="random sentences written by `tlm sample`")
    q.add_argument("--records", metavar="FILE_OR_STORE",
                   help="measured records: exported parquet or record-store folder "
                        "(default: data/demonstrations/records.parquet, else the store)")
    q.add_argument("--top", type=int, default=2, help="demonstrations: fastest programs per subgraph")
    q.add_argument("--repo-id", metavar="ORG/NAME", help="Hub id the card's loading examples name")
    q.add_argument("--no-pretrain", action="store_true", help="leave the pretrain config out")
    q.add_argument("--no-records", action="store_true", help="leave measured and demonstrations out")
    add_json(q)
    q.set_defaults(func=cmd_export)

    q = dsub.add_parser("push", help="upload an exported folder to a Hugging Face dataset repository")
    q.add_argument("folder", metavar="DIR", help="folder written by `tlm dataset export`")
    q.add_argument("--repo-id", required=True, metavar="ORG/NAME", help="dataset repository (created if missing)")
    q.add_argument("--revision", help="branch to push to (created if missing; default main)")
    q.add_argument("--private", action="store_true", help="create the repository private")
    add_json(q)
    q.set_defaults(func=cmd_push)

    q = dsub.add_parser("load", help="load a local export or Hub dataset; print rows and columns")
    q.add_argument("source", help="folder written by `tlm dataset export`, or a Hub id ORG/NAME")
    q.add_argument("--config", choices=CONFIGS, help="one configuration (default: all)")
    q.add_argument("--revision", help="Hub revision: branch, tag or commit (pin it for reproducible training)")
    add_json(q)
    q.set_defaults(func=cmd_load)
