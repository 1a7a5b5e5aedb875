"""ResNet (He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR 2016).

The paper's one idea: a block learns a *residual* F(x) and adds its input back,

    y = relu(F(x) + x)

so that a block which has nothing to add can learn F = 0 and pass x through
unchanged. Stacking such blocks makes very deep plain networks trainable: the
gradient of y with respect to x is I + ∂F/∂x, so δ always has the identity path
back to earlier layers, however deep the stack.

Two block types:
- BasicBlock (ResNet-18/34, and the CIFAR ResNet-20): two 3×3 convolutions.
- Bottleneck (ResNet-50): 1×1 reduce → 3×3 → 1×1 expand (×4), cheaper per layer.

Two families built from them:
- ImageNet ResNets (resnet18/34/50): a 7×7 stride-2 stem and a 3×3 max pool, four
  stages of 64/128/256/512 channels, a global average pool and one Linear layer.
  Names and parameter counts are torchvision's, so its state_dicts load.
- The CIFAR ResNet of §4.2 (resnet20): a 3×3 stem, three stages of 16/32/64
  channels with n = 3 BasicBlocks each (6n + 2 = 20 layers), global average pool,
  Linear. Its shortcuts are the paper's option A (identity; where the shape
  changes, subsample by 2 and pad the new channels with zeros), so it has no
  parameters beyond the 0.27M of the paper's table 6.
"""
from collections import OrderedDict

