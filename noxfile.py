"""Sessions: `nox -s tests` (default), `nox -s lint`, `nox -s reproduce_table2` (and the other reproduce_*),
`nox -s figures`, `nox -s benchmarks`, `nox -s publish_dataset`."""

from __future__ import annotations

import tomllib

import nox

nox.options.sessions = ["tests"]
PYTHON = "3.11"


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The fast test tier (add `-- -m slow` for the slow tier)."""
    session.install("-e", ".[dev]")
    session.run("pytest", "tests", *session.posargs, env={"TLM_PROGRESS": "0"})


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff, and import-linter's layers (pyproject.toml): the stages import only downward, no cycle."""
    # The tools only (pinned in pyproject's `lint` extra): import-linter reads the source, it imports nothing.
    with open("pyproject.toml", "rb") as f:
        session.install(*tomllib.load(f)["project"]["optional-dependencies"]["lint"])
    session.run("ruff", "check", ".")
    session.run("lint-imports")


@nox.session(python=PYTHON)
def benchmarks(session: nox.Session) -> None:
    """Speed benchmarks (pytest-benchmark); JSON into results/benchmarks/."""
    session.install("-e", ".[dev]")
    # One JSON per benchmark file (bench_measure.py -> results/benchmarks/measure.json), so that
    # re-running one benchmark does not overwrite the others' figures.
    for name in ("measure", "generate"):
        session.run("pytest", f"benchmarks/bench_{name}.py", "-p", "no:cacheprovider", "--benchmark-json",
                    f"results/benchmarks/{name}.json", *session.posargs)


def _reproduce(session: nox.Session, artefact: str, plot: str | None = None) -> None:
    """One driver for every artefact: `python -m benchmarks.reproduce ARTEFACT --scale S`, then its figure."""
    session.install("-e", ".")
    session.run("python", "-m", "benchmarks.reproduce", artefact, *(session.posargs or ["--scale", "default"]))
    if plot:
        session.run("python", "-m", "figures.plot", plot)


@nox.session(python=PYTHON)
def reproduce_table2(session: nox.Session) -> None:
    """Table 2: TLM vs Ansor-style search on 23 subgraphs (`-- --scale smoke|default|full`)."""
    _reproduce(session, "table2", plot="tables")


@nox.session(python=PYTHON)
def reproduce_table3(session: nox.Session) -> None:
    """Table 3: TLM vs MetaSchedule on 40 subgraphs (`-- --scale smoke|default|full`)."""
    _reproduce(session, "table3", plot="tables")


@nox.session(python=PYTHON)
def reproduce_claims(session: nox.Session) -> None:
    """The 61x (compile time at equal performance) and 2.25x (vs Roller-style) claims -> results/claims.json."""
    _reproduce(session, "claims")


@nox.session(python=PYTHON)
def reproduce_figure9(session: nox.Session) -> None:
    """Figure 9: convergence of the demonstration data (the iterative runs' logs, one per CPU; measures nothing)."""
    session.install("-e", ".")
    session.run("python", "-m", "figures.plot", "figure9")


@nox.session(python=PYTHON)
def reproduce_figure10(session: nox.Session) -> None:
    """Figure 10: end-to-end latency, TLM vs MetaSchedule and Ansor-style (`-- --scale smoke|default|full`)."""
    _reproduce(session, "figure10", plot="figure10")


@nox.session(python=PYTHON)
def reproduce_figure13(session: nox.Session) -> None:
    """Figure 13: end-to-end latency, TLM vs PyTorch eager/inductor and TensorRT (`-- --scale ...`)."""
    _reproduce(session, "figure13", plot="figure13")


@nox.session(python=PYTHON)
def reproduce_methods(session: nox.Session) -> None:
    """Every method (untuned, random, Roller-style, MetaSchedule, Ansor-style, TLM, PyTorch, TensorRT) end to end."""
    _reproduce(session, "methods", plot="methods")


@nox.session(python=PYTHON)
def figures(session: nox.Session) -> None:
    """Re-plot every figure from results/ and data/ only (measures nothing)."""
    session.install("-e", ".")
    session.run("python", "-m", "figures.plot", "all")


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
