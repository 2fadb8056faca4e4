"""The tensor language model: a Hugging Face GPT-2 with the project's tokenizer.

Named sizes: `tiny` (tests, seconds), `small` (the shipped CPU model), `paper` (12 layers, 12 heads,
768 hidden, as the paper). The context length is not part of a size: it comes from the longest
sentence of the training data (`context_length`), and is saved in the checkpoint's config.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from tlm_core.errors import UserError
from tlm_core.paths import REPO_ROOT

#: The model shipped with the project, the default checkpoint. A model trained for another CPU ships
#: beside it as data/model-<mcpu> and is the default on that CPU (`shipped`).
SHIPPED = REPO_ROOT / "data" / "model"


def trained_for(folder: str | Path) -> dict | None:
    """The hardware (Hardware's JSON as a dict) a shipped model's demonstration data was measured on
    (a model of an iterative run: the run's target.json)."""
    path = Path(folder) / "training.json"
    if not path.exists():
        run = Path(folder).parent / "target.json"
        return json.loads(run.read_text()) if run.exists() else None
    facts = json.loads(path.read_text())
    # Shipped before cards named it: the machine that shipped it is the one its data was measured on.
    hw = facts.get("hardware") or facts.get("provenance", {}).get("target")
    return {k: v for k, v in hw.items() if k != "tvm"} if hw else None


def shipped(hardware=None) -> Path:
    """The shipped model for `hardware` (a Hardware; default this host): the data/model* folder whose
    data was measured on exactly that hardware, else data/model. The prompt names the hardware, and a
    model knows only the CPUs its data came from (results/archive/hardware-prompt-znver4/)."""
    if hardware is None:
        from tlm_core.ir.target import detect_host

        hardware = detect_host()
    want = json.loads(hardware.to_json())
    folders = [SHIPPED] + sorted(SHIPPED.parent.glob(SHIPPED.name + "-*"))
    return next((f for f in folders if trained_for(f) == want), SHIPPED)


def trained_elsewhere(folder: str | Path, hardware) -> str | None:
    """None when the model's demonstration data was measured on `hardware` (or it names none: a
    pretrained or test model), else where it was, in words: its prompts for `hardware` are new to it."""
    from tlm_core.ir.target import describe, other_than

    trained = trained_for(folder)
    other = other_than([trained], hardware) if trained else []
    if not other:
        return None
    return (f"trained on programs measured on {other[0]}; this machine is "
            f"{describe(json.loads(hardware.to_json()))}, which no prompt of its training named")


@dataclass(frozen=True)
class ModelSize:
    n_layer: int
    n_head: int
    n_embd: int


SIZES = {
    "tiny": ModelSize(n_layer=2, n_head=2, n_embd=64),
    # Sized for 200K pretraining sentences in <= 2 h on 2 CPU cores (measured: ~2,200 training tokens/s
    # with prompt-shared chunks; 192 hidden ran at ~930 tokens/s, 256 at ~700).
    "small": ModelSize(n_layer=4, n_head=4, n_embd=128),
    "paper": ModelSize(n_layer=12, n_head=12, n_embd=768),
}


def context_length(max_tokens: int) -> int:
    """Positions for sentences of up to `max_tokens` tokens, rounded up to a multiple of 128."""
    return int(math.ceil(max_tokens / 128) * 128)


def build(size: str, n_positions: int):
    """A freshly initialised GPT2LMHeadModel of a named size for the project's vocabulary."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from tlm_core.language.vocab import tokenizer

    if size not in SIZES:
        raise UserError(f"unknown model size {size!r}: choose one of {', '.join(SIZES)}")
    tok = tokenizer()
    config = GPT2Config(vocab_size=len(tok), n_positions=n_positions, **asdict(SIZES[size]),
                        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                        pad_token_id=tok.pad_token_id, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    config.tlm_size = size  # kept in config.json: which named size this is
    return GPT2LMHeadModel(config)


def save(model, folder: str | Path) -> None:
    """save_pretrained format: model.safetensors + config.json + the tokenizer."""
    from tlm_core.language.vocab import tokenizer

    model.save_pretrained(folder)
    tokenizer().save_pretrained(folder)


def load(folder: str | Path | None = None):
    """(model, tokenizer) of a checkpoint folder (default: the shipped model for this host), in eval mode."""
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    from tlm_core.language.vocab import tokens

    folder = Path(folder) if folder else shipped()
    if not (folder / "config.json").exists():
        hint = "train one with `tlm train pretrain`" if folder.parent == SHIPPED.parent else "give a folder written by `tlm train`"
        raise UserError(f"no model checkpoint in {folder}: {hint}")
    tok = PreTrainedTokenizerFast.from_pretrained(folder)
    if tuple(tok.convert_ids_to_tokens(list(range(len(tok))))) != tokens():
        raise UserError(f"the tokenizer in {folder} is not this version's tensor-language vocabulary")
    model = AutoModelForCausalLM.from_pretrained(folder)
    model.eval()
    return model, tok
