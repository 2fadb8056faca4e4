"""Networks that Hugging Face `transformers` defines: built from a config, random weights, no download."""

from __future__ import annotations

import torch


def resnet(depths: tuple[int, ...] = (3, 4, 6, 3), layer_type: str = "bottleneck",
           hidden_sizes: tuple[int, ...] = (256, 512, 1024, 2048)) -> torch.nn.Module:
    """ResNet (default ResNet-50) as `ResNetForImageClassification`."""
    from transformers import ResNetConfig, ResNetForImageClassification

    cfg = ResNetConfig(depths=list(depths), layer_type=layer_type, hidden_sizes=list(hidden_sizes))
    return ResNetForImageClassification(cfg)


def mobilenet_v2(depth_multiplier: float = 1.0) -> torch.nn.Module:
    """MobileNet-V2 as `MobileNetV2ForImageClassification` (PyTorch padding, not TF 'same')."""
    from transformers import MobileNetV2Config, MobileNetV2ForImageClassification

    # tf_padding computes pads from the input at run time; torchvision's fixed pads are the model
    # the paper (and TVM's benchmarks) used.
    return MobileNetV2ForImageClassification(MobileNetV2Config(depth_multiplier=depth_multiplier, tf_padding=False))


def bert(layers: int, hidden: int, heads: int, intermediate: int | None = None) -> torch.nn.Module:
    """BERT encoder (`BertModel`) of the given size; intermediate defaults to 4 x hidden."""
    from transformers import BertConfig, BertModel

    cfg = BertConfig(num_hidden_layers=layers, hidden_size=hidden, num_attention_heads=heads,
                     intermediate_size=intermediate or 4 * hidden)
    return BertModel(cfg, add_pooling_layer=True)


def gpt2(layers: int = 12, hidden: int = 768, heads: int = 12) -> torch.nn.Module:
    """GPT-2 language model (`GPT2LMHeadModel`, no KV cache: one full forward)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    return GPT2LMHeadModel(GPT2Config(n_layer=layers, n_embd=hidden, n_head=heads, use_cache=False))


def llama(layers: int = 32, hidden: int = 4096, intermediate: int = 11008, heads: int = 32,
          vocab: int = 32000) -> torch.nn.Module:
    """LLaMA causal LM (`LlamaForCausalLM`); defaults are LLaMA-7B's shapes."""
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(num_hidden_layers=layers, hidden_size=hidden, intermediate_size=intermediate,
                      num_attention_heads=heads, num_key_value_heads=heads, vocab_size=vocab,
                      max_position_embeddings=2048, use_cache=False)
    return LlamaForCausalLM(cfg)


def vit(layers: int = 12, hidden: int = 768, heads: int = 12, image_size: int = 224,
        patch_size: int = 16) -> torch.nn.Module:
    """Vision Transformer (`ViTForImageClassification`)."""
    from transformers import ViTConfig, ViTForImageClassification

    cfg = ViTConfig(num_hidden_layers=layers, hidden_size=hidden, num_attention_heads=heads,
                    intermediate_size=4 * hidden, image_size=image_size, patch_size=patch_size)
    return ViTForImageClassification(cfg)
