"""One training loop for pretraining and SFT: prompt-shared chunks, value-token loss, resumable.

A run writes into its output folder: the model in save_pretrained format (with the tokenizer),
`train_config.json` (the frozen TrainConfig), `log.jsonl` (loss curve and evaluations) and
`summary.json`. While it runs, `resume/state.pt` (model, optimizer, schedule, position in the
seeded data order) is saved every few minutes: run the same command again to go on from there.
"""

from __future__ import annotations

import json
import math
import pickle
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from tlm_core.errors import UserError, reason
from tlm_core.train.data import chunk_loss, make_chunks
from tlm_core.ui import log, progress


@dataclass(frozen=True)
class TrainConfig:
    stage: str  # "pretrain" | "sft"
    size: str  # model size (tlm_core.model.checkpoint.SIZES) when starting from scratch
    init: str = ""  # checkpoint folder to start from (SFT starts from the pretrained model)
    epochs: float = 1.0
    lr: float = 1e-3
    warmup_steps: int = 100
    weight_decay: float = 0.01
    seqs_per_chunk: int = 32  # decision sequences sharing one prompt pass
    tokens_per_step: int = 4096  # chunks are accumulated up to this many tokens per optimizer step
    eval_sentences: int = 1000  # held out of training (whole prompts), for the eval loss
    eval_every_steps: int = 250
    log_every_steps: int = 25
    save_every_s: float = 600.0
    seed: int = 0


def _split(df, n_eval: int, seed: int):
    """(train, eval): eval is whole prompt groups, so its prompts are unseen in training."""
    if n_eval <= 0 or len(df) < 4 * n_eval:
        return df, df.iloc[:0]
    rng = np.random.default_rng(seed)
    prompts = df.prompt.unique()
    rng.shuffle(prompts)
    sizes = df.groupby("prompt").size()
    chosen, total = [], 0
    for p in prompts:
        if total >= n_eval:
            break
        chosen.append(p)
        total += int(sizes[p])
    held = df.prompt.isin(set(chosen))
    return df[~held], df[held]


def _steps(chunks, tokens_per_step: int) -> list[list[int]]:
    """Chunk indices grouped into optimizer steps of about tokens_per_step tokens."""
    steps, cur, tok = [], [], 0
    for i, c in enumerate(chunks):
        cur.append(i)
        tok += c.tokens
        if tok >= tokens_per_step:
            steps.append(cur)
            cur, tok = [], 0
    if cur:
        steps.append(cur)
    return steps


@torch.no_grad()
def evaluate(model, chunks) -> float:
    """Mean value-token cross-entropy over the chunks."""
    model.eval()
    total, n = 0.0, 0
    for c in chunks:
        loss, k = chunk_loss(model, c, reduction="sum")
        total += float(loss)
        n += k
    model.train()
    return total / max(n, 1)


#: What a saved training state (resume/state.pt) holds.
RESUME_KEYS = frozenset({"config", "model", "optimizer", "scheduler", "step", "elapsed", "seen"})


