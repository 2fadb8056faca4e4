"""Training: value-token loss, prompt-shared chunks equal whole sentences, resumable runs, no leakage."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from tlm_core.model import checkpoint as M
from tlm_core.paths import REPO_ROOT
from tlm_core.train.data import chunk_loss, ids, make_chunks, value_mask

PRETRAIN = REPO_ROOT / "data" / "pretrain" / "sentences.parquet"
DEMOS = REPO_ROOT / "data" / "demonstrations" / "records.parquet"


def _sample(n: int, seed: int = 0) -> pd.DataFrame:
    df = pd.read_parquet(PRETRAIN, columns=["task_hash", "prompt", "decisions"])
    # whole prompt groups, so chunks hold several sequences
    groups = df.prompt.drop_duplicates().sample(n=n, random_state=seed)
    return df[df.prompt.isin(set(groups))].groupby("prompt").head(6)


def test_value_mask_marks_exactly_the_values():
    toks = "tile n 2 ext 64 limit 64 : 16 4 categorical of 2 0 16 : 1 location : root_loc " \
           "parallel_ext limit 32 : <num> d1 d0 d2 d4 </num> <eos>".split()
    got = [t for t, m in zip(toks, value_mask(toks)) if m]
    assert got == ["16", "4", "1", "root_loc", "<num>", "d1", "d0", "d2", "d4", "</num>"]


def test_prompt_shared_chunks_give_the_loss_of_whole_sentences():
    torch.manual_seed(0)
    model = M.build("tiny", 3072).eval()
    chunk = max(make_chunks(_sample(3), seqs=4), key=lambda c: c.decisions.shape[0])
    assert chunk.decisions.shape[0] > 1  # a real shared-prefix batch, padding included
    with torch.no_grad():
        shared, _ = chunk_loss(model, chunk, reduction="none")
        p = chunk.prompt.numel()
        for j in range(chunk.decisions.shape[0]):
            n = int(chunk.attention[j].sum())
            seq = torch.cat([chunk.prompt, chunk.decisions[j, :n]])
            logits = model(seq[None]).logits[0]
            nll = torch.nn.functional.cross_entropy(logits[p:-1], seq[p + 1:], reduction="none")
            whole = float((nll * chunk.values[j, 1:n]).sum())
            assert abs(float(shared[j]) - whole) < 1e-4 * max(1.0, abs(whole))


def test_tiny_pretraining_learns_saves_loads_and_resumes(tmp_path):
    from transformers import AutoModelForCausalLM

    from tlm_core.train.trainer import TrainConfig, train

    df = _sample(12)
    cfg = TrainConfig(stage="pretrain", size="tiny", epochs=4, lr=3e-3, warmup_steps=5, tokens_per_step=2048,
                      eval_sentences=0, log_every_steps=1)
    summary = train(df, cfg, tmp_path)
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if "loss" in r]
    assert losses[-1] < 0.8 * losses[0], losses
    assert summary["sentences_seen"] == 4 * len(df)
    # the longest sentence decides the context length
    longest = int((df.prompt.str.count(" ") + df.decisions.str.count(" ") + 2).max())
    assert summary["n_positions"] == M.context_length(longest) >= longest
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert sum(p.numel() for p in loaded.parameters()) == summary["parameters"]
    # the same command again resumes from the saved state: nothing left to do, same weights
    before = {k: v.clone() for k, v in loaded.state_dict().items()}
    again = train(df, cfg, tmp_path)
    assert again["steps"] == summary["steps"]
    after = AutoModelForCausalLM.from_pretrained(tmp_path).state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_a_changed_config_does_not_resume_silently(tmp_path):
    from tlm_core.errors import UserError
    from tlm_core.train.trainer import TrainConfig, train

    df = _sample(2)
    train(df, TrainConfig(stage="pretrain", size="tiny", epochs=1, eval_sentences=0), tmp_path)
    with pytest.raises(UserError, match="other settings"):
        train(df, TrainConfig(stage="pretrain", size="tiny", epochs=2, eval_sentences=0), tmp_path)


def test_no_test_subgraph_in_any_training_data(host):
    from tlm_core.ir.tasks import held_out_hashes

    held = held_out_hashes(host)
    assert len(held) > 400
    pre = set(pd.read_parquet(PRETRAIN, columns=["task_hash"]).task_hash)
    assert pre and not pre & held
    if DEMOS.exists():
        demo = set(pd.read_parquet(DEMOS, columns=["task_hash"]).task_hash)
        assert demo and not demo & held


def test_ids_match_the_tokenizer():
    from tlm_core.language.vocab import tokenizer

    words = "<bos> tile n 4 ext 1000 limit 64 : <num> d1 d0 d2 d4 </num> <eos>".split()
    assert ids(words) == tokenizer().convert_tokens_to_ids(words)
    assert np.all(np.array(ids(words)) < len(tokenizer()))


def test_model_card_tells_the_shipped_models_own_history(tmp_path, host):
    """Shipping model-1 of a run that went on to model-2 lists only the SFT rounds and convergence points
    that made model-1, counts only the records timed on the run's CPU (the store holds another's too),
    and counts the records timed on older measurement inputs apart."""
    import dataclasses

    import pandas as pd

    from tlm_core.train import card

    it, pre = tmp_path / "iterate", tmp_path / "pretrain"
    for d, loss in ((pre, 1.3), (it / "model-0", 1.2), (it / "model-1", 1.1), (it / "model-2", 1.0)):
        d.mkdir(parents=True)
        (d / "summary.json").write_text(json.dumps({"steps": 10, "final_train_loss": loss, "seconds": 60}))
        (d / "model.safetensors").write_bytes(b"0" * 1024)
    (it / "target.json").write_text(host.hardware.to_json())
    other = dataclasses.replace(host.hardware, mcpu="othercpu").to_json()
    records = pd.DataFrame({"status": ["ok", "ok", "error", "ok"], "task_hash": ["a", "a", "b", "c"],
                            "stale": [True, False, False, False], "target": [host.hardware.to_json()] * 3 + [other]})
    facts = card.ship(it / "model-1", tmp_path / "shipped", pre, None, records, host)  # no run: all of this CPU's
    assert facts["measured_programs"] == 3 and facts["hardware"] == json.loads(host.hardware.to_json())
    (it / "convergence.jsonl").write_text("".join(json.dumps(
        {"round": r, "model": "m", "programs": n, "ok": n - 1, "weighted_latency_s": 1.0 / (r + 1)}) + "\n"
        for r, n in ((0, 1), (1, 2), (2, 3))))
    for r, seconds in ((1, 1800), (2, 3600)):  # each round's measuring wall time
        (it / f"round-{r}.measured").write_text(json.dumps({"candidates": 1, "invalid": 0, "seconds": seconds}))
    facts = card.ship(it / "model-1", tmp_path / "shipped", pre, it, records, host)
    assert [r["model"] for r in facts["sft_rounds"]] == ["model-0", "model-1"]
    assert [c["round"] for c in facts["convergence"]] == [0, 1]
    text = (tmp_path / "shipped" / "README.md").read_text()
    assert "SFT model-1" in text and "SFT model-2" not in text
    assert "| measuring (generate, build, run) | 0.5 h," in text  # round 1 only: round 2 came after
    assert "| total training time | 0.05 h: pretraining 0.02 h, SFT 0.03 h |" in text
    # What model-1 saw: round 1's point (2 programs), not the 3 records measured by the time of shipping.
    assert "2 measured programs (1 valid) of 2 training subgraphs; 1 of them timed on older" in text
    assert f"| measured on | 2 programs on {host.hardware.mcpu} (" in text  # the CPU its prompts named
    card.refresh(tmp_path / "shipped")  # rebuilt from training.json alone: the same card
    assert (tmp_path / "shipped" / "README.md").read_text() == text


def test_the_default_model_is_the_one_shipped_for_this_cpu(tmp_path, host, monkeypatch, capsys):
    """data/model-<mcpu> is the default on the exact hardware its data was measured on; data/model
    elsewhere (and for a model shipped before cards named their hardware, its shipping machine)."""
    import dataclasses

    from tlm_core.model import checkpoint as M

    monkeypatch.setattr(M, "SHIPPED", tmp_path / "model")
    other = dataclasses.replace(host.hardware, mcpu="othercpu", simd_bits=512)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "training.json").write_text(json.dumps({"provenance": {
        "target": {**json.loads(other.to_json()), "tvm": {"kind": "llvm"}}}}))
    assert M.shipped(host.hardware) == tmp_path / "model"  # nothing for this CPU: the default
    assert M.shipped(other) == tmp_path / "model"
    mine = tmp_path / f"model-{host.hardware.mcpu}"
    mine.mkdir()
    (mine / "training.json").write_text(json.dumps({"hardware": json.loads(host.hardware.to_json())}))
    assert M.shipped(host.hardware) == mine and M.shipped(other) == tmp_path / "model"
    near = dataclasses.replace(host.hardware, num_cores=host.hardware.num_cores + 1)
    assert M.shipped(near) == tmp_path / "model"  # the prompt names the cores too: exact hardware only
    # Shipping never replaces another CPU's model: one line that says where this one goes.
    from tlm_core.cli import main

    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.safetensors").write_bytes(b"0")
    assert main(["train", "ship", "--model", str(tmp_path / "m"), "--pretrain", str(tmp_path / "m"),
                 "--to", str(tmp_path / "model")]) == 2
    err = capsys.readouterr().err
    assert "holds the model for othercpu" in err and f"--to data/model-{host.hardware.mcpu}" in err
    assert "Traceback" not in err and (tmp_path / "model" / "training.json").read_text().count("othercpu") == 1


def test_one_model_for_every_cpu_ships_with_each_cpus_programs_and_replaces_a_model_of_one(tmp_path, host):
    """An SFT run on two CPUs' records (hardware.json, written by `tlm train sft`) ships as a model of
    both: its card counts each CPU's programs, it is trained elsewhere on neither, and it may replace a
    model of one of them but not a model of a third CPU."""
    import dataclasses

    from tlm_core.errors import UserError
    from tlm_core.train import card, demonstrations

    other = dataclasses.replace(host.hardware, mcpu="othercpu")
    third = dataclasses.replace(host.hardware, mcpu="thirdcpu")
    records = pd.DataFrame({"status": ["ok", "ok", "error", "ok"], "task_hash": ["a", "a", "b", "c"],
                            "target": [host.hardware.to_json()] * 2 + [other.to_json()] * 2})
    assert [h["mcpu"] for h in demonstrations.cpus_of(records)] == sorted([host.hardware.mcpu, "othercpu"])
    assert demonstrations.without_cpu(records, "othercpu").target.tolist() == [host.hardware.to_json()] * 2
    assert demonstrations.on_cpu(records, "othercpu").target.tolist() == [other.to_json()] * 2
    with pytest.raises(UserError, match="no record was measured on it; the records' CPUs are"):
        demonstrations.without_cpu(records, "nocpu")
    with pytest.raises(UserError, match="--cpu nocpu: no record was measured on it"):
        demonstrations.on_cpu(records, "nocpu")
    sft, pre = tmp_path / "sft", tmp_path / "pretrain"
    for d in (sft, pre):
        d.mkdir()
        (d / "model.safetensors").write_bytes(b"0" * 1024)
    (pre / "summary.json").write_text(json.dumps({"steps": 10, "seconds": 3600}))
    (sft / "summary.json").write_text(json.dumps({"stage": "sft", "steps": 5, "seconds": 1800,
                                                  "train_sentences": 3, "final_train_loss": 1.0}))
    (sft / M.TRAINED_ON).write_text(json.dumps(demonstrations.cpus_of(records)))
    assert M.trained_elsewhere(sft, host.hardware) is None and M.trained_elsewhere(sft, other) is None
    assert "othercpu" in M.trained_elsewhere(sft, third) and host.hardware.mcpu in M.trained_elsewhere(sft, third)
    facts = card.ship(sft, tmp_path / "model", pre, None, records, host)
    # A second SFT run from the shipped model: its card carries the shipped model's rounds, then its own.
    sft2 = tmp_path / "sft2"
    sft2.mkdir()
    (sft2 / "model.safetensors").write_bytes(b"1" * 1024)
    (sft2 / "summary.json").write_text(json.dumps({"stage": "sft", "init": str(sft), "steps": 2, "seconds": 360}))
    sft3 = tmp_path / "sft3"
    sft3.mkdir()
    (sft3 / "summary.json").write_text(json.dumps({"stage": "sft", "init": str(sft2), "steps": 1, "seconds": 180}))
    assert [r["model"] for r in card.sft_history(sft3)] == ["sft", "sft2", "sft3"]
    (sft2 / "summary.json").write_text(json.dumps({"stage": "sft", "init": str(tmp_path / "model"), "steps": 2,
                                                   "seconds": 360}))
    history = card.sft_history(sft3)
    assert [r["model"] for r in history] == [f"{(tmp_path / 'model').as_posix()} sft", "sft2", "sft3"]
    assert [r["steps"] for r in history] == [5, 2, 1]
    assert [h["mcpu"] for h in facts["hardware"]] == [h["mcpu"] for h in demonstrations.cpus_of(records)]
    assert sorted(m["programs"] for m in facts["measured_on"]) == [2, 2] and facts["measured_programs"] == 4
    assert [r["model"] for r in facts["sft_rounds"]] == ["sft"] and facts["training_hours"] == 1.5
    text = (tmp_path / "model" / "README.md").read_text()
    assert text.startswith("---") and "model for the 2 CPUs its demonstration data" in text
    assert M.trained_on(tmp_path / "model") == demonstrations.cpus_of(records)
    # Shipping it: over a model of one of its CPUs, yes; over a model of a CPU it was not tuned on, no.
    from tlm_core.cli import main

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "training.json").write_text(json.dumps({"hardware": json.loads(host.hardware.to_json())}))
    assert not [h for h in M.trained_on(mine) if h not in card.hardware_of(None, host, sft)]
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "training.json").write_text(json.dumps({"hardware": json.loads(third.to_json())}))
    assert main(["train", "ship", "--model", str(sft), "--pretrain", str(pre), "--to", str(theirs)]) == 2


@pytest.mark.parametrize("folder", sorted((REPO_ROOT / "data").glob("model*")), ids=lambda p: p.name)
def test_a_shipped_model_is_its_runs_model_and_its_card_is_its_runs_facts(folder, monkeypatch):
    """Every shipped model (data/model, data/model-<mcpu>) loads with transformers, holds the weights of
    the run's model it names, and its card's numbers are that run's: the programs an iterative run's
    model saw are the run's convergence point for its round; an SFT run's (a model of every CPU)
    are the records of the CPUs it was tuned on, each counted; the card is rebuilt from training.json alone."""
    from transformers import AutoModelForCausalLM

    from tlm_core.train import card, demonstrations
    from tlm_core.train.iterate import read_convergence

    monkeypatch.chdir(REPO_ROOT)  # runs name their --init relative to the repository, where they ran
    facts = json.loads((folder / "training.json").read_text())
    made_by = REPO_ROOT / facts["model_dir"]
    assert (folder / "model.safetensors").read_bytes() == (made_by / "model.safetensors").read_bytes()
    loaded = AutoModelForCausalLM.from_pretrained(folder)
    assert loaded.num_parameters() == facts["pretrain"]["parameters"]
    if (made_by.parent / "convergence.jsonl").exists():  # a model of an iterative run
        round_ = int(made_by.name.split("-")[1])
        point = next(c for c in read_convergence(made_by.parent / "convergence.jsonl") if c["round"] == round_)
        assert facts["measured_programs"] == point["programs"]
    else:  # SFT runs: one on the records of several CPUs, or a CPU's chain from a shipped model
        assert facts["sft_rounds"] == card.sft_history(made_by)
        assert facts["sft_rounds"][-1] == {"model": made_by.name, **json.loads((made_by / "summary.json").read_text())}
        assert M.trained_on(folder) == M.trained_on(made_by)
        assert len(M.trained_on(folder)) > 1 if folder.name == "model" else len(M.trained_on(folder)) == 1
        # A MetaSchedule-taught model's search records sit beside its run, next to the export.
        searched = sorted(made_by.parent.glob("records-*.parquet"))
        records = demonstrations.load_records([demonstrations.EXPORT, *searched])
        # The export grows after a model ships (later rounds append): the card counts what was there then.
        records = records[records.measured_at <= facts["provenance"]["date"]]
        counts = [int((records.target == json.dumps(m["hardware"], sort_keys=True)).sum()) for m in facts["measured_on"]]
        assert [m["programs"] for m in facts["measured_on"]] == counts and all(counts)
        assert facts["measured_programs"] == sum(counts)
    assert (folder / "README.md").read_text() == card._card(facts)
    if folder.name != "model":  # a CPU's own model is the default exactly there
        run_cpu = made_by.parent / "target.json"
        want = [json.loads(run_cpu.read_text())] if run_cpu.exists() else M.trained_on(made_by)
        assert M.trained_on(folder) == want and len(want) == 1


def test_sft_takes_a_searchs_demonstrations_beside_the_export():
    """`tlm train sft --records EXPORT SEARCH.parquet` (how the MetaSchedule-taught Intel models were
    fed): one table, each record once, and a searched program is the demonstration of its subgraph
    wherever the search beat every measured program there."""
    from tlm_core.train import demonstrations as D

    searched = REPO_ROOT / "data" / "training" / "ms-dense-rocketlake" / "records-metaschedule.parquet"
    export, ms = D.load_records(D.EXPORT), D.load_records(searched)
    both = D.load_records([D.EXPORT, searched, searched])
    assert len(both) == len(set(export.key) | set(ms.key)) and both.key.is_unique
    on = ms.target.iloc[0]  # the searched CPU's records: latencies of two machines do not compare
    best = D.best_programs(both[both.target == on], 1).set_index("task_hash")
    won = D.best_programs(ms, 1).set_index("task_hash").latency_s
    before = D.best_programs(export[export.target == on], 1).set_index("task_hash").latency_s
    beaten = [t for t in won.index if t not in before or won[t] < before[t]]
    assert beaten and all(best.loc[t, "method"] == "metaschedule" for t in beaten)
    assert (best.latency_s <= before.reindex(best.index).fillna(float("inf"))).all()
