"""The `tlm` command. `--json` prints one JSON document on stdout; progress and logs go to stderr.

One file per command group, each with `register(subparsers)`. Only this package parses arguments:
the stages below it are plain functions.
"""

from __future__ import annotations

import argparse
import sys

from tlm_core.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    from tlm_core.cli import dataset, e2e, generate, language, profile, train, zoo

    parser = argparse.ArgumentParser(prog="tlm", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (zoo, language, train, generate, dataset, e2e, profile):
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `tlm` console script."""
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except UserError as err:
        print(f"tlm: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `tlm ... | head`: the reader left, nothing is wrong
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("tlm: interrupted (measured records are kept; run again to resume)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