def train(df, cfg: TrainConfig, out: str | Path, n_positions: int | None = None) -> dict:
    """Train on a table with `prompt` and `decisions` columns; returns the summary."""
    from tlm_core.model import checkpoint as M

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    if len(df) == 0:
        raise UserError("no training sentences")
    train_df, eval_df = _split(df, cfg.eval_sentences, cfg.seed)
    if cfg.init:
        model, _ = M.load(cfg.init)
        model.train()
    else:
        longest = int((df.prompt.str.count(" ") + df.decisions.str.count(" ") + 2).max())
        model = M.build(cfg.size, n_positions or M.context_length(longest))
    longest_now = int((df.prompt.str.count(" ") + df.decisions.str.count(" ") + 2).max())
    if longest_now > model.config.n_positions:
        raise UserError(f"a sentence has {longest_now} tokens, more than the model's {model.config.n_positions}")
    rng = np.random.default_rng(cfg.seed)
    epochs = max(1, math.ceil(cfg.epochs))
    chunks = [c for _ in range(epochs) for c in make_chunks(train_df, cfg.seqs_per_chunk, rng)]
    steps = _steps(chunks, cfg.tokens_per_step)
    steps = steps[:max(1, int(len(steps) * cfg.epochs / epochs))]
    eval_chunks = make_chunks(eval_df, cfg.seqs_per_chunk) if len(eval_df) else []

    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    total_steps = len(steps)

    def lr_at(step: int) -> float:  # linear warm-up, cosine decay to 10%
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        t = (step - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    state_path = out / "resume" / "state.pt"
    start_step, elapsed, seen = 0, 0.0, {"sentences": 0, "tokens": 0}
    if state_path.exists():
        fix = f"delete {out}/resume to start the run over, or use another --out"
        try:
            state = torch.load(state_path, weights_only=False)
        except (RuntimeError, EOFError, pickle.UnpicklingError, OSError) as err:  # torch: RuntimeError of a bad zip
            raise UserError(f"{state_path}: truncated or not a training state ({reason(err, 80)}) ({fix})") from None
        if not isinstance(state, dict) or not RESUME_KEYS <= state.keys():
            raise UserError(f"{state_path}: not a training state `tlm train` saved ({fix})")
        if state["config"] != asdict(cfg):
            raise UserError(f"{out} holds a run with other settings: use another --out or delete {out}/resume")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        start_step, elapsed, seen = state["step"], state["elapsed"], state["seen"]
        log(f"resuming {cfg.stage} at step {start_step} of {total_steps}")
    (out / "train_config.json").write_text(json.dumps({**asdict(cfg), "n_positions": model.config.n_positions,
                                                       "train_sentences": len(train_df),
                                                       "eval_sentences": len(eval_df)}, indent=2))
    logf = open(out / "log.jsonl", "a")  # noqa: SIM115 (appended to through the loop, closed after it)

    def save_state(step: int) -> None:
        state_path.parent.mkdir(exist_ok=True)
        tmp = state_path.with_suffix(".tmp")
        torch.save({"config": asdict(cfg), "model": model.state_dict(), "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(), "step": step, "elapsed": elapsed, "seen": seen}, tmp)
        tmp.replace(state_path)  # atomic: a stop while saving keeps the previous state

    model.train()
    t0, last_save = time.perf_counter() - elapsed, time.perf_counter()
    window: list[float] = []
    with progress(total=total_steps, initial=start_step, desc=cfg.stage, unit="step") as bar:
        for step in range(start_step, total_steps):
            idx = steps[step]
            n_values = sum(int(chunks[i].values[:, 1:].sum()) for i in idx)
            step_loss = 0.0
            for i in idx:  # the step's loss is the mean over all its value tokens
                loss, _ = chunk_loss(model, chunks[i], reduction="sum")
                (loss / max(n_values, 1)).backward()
                step_loss += float(loss.detach())
                seen["sentences"] += chunks[i].decisions.shape[0]
                seen["tokens"] += chunks[i].tokens
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            window.append(step_loss / max(n_values, 1))
            elapsed = time.perf_counter() - t0
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(window[-50:]):.3f}")
            if (step + 1) % cfg.log_every_steps == 0 or step + 1 == total_steps:
                recent = window[-cfg.log_every_steps:]
                logf.write(json.dumps({"step": step + 1, "loss": round(float(np.mean(recent)), 5),
                                       "lr": sched.get_last_lr()[0], "seconds": round(elapsed, 1), **seen}) + "\n")
                logf.flush()
            if eval_chunks and ((step + 1) % cfg.eval_every_steps == 0 or step + 1 == total_steps):
                ev = evaluate(model, eval_chunks)
                logf.write(json.dumps({"step": step + 1, "eval_loss": round(ev, 5), "seconds": round(elapsed, 1)}) + "\n")
                logf.flush()
            if time.perf_counter() - last_save > cfg.save_every_s:
                save_state(step + 1)
                last_save = time.perf_counter()
    logf.close()
    final_eval = evaluate(model, eval_chunks) if eval_chunks else None
    M.save(model, out)
    summary = {"stage": cfg.stage, "size": cfg.size, "init": cfg.init, "steps": total_steps,
               "train_sentences": len(train_df), "eval_sentences": len(eval_df),
               "sentences_seen": seen["sentences"], "tokens_seen": seen["tokens"],
               "final_train_loss": round(float(np.mean(window[-50:])), 5) if window else None,
               "final_eval_loss": None if final_eval is None else round(final_eval, 5),
               "seconds": round(elapsed, 1), "parameters": sum(p.numel() for p in model.parameters()),
               "n_positions": model.config.n_positions}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    save_state(total_steps)
    return summary
