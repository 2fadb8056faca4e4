"""Reproduce the paper's Tables 2 and 3, Figures 10 and 13 and its two claims: one driver, loops over the
specs of `benchmarks.tables`.

    python -m benchmarks.reproduce table2|table3|tables|claims|figure10|figure13|methods --scale smoke|default|full
    python -m benchmarks.reproduce search table2 --trials 1000   # extend the baseline's search log (resumable)
    python -m benchmarks.reproduce search table2 --trials 1000 --rpc HOST:PORT:KEY   # trials on RPC servers
    python -m benchmarks.reproduce select                        # re-draw data/tables/subgraphs.json
    python -m benchmarks.reproduce compare RUN_DIR...            # finished runs side by side (no measuring)
    python -m benchmarks.reproduce retabulate RUN_DIR...         # rewrite table.csv/md from subgraphs.csv

A table run (`tables`: both in one sitting) measures everything with one Measurer into one fresh record
store (.cache/reproduce/), side by side:
  1. TLM: per subgraph, the greedy program and then `max(tlm_times) - 1` samples of the shipped model
     (or $TLM_CHECKPOINT); TLM@k is the best of the first k distinct programs of that list. The samples
     come in turn over the sketches (`generate`), so the first k spread over the sketches as a run
     for k would; grouped by sketch, TLM@k < 64 missed the last sketches (the matmuls' fastest).
  2. The baseline (Ansor-style or MetaSchedule): its search log holds every trial in the order tried;
     the baseline at B trials is the best of the first B trials per subgraph. Its 3 fastest programs
     there (by the search's own timings) are measured again here, and the best of those is the cell's.
     At smoke/default scale the log comes from data/baselines/ (searched earlier by `search`, on the
     machine its search.json names: on another CPU the table says so); a column whose trials the log
     lacks is shown as missing.
  3. Roller-style's top `roller_budget` programs per subgraph, for the equal-compile-time claim.
  4. The finalists: the program each cell's method chose per subgraph (by the timings above) is timed
     RETIME more times, interleaved with the other finalists of its subgraph; the median is the cell's
     value (the minimum of many single timings is biased low, most for the method with most programs).
Outputs in ROOT/<table>/<scale>/ (ROOT: --out, default results/): table.csv (one row per cell),
subgraphs.csv (best latency per subgraph, method and budget), claims.json, table.md, provenance.json.
An end-to-end run (figure10, figure13, and `methods`: every method of the registry at one small budget)
tunes, compiles and benches each workload with each method: ROOT/<figure>/<scale>/e2e.csv and
provenance.json. `python -m figures.plot` draws them all.

The package, one module per job (each imports only those above it in this list):
  selection  the subgraphs of the tables (data/tables/subgraphs.json) and `select`, which draws them
  searchlog  the baseline's search log in data/baselines/: reading it, extending it (`search`), its pace
  metrics    a table's cells, speedups and claims from per-subgraph latencies (no measuring)
  render     table.csv, subgraphs.csv, table.md; `retabulate` and `compare` of finished runs
  sitting    the measuring: every method's candidates, winners and re-timing in one sitting
  e2e        the end-to-end figures (10, 13) and the `methods` comparison
  cli        `main`, the command line (`python -m benchmarks.reproduce`)
The names below are the package's public API.
"""

from __future__ import annotations

from benchmarks.reproduce.cli import main
from benchmarks.reproduce.e2e import run_e2e
from benchmarks.reproduce.metrics import cells, claims, speedup, weighted, write_claims
from benchmarks.reproduce.render import Sub, compare, markdown, retabulate, run_cells, write
from benchmarks.reproduce.searchlog import (
    RECORDS,
    SHIPPED,
    STALL_SECONDS,
    log_counts,
    log_dir,
    log_entries,
    log_info,
    log_machines,
    log_records,
    log_workloads,
    reached,
    search,
    search_child,
    search_pace,
    seconds_to,
    ship_log,
    trials_in_order,
    working_log,
)
from benchmarks.reproduce.selection import SUBGRAPHS, cmd_select, subgraphs
from benchmarks.reproduce.sitting import CURVE, REMEASURE, RETIME, checkpoint, run_tables, top, winners

__all__ = [
    "CURVE", "RECORDS", "REMEASURE", "RETIME", "SHIPPED", "STALL_SECONDS", "SUBGRAPHS", "Sub", "cells",
    "checkpoint", "claims", "cmd_select", "compare", "log_counts", "log_dir", "log_entries", "log_info",
    "log_machines", "log_records", "log_workloads", "main", "markdown", "reached", "retabulate", "run_cells",
    "run_e2e", "run_tables", "search", "search_child", "search_pace", "seconds_to", "ship_log", "speedup",
    "subgraphs", "top", "trials_in_order", "weighted", "winners", "working_log", "write", "write_claims",
]
