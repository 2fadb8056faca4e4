"""The vocabulary, fixed by construction (never fitted on data), and its Hugging Face tokenizer.

Every integer is expressible: 0..SMALL-1 are single tokens; larger ones are `<num>` digits `</num>`.
"""

from __future__ import annotations

from functools import cache

SMALL = 1024  # integers below this are one token each (tile factors, extents, indices)
PAD, BOS, EOS, UNK, SEP = "<pad>", "<bos>", "<eos>", "<unk>", "<sep>"
NUM_OPEN, NUM_CLOSE = "<num>", "</num>"
DIGITS = tuple(f"d{i}" for i in range(10))

#: Section markers and the words of the subgraph, hardware, sketch and decision parts.
STRUCTURE = (
    "<subgraph>", "<hw>", "<sketch>", "<decisions>", "buf", "alloc", "block", "iters", "=", "[", "]", "(", ")",
    "S", "R", "O", "i", "b", "neg", "fconst", "inf", "-inf", "nan", "load", "store", "init", "var", "let", "call", "call_other",
)
DTYPES = ("float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16",
          "uint32", "uint64", "bool", "dtype_other")
EXPR_OPS = ("+", "-", "*", "/", "//", "%", "fdiv", "fmod", "min", "max", "==", "!=", "<", "<=", ">", ">=",
            "and", "or", "not", "select", "cast", "ramp", "broadcast", "if_then_else", "expr_other")
CALLS = ("exp", "exp2", "log", "log2", "log1p", "tanh", "sigmoid", "sqrt", "rsqrt", "erf", "pow", "fabs", "floor",
         "ceil", "round", "trunc", "nearbyint", "sin", "cos", "isnan", "isinf", "isfinite", "fma", "clz",
         "shift_left", "shift_right", "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not", "reinterpret",
         "likely", "q_multiply_shift")
FEATURES = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vnni", "avxvnni", "neon", "sve", "dotprod")
HARDWARE = ("llvm", "cuda", "cores", "simd", "vregs", "l1", "l2", "l3", "sm", *(f"+{f}" for f in FEATURES))
INSTRUCTIONS = (
    "GetSBlock", "GetLoops", "GetChildBlocks", "GetProducers", "GetConsumers", "GetOutputBlocks", "Split", "Fuse",
    "Reorder", "Merge", "AddUnitLoop", "Parallel", "Vectorize", "Unroll", "Bind", "CacheRead", "CacheWrite",
    "CacheInplace", "ReIndex", "ReadAt", "WriteAt", "ComputeAt", "ReverseComputeAt", "ComputeInline",
    "ReverseComputeInline", "DecomposeReduction", "DecomposePadding", "RFactor", "StorageAlign", "SetScope",
    "Blockize", "Tensorize", "Annotate", "Unannotate", "TransformLayout", "TransformBlockLayout",
    "SetAxisSeparator", "PadEinsum", "RollingBuffer", "EnterPostproc", "inst_other",
)
ANNOTATIONS = ("tiling_structure", "parallel", "vectorize", "unroll_explicit", "unroll_implicit", "auto_tensorize",
               "cooperative_fetch", "thread_extent_low_inclusive", "thread_extent_high_inclusive",
               "rewrite_layout", "layout_free_buffers", "ann_other")
DECISIONS = ("tile", "categorical", "location", "root_loc", "inline_loc", "parallel_ext", "vectorize_ext",
             "n", "ext", "limit", "of", ":")


@cache
def tokens() -> tuple[str, ...]:
    """All tokens, in id order: specials first, then the integers, then the words."""
    words = (PAD, BOS, EOS, UNK, SEP, NUM_OPEN, NUM_CLOSE, *DIGITS, *(str(i) for i in range(SMALL)),
             *STRUCTURE, *DTYPES, *EXPR_OPS, *CALLS, *HARDWARE, *INSTRUCTIONS, *ANNOTATIONS, *DECISIONS)
    dup = {w for w in words if words.count(w) > 1}
    assert not dup, f"duplicate tokens {dup}"
    return words


def number(value: int) -> list[str]:
    """Tokens of a non-negative integer."""
    if value < 0:
        raise ValueError(f"number() takes non-negative integers, got {value}")
    if value < SMALL:
        return [str(value)]
    return [NUM_OPEN, *(f"d{c}" for c in str(value)), NUM_CLOSE]


def read_number(toks: list[str], pos: int) -> tuple[int, int]:
    """(value, next position) of the integer starting at toks[pos]."""
    if toks[pos] != NUM_OPEN:
        return int(toks[pos]), pos + 1
    end = toks.index(NUM_CLOSE, pos)
    return int("".join(t[1] for t in toks[pos + 1:end])), end + 1


@cache
def tokenizer():
    """The Hugging Face fast tokenizer of the language (saves and loads with the model)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(tokens())}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS, unk_token=UNK,
                                   pad_token=PAD, sep_token=SEP)
