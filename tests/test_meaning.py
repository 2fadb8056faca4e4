"""The test of meaning of training: SFT on fast programs makes fast programs more likely.

A tiny model trained for a few hundred steps on the fastest measured programs of the training
subgraphs (the validation 5% held out) must put more probability on the fastest measured program
of each held-out subgraph than on the slower programs measured for the same subgraph and sketch.
"""

from __future__ import annotations

import numpy as np
import pytest

from tlm_core.paths import REPO_ROOT

DEMOS = REPO_ROOT / "data" / "demonstrations" / "records.parquet"


@pytest.mark.slow
@pytest.mark.skipif(not DEMOS.exists(), reason="needs the committed demonstration data (tlm train collect)")
def test_sft_prefers_measured_fast_programs_on_held_out_subgraphs(tmp_path):
    import pandas as pd

    from tlm_core.model import checkpoint as M
    from tlm_core.train.data import mean_value_logprob
    from tlm_core.train.demonstrations import best_programs
    from tlm_core.train.trainer import TrainConfig, train

    df = pd.read_parquet(DEMOS)
    train_df = best_programs(df, 1)
    cfg = TrainConfig(stage="sft", size="tiny", epochs=1, lr=3e-3, warmup_steps=20, tokens_per_step=1500,
                      eval_sentences=0, seed=0)
    summary = train(train_df, cfg, tmp_path)
    assert 200 <= summary["steps"]
    model, _ = M.load(tmp_path)
    ok = df[(df.status == "ok") & df.validation]
    wins, margins = [], []
    for _, group in ok.groupby(["task_hash", "sketch"]):
        if len(group) < 2 or group.latency_s.min() * 1.2 > group.latency_s.max():
            continue  # nothing to tell apart
        group = group.sort_values("latency_s")
        lp = mean_value_logprob(model, group)
        margins.append(lp[0] - float(np.mean(lp[1:])))
        wins.append(lp[0] > float(np.mean(lp[1:])))
    assert len(margins) >= 10, f"only {len(margins)} held-out (subgraph, sketch) groups to compare"
    print(f"held-out groups {len(margins)}, fastest more likely in {np.mean(wins):.0%}, "
          f"mean margin {np.mean(margins):.3f} nats per value token")
    assert np.mean(margins) > 0 and np.mean(wins) > 0.5
