"""The training set never shows the model a test subgraph (slow tier: extracts all 38 workloads)."""

import pytest

from tlm_core.tasks import extract_tasks, held_out_hashes, training_tasks
from tlm_core.workloads.zoo import TEST, TRAIN


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