from .. import nn
from ..nn import functional as F
from ._common import check_model_args, init_weights


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with batch norm, and the residual connection y = F(x) + x.

    F(x) = bn2(conv2(relu(bn1(conv1(x))))), then y = relu(F(x) + shortcut(x)) (bn2, the sum
    and the ReLU as one op: nn.bn_add_relu).

    Shapes: x (N, C_in, H, W) -> y (N, C_out, H/s, W/s) with s = stride. When the shape
    changes (s = 2 or C_in ≠ C_out) the shortcut is `downsample` (a 1×1 convolution with
    batch norm in torchvision's ResNets, option B; a zero-padding subsample in ResNet-20,
    option A); otherwise it is the identity.

    Parameters
    ----------
    in_channels, out_channels : int
    stride : int
        Of the first 3×3 convolution (1, or 2 at the start of a stage).
    downsample : Module or None
        Maps x to F(x)'s shape; None means the identity.
    """

    expansion = 1

    def __init__(self, in_channels, out_channels, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = downsample

    def forward(self, x):
        out = nn.bn_relu(self.bn1, self.relu, self.conv1(x))   # relu(bn1(·)): (N, C_out, H/s, W/s)
        out = self.conv2(out)                           # (N, C_out, H/s, W/s)
        identity = x if self.downsample is None else self.downsample(x)
        return nn.bn_add_relu(self.bn2, self.relu, out, identity)   # y = relu(F(x) + x), one op


class Bottleneck(nn.Module):
    """1×1 reduce → 3×3 → 1×1 expand, with the residual connection y = F(x) + x.

    The 1×1 convolutions make the block cheap: the 3×3 works on `width` channels, four
    times fewer than the block's output (expansion = 4). As torchvision (and ResNet v1.5),
    the stride sits on the 3×3 convolution.

    Shapes: x (N, C_in, H, W) -> (N, width, H, W) -> (N, width, H/s, W/s)
    -> (N, 4·width, H/s, W/s) = y.

    Parameters
    ----------
    in_channels : int
    width : int
        Channels of the inner 3×3 convolution; the block outputs 4·width.
    stride : int
    downsample : Module or None
        1×1 convolution with batch norm (option B) when the shape changes.
    """

    expansion = 4

    def __init__(self, in_channels, width, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * self.expansion)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def forward(self, x):
        out = nn.bn_relu(self.bn1, self.relu, self.conv1(x))    # (N, width, H, W)      1×1 reduce
        out = nn.bn_relu(self.bn2, self.relu, self.conv2(out))  # (N, width, H/s, W/s)  3×3
        out = self.conv3(out)                           # (N, 4·width, H/s, W/s) 1×1 expand
        identity = x if self.downsample is None else self.downsample(x)
        return nn.bn_add_relu(self.bn3, self.relu, out, identity)   # y = relu(F(x) + x), one op


class ZeroPadShortcut(nn.Module):
    """The paper's option A shortcut: keep every `stride`-th pixel and pad the extra
    channels with zeros, so the shortcut stays parameter-free when a stage doubles the
    channels and halves H and W.

    Shapes: x (N, C_in, H, W) -> (N, C_out, ⌈H/s⌉, ⌈W/s⌉); the new C_out − C_in channels
    are split between both ends of the channel axis (0 on each side when equal)."""

    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(f"ZeroPadShortcut(): out_channels={out_channels} must be at least "
                             f"in_channels={in_channels}")
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride

    def forward(self, x):
        s = self.stride
        x = x[:, :, ::s, ::s]                                   # (N, C_in, ⌈H/s⌉, ⌈W/s⌉)
        extra = self.out_channels - self.in_channels
        return F.pad(x, (0, 0, 0, 0, extra // 2, extra - extra // 2))   # (N, C_out, ., .)

    def extra_repr(self):
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"


class ResNet(nn.Module):
    """The ImageNet ResNet of torchvision (names conv1, bn1, layer1..4, fc).

    Stem: 7×7/2 conv → BN → ReLU → 3×3/2 max pool, then four stages of `layers[i]` blocks
    with 64, 128, 256, 512 (×expansion) channels; each stage after the first halves H, W.
    A global average pool and fc map to num_classes. For 224×224 input:
    (N, C, 224, 224) -> 112 -> 56 (layer1) -> 28 -> 14 -> 7 (layer4) -> (N, 512·e) -> (N, K).

    Parameters
    ----------
    block : BasicBlock or Bottleneck
    layers : sequence of 4 ints
    num_classes : int
    in_channels : int
    zero_init_residual : bool
        Start each block's last BN at γ = 0, so every block begins as the identity.
    """

    def __init__(self, block, layers, num_classes=1000, in_channels=3, zero_init_residual=False):
        super().__init__()
        check_model_args("ResNet", num_classes, in_channels)
        self.in_planes = 64
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._stage(block, 64, layers[0], 1)
        self.layer2 = self._stage(block, 128, layers[1], 2)
        self.layer3 = self._stage(block, 256, layers[2], 2)
        self.layer4 = self._stage(block, 512, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        init_weights(self, zero_init_residual=zero_init_residual)

    def _stage(self, block, planes, blocks, stride):
        out = planes * block.expansion
        downsample = None
        if stride != 1 or self.in_planes != out:     # option B: a 1×1 projection
            downsample = nn.Sequential(nn.Conv2d(self.in_planes, out, 1, stride=stride, bias=False),
                                       nn.BatchNorm2d(out))
        stage = [block(self.in_planes, planes, stride, downsample)]
        self.in_planes = out
        stage += [block(out, planes) for _ in range(1, blocks)]
        return nn.Sequential(*stage)

    def forward(self, x):
        x = self.maxpool(nn.bn_relu(self.bn1, self.relu, self.conv1(x)))   # (N, 64, H/4, W/4)
        x = self.layer1(x)                                      # (N, 64·e, H/4, W/4)
        x = self.layer2(x)                                      # (N, 128·e, H/8, W/8)
        x = self.layer3(x)                                      # (N, 256·e, H/16, W/16)
        x = self.layer4(x)                                      # (N, 512·e, H/32, W/32)
        x = self.avgpool(x).flatten(1)                          # (N, 512·e)
        return self.fc(x)                                       # (N, num_classes)


class CifarResNet(nn.Module):
    """The CIFAR ResNet of He et al. 2016, §4.2: 6n + 2 weighted layers.

    3×3 conv (16) → BN → ReLU, then three stages of n BasicBlocks with 16, 32, 64
    channels (the 2nd and 3rd start with stride 2), global average pool, fc.
    Shortcuts are option A (ZeroPadShortcut), so every parameter is in a conv, a BN
    or the fc. For 28×28 Fashion-MNIST: (N, 1, 28, 28) -> (N, 16, 28, 28) -> (N, 32, 14, 14)
    -> (N, 64, 7, 7) -> (N, 64) -> (N, num_classes); 32×32 CIFAR gives 32 -> 16 -> 8.
    """

    def __init__(self, n=3, num_classes=10, in_channels=3):
        super().__init__()
        check_model_args("CifarResNet", num_classes, in_channels)
        self.conv1 = nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        self.in_planes = 16
        self.layer1 = self._stage(16, n, 1)
        self.layer2 = self._stage(32, n, 2)
        self.layer3 = self._stage(64, n, 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(64, num_classes)
        init_weights(self)

    def _stage(self, planes, blocks, stride):
        downsample = None
        if stride != 1 or self.in_planes != planes:
            downsample = ZeroPadShortcut(self.in_planes, planes, stride)
        stage = [BasicBlock(self.in_planes, planes, stride, downsample)]
        self.in_planes = planes
        stage += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*stage)

    def forward(self, x):
        x = nn.bn_relu(self.bn1, self.relu, self.conv1(x))   # relu(bn1(·)): (N, 16, H, W)
        x = self.layer1(x)                        # (N, 16, H, W)
        x = self.layer2(x)                        # (N, 32, H/2, W/2)
        x = self.layer3(x)                        # (N, 64, H/4, W/4)
        x = self.avgpool(x).flatten(1)            # (N, 64)
        return self.fc(x)                         # (N, num_classes)


def resnet18(num_classes=1000, in_channels=3, **kwargs):
    """ResNet-18: BasicBlocks [2, 2, 2, 2]; 11,689,512 parameters for 1000 classes, RGB."""
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes, in_channels, **kwargs)


def resnet34(num_classes=1000, in_channels=3, **kwargs):
    """ResNet-34: BasicBlocks [3, 4, 6, 3]; 21,797,672 parameters for 1000 classes, RGB."""
    return ResNet(BasicBlock, [3, 4, 6, 3], num_classes, in_channels, **kwargs)


def resnet50(num_classes=1000, in_channels=3, **kwargs):
    """ResNet-50: Bottlenecks [3, 4, 6, 3]; 25,557,032 parameters for 1000 classes, RGB."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes, in_channels, **kwargs)


def resnet20(num_classes=10, in_channels=3):
    """ResNet-20 for 32×32 (CIFAR) or 28×28 (pass in_channels=1 for Fashion-MNIST) images:
    n = 3 BasicBlocks per stage, option-A shortcuts; 269,722 parameters for 10 classes, RGB
    (269,434 for one input channel): the paper's 0.27M."""
    return CifarResNet(3, num_classes, in_channels)
