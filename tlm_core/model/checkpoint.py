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

from tlm_core.errors import UserError, read_json, reason
from tlm_core.paths import REPO_ROOT

#: The model shipped with the project, the default checkpoint. A model trained for another CPU ships
#: beside it as data/model-<mcpu> and is the default on that CPU (`shipped`).
SHIPPED = REPO_ROOT / "data" / "model"


#: Written by `tlm train sft` beside the model: the hardware of every CPU whose programs it was tuned on.
TRAINED_ON = "hardware.json"


def trained_on(folder: str | Path) -> list[dict]:
    """The hardware (Hardware's JSON as dicts, "tvm" key dropped) of every CPU whose measured programs
    taught the model: a shipped model's card facts (one CPU, or several for a model of every CPU), an
    SFT run's hardware.json, an iterative run's target.json; [] when it names none (pretrained, test)."""
    folder = Path(folder)
    path = folder / "training.json"
    if path.exists():
        hint = f"the model card's facts, written by `tlm train ship`: {_fix(folder)}"
        facts = read_json(path, hint)
        # Shipped before cards named it: the machine that shipped it is the one its data was measured on.
        prov = facts.get("provenance")
        hw = facts.get("hardware") or (prov.get("target") if isinstance(prov, dict) else None)
        found, fix = (hw if isinstance(hw, list) else [hw] if hw else []), hint
    elif (folder / TRAINED_ON).exists():
        path, fix = folder / TRAINED_ON, "written by `tlm train sft`: run it again to rewrite it"
        found = read_json(path, fix, list)
    elif (folder.parent / "target.json").exists():
        path = folder.parent / "target.json"
        fix = "the hardware of the run, written by `tlm train iterate`: restore it, or remove it if this folder is not an iterative run's"
        found = [read_json(path, fix)]
    else:
        return []
    if not all(isinstance(h, dict) for h in found):
        raise UserError(f"{path}: its hardware is not a hardware description (an object) ({fix})")
    return [{k: v for k, v in h.items() if k != "tvm"} for h in found]


def shipped(hardware=None) -> Path:
    """The shipped model for `hardware` (a Hardware; default this host): the data/model-* folder whose
    data was measured on exactly that hardware alone, else data/model (the model of every CPU the
    project measured). The prompt names the hardware, and a model knows only the CPUs its data came
    from (results/archive/hardware-prompt-znver4/)."""
    if hardware is None:
        from tlm_core.ir.target import detect_host

        hardware = detect_host()
    want = json.loads(hardware.to_json())
    folders = sorted(SHIPPED.parent.glob(SHIPPED.name + "-*"))
    return next((f for f in folders if trained_on(f) == [want]), SHIPPED)


def trained_elsewhere(folder: str | Path, hardware) -> str | None:
    """None when the model's demonstration data holds programs measured on `hardware` (or it names
    none: a pretrained or test model), else where it was, in words: its prompts for `hardware` are new to it."""
    from tlm_core.ir.target import describe, other_than

    trained = trained_on(folder)
    if not trained or json.loads(hardware.to_json()) in trained:
        return None
    return (f"trained on programs measured on {', '.join(other_than(trained, hardware))}; this machine is "
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


def _fix(folder: Path) -> str:
    """What to do about a bad file of the checkpoint in `folder`."""
    if folder.resolve().parent == SHIPPED.parent.resolve() and folder.name.startswith(SHIPPED.name):
        return f"a model shipped with the project: restore it with `git checkout -- {folder}`"
    return "write it again, or give a model folder written by `tlm train`"


def check(folder: str | Path) -> Path:
    """The checkpoint folder, once each file `load` reads is there and of the right kind; else a UserError
    naming the file: missing, a folder, truncated, corrupt, another model's weights or not a TLM tokenizer."""
    import torch
    from safetensors import SafetensorError, safe_open
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM, GPT2Config

    folder = Path(folder)
    if not (folder / "config.json").exists():
        if folder.is_file():
            raise UserError(f"{folder}: a file, not a model checkpoint folder (give the folder `tlm train` wrote)")
        hint = "train one with `tlm train pretrain`" if folder.parent == SHIPPED.parent else "give a folder written by `tlm train`"
        raise UserError(f"no model checkpoint in {folder}: {hint}")
    fix = _fix(folder)
    config = read_json(folder / "config.json", fix)
    if config.get("model_type") != "gpt2":
        raise UserError(f"{folder / 'config.json'}: not the config of a TLM model (model_type "
                        f"{config.get('model_type')!r}, not 'gpt2') ({fix})")
    path = folder / "tokenizer.json"
    if not path.exists():
        raise UserError(f"{path}: missing: the model's tokenizer is saved beside it ({fix})")
    doc = read_json(path, fix)
    if not {"model", "added_tokens"} <= set(doc):
        raise UserError(f"{path}: not a Hugging Face tokenizer file (no \"model\" or \"added_tokens\") ({fix})")
    try:
        Tokenizer.from_str(json.dumps(doc))
    except Exception as err:  # noqa: BLE001 - the tokenizers library raises a plain Exception for a bad file
        raise UserError(f"{path}: not a tokenizer file this version reads ({reason(err)}) ({fix})") from None
    if (folder / "tokenizer_config.json").exists():
        read_json(folder / "tokenizer_config.json", fix)
    path = folder / "model.safetensors"
    if not path.exists():
        raise UserError(f"{path}: missing: the model's weights ({fix})")
    if path.is_dir():
        raise UserError(f"{path}: a folder, not a safetensors file ({fix})")
    try:
        with safe_open(str(path), framework="pt") as f:
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 (not a dict)
    except SafetensorError as err:
        raise UserError(f"{path}: truncated or not a safetensors file ({' '.join(str(err).split())}) ({fix})") from None
    except OSError as err:
        raise UserError(f"{path}: cannot read it ({reason(err)}) ({fix})") from None
    try:
        with torch.device("meta"):  # shapes only: no memory, no initialisation
            model = AutoModelForCausalLM.from_config(GPT2Config.from_dict(config))
    except (ValueError, TypeError) as err:
        raise UserError(f"{folder / 'config.json'}: not a GPT-2 config this version builds ({reason(err)}) ({fix})") from None
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    tied = set(getattr(model, "all_tied_weights_keys", None) or getattr(model, "_tied_weights_keys", None) or ())
    other = sorted(k for k in shapes if want.get(k, shapes[k]) != shapes[k])
    bad = [f"{k} {list(shapes[k])} vs {list(want[k])}" for k in other]
    bad += [f"{k} not in the model" for k in sorted(set(shapes) - set(want))]
    bad += [f"{k} missing" for k in sorted(set(want) - set(shapes) - tied)]
    if bad:
        raise UserError(f"{path}: weights of another model than {folder / 'config.json'} describes ({len(bad)} tensors "
                        f"differ, e.g. {bad[0]}) ({fix})")
    return folder


def load(folder: str | Path | None = None):
    """(model, tokenizer) of a checkpoint folder (default: the shipped model for this host), in eval mode."""
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    from tlm_core.language.vocab import tokens

    folder = check(folder if folder else shipped())
    tok = PreTrainedTokenizerFast.from_pretrained(folder)
    if tuple(tok.convert_ids_to_tokens(list(range(len(tok))))) != tokens():
        raise UserError(f"{folder / 'tokenizer.json'}: not this version's tensor-language vocabulary "
                        f"(a model of another version of tlm, or not a TLM model): {_fix(folder)}")
    model = AutoModelForCausalLM.from_pretrained(folder)
    model.eval()
    return model, tok
