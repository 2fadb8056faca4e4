"""Plain-PyTorch vision networks that Hugging Face `transformers` does not provide.

Each constructor builds a randomly initialised network whose layer structure (and
hence parameter count) matches the torchvision / TVM-testing reference model, and
returns it in eval mode. Nothing here downloads weights or imports torchvision;
the caller seeds torch for reproducible initialisation. Submodule names follow
torchvision where that costs nothing, so torchvision checkpoints load as-is.

    resnet          ResNet-18/34/50/101/152, ResNeXt, Wide-ResNet   (N, 3, H, W)
    densenet        DenseNet-121/169/201                            (N, 3, H, W)
    resnet3d        R3D-18/34 video ResNet                          (N, 3, T, H, W)
    dcgan_generator DCGAN generator from relay.testing.dcgan        (N, nz)
    vgg             VGG from a torchvision cfg (VGG16 given)        (N, 3, H, W)
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

# -----------------------------------------------------------------------------
# ResNet / ResNeXt / Wide-ResNet (torchvision.models.resnet, "v1.5": stride on the 3x3)


class BasicBlock(nn.Module):
    """Two 3x3 convs with an identity (or 1x1 projection) shortcut; ResNet-18/34."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 groups: int = 1, width_per_group: int = 64):
        super().__init__()
        if groups != 1 or width_per_group != 64:
            raise ValueError("BasicBlock only supports groups=1, width_per_group=64")
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.downsample = _projection(inplanes, planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual block forward pass."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (grouped for ResNeXt), 1x1 expand x4; ResNet-50 and up."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 groups: int = 1, width_per_group: int = 64):
        super().__init__()
        # ResNeXt widens the 3x3 by cardinality; Wide-ResNet by width_per_group > 64.
        width = int(planes * (width_per_group / 64.0)) * groups
        out_planes = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.relu = nn.ReLU()
        self.downsample = _projection(inplanes, out_planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual block forward pass."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _projection(inplanes: int, out_planes: int, stride: int) -> nn.Module | None:
    """1x1 conv + BN shortcut when the residual changes shape, else None (identity)."""
    if stride == 1 and inplanes == out_planes:
        return None
    return nn.Sequential(nn.Conv2d(inplanes, out_planes, 1, stride, bias=False),
                         nn.BatchNorm2d(out_planes))


class ResNet(nn.Module):
    """7x7 stem, max-pool, four residual stages, global average pool, linear head."""

    def __init__(self, block: type[BasicBlock | Bottleneck], layers: tuple[int, ...],
                 groups: int = 1, width_per_group: int = 64, num_classes: int = 1000):
        super().__init__()
        if len(layers) != 4:
            raise ValueError(f"expected 4 stage depths, got {layers}")
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes = 64
        stages = []
        for i, (planes, depth) in enumerate(zip((64, 128, 256, 512), layers)):
            blocks = []
            for j in range(depth):
                # Only the first block of stages 2-4 downsamples.
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(block(inplanes, planes, stride, groups, width_per_group))
                inplanes = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(inplanes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map images (N, 3, H, W) to logits (N, num_classes)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet(layers: tuple[int, ...], bottleneck: bool = True, groups: int = 1,
           width_per_group: int = 64, num_classes: int = 1000) -> nn.Module:
    """Build a torchvision-equivalent ResNet/ResNeXt/Wide-ResNet in eval mode."""
    block = Bottleneck if bottleneck else BasicBlock
    return ResNet(block, tuple(layers), groups, width_per_group, num_classes).eval()


# -----------------------------------------------------------------------------
# DenseNet (torchvision.models.densenet, inference path only)


class _DenseLayer(nn.Module):
    """BN-ReLU-1x1 bottleneck then BN-ReLU-3x3 producing growth_rate new channels."""

    def __init__(self, in_features: int, growth_rate: int, bn_size: int):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_features)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(in_features, bn_size * growth_rate, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, 3, 1, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return only the new feature maps; the block does the concatenation."""
        return self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))


class _DenseBlock(nn.ModuleDict):
    """Stack of dense layers, each seeing the concatenation of all earlier outputs."""

    def __init__(self, num_layers: int, in_features: int, growth_rate: int, bn_size: int):
        super().__init__()
        for i in range(num_layers):
            self[f"denselayer{i + 1}"] = _DenseLayer(in_features + i * growth_rate,
                                                     growth_rate, bn_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Grow the channel dimension by num_layers * growth_rate."""
        features = [x]
        for layer in self.values():
            features.append(layer(torch.cat(features, 1)))
        return torch.cat(features, 1)


def _transition(in_features: int, out_features: int) -> nn.Sequential:
    """BN-ReLU-1x1 conv to compress channels, then 2x2 average pool to halve H and W."""
    return nn.Sequential(OrderedDict(
        norm=nn.BatchNorm2d(in_features),
        relu=nn.ReLU(),
        conv=nn.Conv2d(in_features, out_features, 1, bias=False),
        pool=nn.AvgPool2d(2, 2),
    ))


class DenseNet(nn.Module):
    """Densely connected CNN: stem, dense blocks joined by transitions, linear head."""

    def __init__(self, growth_rate: int = 32, block_config: tuple = (6, 12, 24, 16),
                 num_init_features: int = 64, bn_size: int = 4, num_classes: int = 1000):
        super().__init__()
        self.features = nn.Sequential(OrderedDict(
            conv0=nn.Conv2d(3, num_init_features, 7, 2, 3, bias=False),
            norm0=nn.BatchNorm2d(num_init_features),
            relu0=nn.ReLU(),
            pool0=nn.MaxPool2d(3, 2, 1),
        ))
        n = num_init_features
        for i, num_layers in enumerate(block_config):
            self.features.add_module(f"denseblock{i + 1}",
                                     _DenseBlock(num_layers, n, growth_rate, bn_size))
            n += num_layers * growth_rate
            if i != len(block_config) - 1:
                # Transitions halve the channels (compression factor 0.5).
                self.features.add_module(f"transition{i + 1}", _transition(n, n // 2))
                n //= 2
        self.features.add_module("norm5", nn.BatchNorm2d(n))
        self.classifier = nn.Linear(n, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map images (N, 3, H, W) to logits (N, num_classes)."""
        x = F.relu(self.features(x))
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(x, (1, 1)), 1))


def densenet(growth_rate: int = 32, block_config: tuple = (6, 12, 24, 16),
             num_init_features: int = 64, bn_size: int = 4,
             num_classes: int = 1000) -> nn.Module:
    """Build a torchvision-equivalent DenseNet (121 by default) in eval mode."""
    return DenseNet(growth_rate, tuple(block_config), num_init_features, bn_size,
                    num_classes).eval()


# -----------------------------------------------------------------------------
# R3D video ResNet (torchvision.models.video.r3d_18): full 3x3x3 convs everywhere


class BasicBlock3d(nn.Module):
    """Two 3x3x3 convs with an identity (or 1x1x1 projection) shortcut."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv3d(inplanes, planes, 3, stride, 1, bias=False),
                                   nn.BatchNorm3d(planes), nn.ReLU())
        self.conv2 = nn.Sequential(nn.Conv3d(planes, planes, 3, 1, 1, bias=False),
                                   nn.BatchNorm3d(planes))
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or inplanes != planes:
            # R3D downsamples time as well as space (stride 2 on all three axes).
            self.downsample = nn.Sequential(
                nn.Conv3d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm3d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual block forward pass."""
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(x)) + identity)


class ResNet3d(nn.Module):
    """3x7x7 stem (no max-pool), four 3D residual stages, global pool, linear head."""

    def __init__(self, layers: tuple = (2, 2, 2, 2), num_classes: int = 400):
        super().__init__()
        if len(layers) != 4:
            raise ValueError(f"expected 4 stage depths, got {layers}")
        # The stem keeps temporal resolution: stride 1 in time, 2 in space.
        self.stem = nn.Sequential(
            nn.Conv3d(3, 64, (3, 7, 7), (1, 2, 2), (1, 3, 3), bias=False),
            nn.BatchNorm3d(64), nn.ReLU())
        inplanes = 64
        stages = []
        for i, (planes, depth) in enumerate(zip((64, 128, 256, 512), layers)):
            blocks = []
            for j in range(depth):
                blocks.append(BasicBlock3d(inplanes, planes, 2 if i > 0 and j == 0 else 1))
                inplanes = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.fc = nn.Linear(inplanes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map clips (N, 3, T, H, W) to logits (N, num_classes)."""
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet3d(layers: tuple = (2, 2, 2, 2), num_classes: int = 400) -> nn.Module:
    """Build a torchvision-equivalent R3D video ResNet (R3D-18 by default) in eval mode."""
    return ResNet3d(tuple(layers), num_classes).eval()


# -----------------------------------------------------------------------------
# DCGAN generator (TVM's relay.testing.dcgan workload)


def dcgan_generator(nz: int = 100, ngf: int = 128, out_channels: int = 3,
                    image_size: int = 64) -> nn.Module:
    """Build the DCGAN generator mapping noise (N, nz) to images (N, C, S, S), eval mode."""
    k = (image_size // 4).bit_length() - 1
    if image_size < 8 or image_size != 4 * 2 ** k:
        raise ValueError(f"image_size must be 4 * 2**k with k >= 1, got {image_size}")
    # Channels halve per up-block and end at ngf, so the 4x4 seed has ngf * 2**(k-1)
    # channels (ngf*8 for 64x64, as in the reference).
    ch = ngf * 2 ** (k - 1)
    # Like relay's dense / conv2d_transpose, no layer carries a bias.
    layers: list[nn.Module] = [
        nn.Linear(nz, 4 * 4 * ch, bias=False),
        nn.ReLU(),
        nn.Unflatten(1, (ch, 4, 4)),
    ]
    for _ in range(k - 1):
        # kernel 4, stride 2, padding 1 exactly doubles H and W.
        layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False),
                   nn.BatchNorm2d(ch // 2), nn.ReLU()]
        ch //= 2
    layers += [nn.ConvTranspose2d(ch, out_channels, 4, 2, 1, bias=False), nn.Tanh()]
    net = nn.Sequential(*layers)
    # Standard DCGAN init: N(0, 0.02) weights, BN scale N(1, 0.02).
    for m in net.modules():
        if isinstance(m, (nn.Linear, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return net.eval()


# -----------------------------------------------------------------------------
# VGG (torchvision.models.vgg); ints are 3x3 conv widths, "M" is a 2x2 max-pool

VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
         512, 512, 512, "M", 512, 512, 512, "M")


def vgg(cfg: tuple = VGG16, batch_norm: bool = False, num_classes: int = 1000) -> nn.Module:
    """Build a torchvision-equivalent VGG (VGG-16 by default) in eval mode."""
    layers: list[nn.Module] = []
    c = 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
            continue
        layers.append(nn.Conv2d(c, v, 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(v))
        layers.append(nn.ReLU())
        c = v
    net = nn.Sequential(OrderedDict(
        features=nn.Sequential(*layers),
        # Fixed 7x7 grid keeps the classifier at 25088 inputs for any input size.
        avgpool=nn.AdaptiveAvgPool2d((7, 7)),
        flatten=nn.Flatten(1),
        classifier=nn.Sequential(
            nn.Linear(c * 7 * 7, 4096), nn.ReLU(), nn.Dropout(),
            nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(),
            nn.Linear(4096, num_classes)),
    ))
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)
    return net.eval()
