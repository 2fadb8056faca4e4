"""Training batches that share their prompt: the prompt is encoded once, its decisions many times.

A sentence is a long prompt (subgraph, hardware, sketch: ~550 tokens on average) and short decisions
(~50 tokens). Every sentence of one (subgraph, sketch) has the same prompt, so a chunk is one prompt
and up to `seqs` decision sequences: the prompt runs once, its KV cache is repeated for the
decisions, and the gradient flows through both (the prompt still learns). Compared with whole
sentences padded to a length, this does ~10x less work and has no padding beyond the few tokens by
which decision sequences of one sketch differ. The loss is on decision *values* only: the prompt
and the header tokens are given at generation time, never predicted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from tlm_core.language.vocab import EOS, tokens

#: Tokens that open a decision header (or end the sentence): value tokens stop there.
HEADER_WORDS = frozenset({"tile", "categorical", "location", "parallel_ext", "vectorize_ext", EOS})


def value_mask(decision_tokens: list[str]) -> list[bool]:
    """True where a token is part of a decision's value (after ':' and before the next header)."""
    out, in_value = [], False
    for t in decision_tokens:
        if t in HEADER_WORDS:
            in_value = False
            out.append(False)
        elif t == ":":
            in_value = True
            out.append(False)
        else:
            out.append(in_value)
    return out


_IDS: dict[str, int] = {}


def ids(words: list[str]) -> list[int]:
    if not _IDS:
        _IDS.update({t: i for i, t in enumerate(tokens())})
    return [_IDS[w] for w in words]


@dataclass
class Chunk:
    """One prompt and decision sequences of it (right-padded), with the value mask."""

    prompt: torch.Tensor  # (P,) token ids
    decisions: torch.Tensor  # (B, D) token ids, padded with the pad id
    attention: torch.Tensor  # (B, D) 1 on real tokens
    values: torch.Tensor  # (B, D) True where the token is a value (loss is taken there)

    @property
    def tokens(self) -> int:
        return int(self.prompt.numel() + self.attention.sum())


def make_chunks(df, seqs: int, rng: np.random.Generator | None = None) -> list[Chunk]:
    """Chunks of rows (columns prompt, decisions) grouped by prompt, in a seeded random order."""
    from tlm_core.language.vocab import PAD

    pad = ids([PAD])[0]
    chunks = []
    for prompt, group in df.groupby("prompt", sort=True):
        p = torch.tensor(ids(prompt.split()), dtype=torch.long)
        rows = list(group.decisions)
        if rng is not None:
            rows = [rows[i] for i in rng.permutation(len(rows))]
        for i in range(0, len(rows), seqs):
            part = [r.split() for r in rows[i:i + seqs]]
            width = max(len(r) for r in part)
            dec = torch.full((len(part), width), pad, dtype=torch.long)
            att = torch.zeros((len(part), width), dtype=torch.long)
            val = torch.zeros((len(part), width), dtype=torch.bool)
            for j, r in enumerate(part):
                dec[j, :len(r)] = torch.tensor(ids(r))
                att[j, :len(r)] = 1
                val[j, :len(r)] = torch.tensor(value_mask(r))
            chunks.append(Chunk(p, dec, att, val))
    if rng is not None:
        chunks = [chunks[i] for i in rng.permutation(len(chunks))]
    return chunks


def chunk_loss(model, chunk: Chunk, reduction: str = "mean") -> tuple[torch.Tensor, int]:
    """Cross-entropy of the decision values given the prompt: (loss, number of value tokens).

    reduction="sum" gives the summed loss; "none" the per-sequence sums (B,) (log-likelihoods).
    """
    b, d = chunk.decisions.shape
    p = chunk.prompt.numel()
    out = model(chunk.prompt[None], use_cache=True, logits_to_keep=1)
    cache = out.past_key_values
    if b > 1:
        cache.batch_repeat_interleave(b)
    att = torch.cat([torch.ones((b, p), dtype=torch.long), chunk.attention], dim=1)
    pos = torch.arange(p, p + d)[None].expand(b, d)
    logits = model(chunk.decisions, past_key_values=cache, attention_mask=att, position_ids=pos,
                   use_cache=False).logits
    # Token t is predicted at t-1; the first decision token is a header word (never a value).
    target = chunk.decisions[:, 1:]
    mask = chunk.values[:, 1:]
    nll = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), target.reshape(-1),
                                            reduction="none").view(b, d - 1) * mask
    n = int(mask.sum())
    if reduction == "none":
        return nll.sum(dim=1), n
    if reduction == "sum":
        return nll.sum(), n
    return nll.sum() / max(n, 1), n


@torch.no_grad()
def mean_value_logprob(model, df) -> list[float]:
    """Per row (prompt, decisions): the mean log-probability of its decision values under the model."""
    out = []
    for _, row in df.iterrows():
        chunk = make_chunks(row.to_frame().T, seqs=1)[0]
        nll, n = chunk_loss(model, chunk, reduction="none")
        out.append(-float(nll[0]) / max(n, 1))
    return out
