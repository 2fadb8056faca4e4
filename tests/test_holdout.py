"""The training set never shows the model a test subgraph (slow tier: extracts all 38 workloads)."""

import pytest

from tlm_core.ir.tasks import extract_tasks, held_out_hashes, training_tasks
from tlm_core.ir.workloads.zoo import TEST, TRAIN


@pytest.mark.slow
def test_every_test_workload_extracts(host):
    for w in TEST:
        tasks = extract_tasks(w, host)
        assert tasks and all(t.weight >= 1 for t in tasks), w.name


@pytest.mark.slow
def test_training_tasks_are_disjoint_from_test_tasks(host):
    held_out = held_out_hashes(host)
    kept = dropped = 0
    for w in TRAIN:
        raw = extract_tasks(w, host)
        train = training_tasks(w, host, held_out)
        assert not {t.hash for t in train} & held_out
        kept += len(train)
        dropped += len(raw) - len(train)
    # Other shapes make most subgraphs new: the hold-out must not be what makes the sets disjoint.
    assert kept >= 10 * dropped, (kept, dropped)


@pytest.mark.slow
def test_sampled_training_sentences_hold_the_test_set_out(host, tmp_path):
    import subprocess
    import sys

    import pandas as pd

    out = tmp_path / "train.parquet"
    run = subprocess.run([sys.executable, "-m", "tlm_core.cli", "sample", "t_resnet101_b1_256", "-n", "200",
                          "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr
    hashes = set(pd.read_parquet(out).task_hash)
    assert hashes and not hashes & held_out_hashes(host)
    assert "held out" in run.stderr  # this workload does share its batch-1 classifier head
