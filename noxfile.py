"""Sessions: `nox -s tests` (default), `nox -s reproduce_table2`, `nox -s benchmarks`."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests"]
PYTHON = "3.11"


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The fast test tier (add `-- -m slow` for the slow tier)."""
    session.install("-e", ".[dev]")
    session.run("pytest", "tests", *session.posargs, env={"TLM_PROGRESS": "0"})


@nox.session(python=PYTHON)
def benchmarks(session: nox.Session) -> None:
    """Speed benchmarks (pytest-benchmark); JSON into results/benchmarks/."""
    session.install("-e", ".[dev]")
    session.run("pytest", "benchmarks", "-p", "no:cacheprovider", "--benchmark-json",
                "results/benchmarks/measure.json", *session.posargs)


@nox.session(python=PYTHON)
def reproduce_table2(session: nox.Session) -> None:
    """Table 2 (TLM vs Ansor-style search). Built so far: stage 1, task extraction of Table 1."""
    session.install("-e", ".")
    session.run("tlm", "workloads", "--split", "test")
    for name in ("resnet50", "mobilenet_v2", "resnext50", "bert_base", "bert_tiny", "gpt2", "densenet121",
                 "bert_large", "wide_resnet50", "resnet3d_18", "dcgan", "llama"):
        session.run("tlm", "tasks", name, silent=True)
    session.log(
        "Table 2 is NOT reproduced yet. Built: workloads, task extraction (above), the measurement "
        "harness. Missing: tensor language (issue 3), trained model (4), generator (5), methods (6), "
        "the table driver (7)."
    )


@nox.session(python=PYTHON)
def publish_dataset(session: nox.Session) -> None:
    """Export the data as a Hugging Face dataset and push it to the Hub (never a default session).

    `nox -s publish_dataset -- ORG/NAME [--revision R] [--private]`; the token comes from HF_TOKEN or
    `hf auth login`.
    """
    if not session.posargs or session.posargs[0].startswith("-"):
        session.error("give the Hub dataset id: nox -s publish_dataset -- ORG/NAME [--revision R] [--private]")
    repo_id, *push_args = session.posargs
    session.install("-e", ".")
    out = f"{session.create_tmp()}/dataset"
    session.run("tlm", "dataset", "export", "--out", out, "--repo-id", repo_id, env={"TLM_PROGRESS": "0"})
    session.run("tlm", "dataset", "push", out, "--repo-id", repo_id, *push_args)
