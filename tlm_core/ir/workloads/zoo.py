"""The workload table: the paper's Table-1 test set, and a training set of other networks and shapes.

The training set never shares a subgraph with the test set: its shapes differ (other depths, batch
sizes, image sizes, sequence lengths) and, as the paper holds the test networks' subgraphs out,
`tlm_core.ir.tasks.training_tasks` drops any training task whose structural hash a test task has.
"""

from __future__ import annotations

from tlm_core.ir.workloads import Workload


def _img(n: int, size: int, c: int = 3) -> tuple:
    return (((n, c, size, size), "float32"),)


def _tok(n: int, seq: int) -> tuple:
    return (((n, seq), "int64"),)


def _kw(**kwargs) -> tuple:
    return tuple(sorted(kwargs.items()))


_RESNEXT50 = _kw(layers=(3, 4, 6, 3), groups=32, width_per_group=4)
_WIDE50 = _kw(layers=(3, 4, 6, 3), width_per_group=128)
_BERT_TINY = _kw(layers=2, hidden=128, heads=2)
_BERT_BASE = _kw(layers=12, hidden=768, heads=12)
_BERT_LARGE = _kw(layers=24, hidden=1024, heads=16)

#: Table 1 of the paper: the held-out test workloads, at the paper's input shapes.
TEST: tuple[Workload, ...] = (
    Workload("resnet50", "hf_resnet", _img(1, 224), "test", description="ResNet-50 (transformers)"),
    Workload("mobilenet_v2", "hf_mobilenet_v2", _img(1, 224), "test", description="MobileNet-V2 (transformers)"),
    Workload("resnext50", "resnet", _img(1, 224), "test", _RESNEXT50, description="ResNeXt-50 32x4d"),
    Workload("bert_base", "hf_bert", _tok(1, 128), "test", _BERT_BASE, description="BERT-base encoder"),
    Workload("bert_tiny", "hf_bert", _tok(1, 128), "test", _BERT_TINY, description="BERT-tiny (L2 H128)"),
    Workload("gpt2", "hf_gpt2", _tok(1, 128), "test", description="GPT-2 (124M) with LM head"),
    Workload("densenet121", "densenet", _img(8, 256), "test", description="DenseNet-121"),
    Workload("bert_large", "hf_bert", _tok(4, 256), "test", _BERT_LARGE, description="BERT-large encoder"),
    Workload("wide_resnet50", "resnet", _img(8, 256), "test", _WIDE50, description="Wide-ResNet-50-2"),
    # The paper writes [4, 3, 144, 144, 16] (N, C, H, W, T); PyTorch's Conv3d takes N, C, T, H, W.
    Workload("resnet3d_18", "resnet3d", (((4, 3, 16, 144, 144), "float32"),), "test",
             description="R3D-18 on 16 frames of 144x144"),
    # TVM's DCGAN benchmark: the generator, noise [8, 100] -> images [8, 3, 64, 64] (the paper's shape).
    Workload("dcgan", "dcgan", (((8, 100), "float32"),), "test", description="DCGAN generator -> [8,3,64,64]"),
    Workload("llama", "hf_llama", _tok(4, 256), "test", repeat=("layers", 32),
             description="LLaMA-7B shapes; one decoder layer built, weights x32 layers"),
)

#: Other networks and shapes (the paper's training networks where buildable here; Inception-v3 and
#: MobileNet-V3 are missing: transformers lacks them and torchvision has no CPU build here).
TRAIN: tuple[Workload, ...] = (
    Workload("t_resnet18_b1_192", "resnet", _img(1, 192), "train", _kw(layers=(2, 2, 2, 2), bottleneck=False)),
    Workload("t_resnet34_b4_224", "resnet", _img(4, 224), "train", _kw(layers=(3, 4, 6, 3), bottleneck=False)),
    Workload("t_resnet50_b4_192", "hf_resnet", _img(4, 192), "train"),
    Workload("t_resnet101_b1_256", "resnet", _img(1, 256), "train", _kw(layers=(3, 4, 23, 3))),
    Workload("t_resnet152_b2_224", "resnet", _img(2, 224), "train", _kw(layers=(3, 8, 36, 3))),
    Workload("t_mobilenet_v2_b4_224", "hf_mobilenet_v2", _img(4, 224), "train"),
    Workload("t_mobilenet_v2x075_b1_192", "hf_mobilenet_v2", _img(1, 192), "train", _kw(depth_multiplier=0.75)),
    Workload("t_resnext101_b1_192", "resnet", _img(1, 192), "train",
             _kw(layers=(3, 4, 23, 3), groups=32, width_per_group=8)),
    Workload("t_wide_resnet101_b2_224", "resnet", _img(2, 224), "train", _kw(layers=(3, 4, 23, 3), width_per_group=128)),
    Workload("t_densenet169_b1_192", "densenet", _img(1, 192), "train", _kw(block_config=(6, 12, 32, 32))),
    Workload("t_densenet201_b2_192", "densenet", _img(2, 192), "train", _kw(block_config=(6, 12, 48, 32))),
    Workload("t_vgg16_b1_224", "vgg", _img(1, 224), "train"),
    Workload("t_r3d18_b1_112", "resnet3d", (((1, 3, 16, 112, 112), "float32"),), "train"),
    Workload("t_r3d34_b2_112", "resnet3d", (((2, 3, 8, 112, 112), "float32"),), "train", _kw(layers=(3, 4, 6, 3))),
    Workload("t_dcgan_b1_64", "dcgan", (((1, 100), "float32"),), "train"),
    Workload("t_dcgan_b16_32", "dcgan", (((16, 100), "float32"),), "train", _kw(ngf=64, image_size=32)),
    Workload("t_bert_tiny_b4_64", "hf_bert", _tok(4, 64), "train", _BERT_TINY),
    Workload("t_bert_mini_b1_128", "hf_bert", _tok(1, 128), "train", _kw(layers=4, hidden=256, heads=4)),
    Workload("t_bert_small_b1_64", "hf_bert", _tok(1, 64), "train", _kw(layers=4, hidden=512, heads=8)),
    Workload("t_bert_medium_b2_128", "hf_bert", _tok(2, 128), "train", _kw(layers=8, hidden=512, heads=8)),
    Workload("t_bert_base_b4_64", "hf_bert", _tok(4, 64), "train", _BERT_BASE),
    Workload("t_bert_large_b1_128", "hf_bert", _tok(1, 128), "train", _BERT_LARGE),
    Workload("t_gpt2_b1_256", "hf_gpt2", _tok(1, 256), "train"),
    Workload("t_gpt2_medium_b1_64", "hf_gpt2", _tok(1, 64), "train", _kw(layers=24, hidden=1024, heads=16)),
    Workload("t_tinyllama_b1_128", "hf_llama", _tok(1, 128), "train",
             _kw(hidden=2048, intermediate=5632, heads=32), repeat=("layers", 22)),
    Workload("t_vit_base_b1_224", "hf_vit", _img(1, 224), "train"),
)
