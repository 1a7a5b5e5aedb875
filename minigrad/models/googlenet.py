"""GoogLeNet / Inception v1 (Szegedy et al., "Going Deeper with Convolutions", CVPR 2015),
in torchvision's form (batch norm in every convolution; state_dict keys and parameter count
as torchvision's, so its weights load)."""
from collections import namedtuple

from .. import nn
from ..nn import functional as F
from ..ops.shape import cat
from ._common import check_model_args

GoogLeNetOutputs = namedtuple("GoogLeNetOutputs", ["logits", "aux_logits2", "aux_logits1"])
GoogLeNetOutputs.__doc__ = """GoogLeNet's output in training mode with aux_logits=True: the main
logits and those of the two auxiliary classifiers, each (N, num_classes). The training loss is
usually loss(logits) + 0.3·(loss(aux_logits1) + loss(aux_logits2)), as in the paper."""


class BasicConv2d(nn.Module):
    """Convolution (no bias) → BatchNorm2d (eps = 0.001) → ReLU: every convolution of GoogLeNet.

    Shapes: (N, C_in, H, W) -> (N, C_out, H', W') with H' from kernel_size, stride, padding."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                              padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x):
        m = self._modules                   # F.relu(self.bn(self.conv(x))), one op
        return nn.conv_norm_chain((m["conv"], m["bn"], _RELU), x)


_RELU = nn.ReLU()    # F.relu, as a module conv_norm_chain can read (not a child of any layer)


class Inception(nn.Module):
    """The Inception module: four branches side by side, concatenated along the channels::

        branch1: 1×1 conv                              -> ch1x1 channels
        branch2: 1×1 conv (reduce) → 3×3 conv          -> ch3x3 channels
        branch3: 1×1 conv (reduce) → 3×3 conv          -> ch5x5 channels
        branch4: 3×3 max pool, stride 1 → 1×1 conv     -> pool_proj channels
        y = cat(branch1, branch2, branch3, branch4, dim=1)

    What the paper introduced: look at several scales at once (1×1, 3×3, 5×5 windows and a
    pooled view) and let the next layer choose, and make it affordable with 1×1 convolutions
    (Lin et al.'s "network in network") that first *reduce* the channels: a 5×5 convolution
    from 480 to 48 channels costs 25·480·48 multiply-adds per pixel, but after a 1×1 reduction
    to 16 channels only 480·16 + 25·16·48. The paper's third branch is 5×5; torchvision's (whose
    weights this class loads) is 3×3, a slip it keeps for compatibility, and so do we.

    Every branch keeps H and W (padding 1 for the 3×3s, stride 1 pool with padding 1), so
    the concatenation is legal. Shapes: x (N, C_in, H, W) -> y (N, ch1x1 + ch3x3 + ch5x5 +
    pool_proj, H, W). Backward: the concatenation hands each branch its slice of δ, and the
    four gradients with respect to x add up.
    """

    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
        super().__init__()
        self.branch1 = BasicConv2d(in_channels, ch1x1, 1)
        self.branch2 = nn.Sequential(BasicConv2d(in_channels, ch3x3red, 1),
                                     BasicConv2d(ch3x3red, ch3x3, 3, padding=1))
        self.branch3 = nn.Sequential(BasicConv2d(in_channels, ch5x5red, 1),
                                     BasicConv2d(ch5x5red, ch5x5, 3, padding=1))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
                                     BasicConv2d(in_channels, pool_proj, 1))
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj

    def forward(self, x):
        y1 = self.branch1(x)                   # (N, ch1x1, H, W)
        y2 = self.branch2(x)                   # (N, ch3x3, H, W)
        y3 = self.branch3(x)                   # (N, ch5x5, H, W)
        y4 = self.branch4(x)                   # (N, pool_proj, H, W)
        return cat([y1, y2, y3, y4], dim=1)    # (N, out_channels, H, W)


class InceptionAux(nn.Module):
    """An auxiliary classifier on an intermediate feature map (training only).

    The paper attached two of these (after inception 4a and 4d) so that the lower layers get
    a strong gradient directly, and added their losses with weight 0.3.
    Shapes: (N, C, 14, 14) -adaptive avg pool 4×4-> (N, C, 4, 4) -1×1 conv-> (N, 128, 4, 4)
    -flatten-> (N, 2048) -> relu(fc1) (N, 1024) -> dropout 0.7 -> fc2 (N, num_classes).
    """

    def __init__(self, in_channels, num_classes, dropout=0.7):
        super().__init__()
        self.conv = BasicConv2d(in_channels, 128, 1)
        self.fc1 = nn.Linear(2048, 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        x = F.adaptive_avg_pool2d(x, (4, 4))        # (N, C, 4, 4)
        x = self.conv(x).flatten(1)                  # (N, 128·4·4)
        x = self.dropout(F.relu(self.fc1(x)))        # (N, 1024)
        return self.fc2(x)                           # (N, num_classes)


class GoogLeNet(nn.Module):
    """GoogLeNet: a stem of plain convolutions, nine Inception modules, a global average pool.

    Shapes for a 224×224 image (max pools use ceil_mode, as torchvision)::

        (N, C, 224, 224) -conv1 7×7/2-> (N, 64, 112, 112) -pool-> 56 -conv2 1×1, conv3 3×3->
        (N, 192, 56, 56) -pool-> 28 -3a, 3b-> (N, 480, 28, 28) -pool-> 14
        -4a..4e-> (N, 832, 14, 14) -pool 2×2-> 7 -5a, 5b-> (N, 1024, 7, 7)
        -global avg pool, dropout 0.2, fc-> (N, num_classes)

    In training mode with aux_logits=True the result is GoogLeNetOutputs(logits, aux_logits2,
    aux_logits1); otherwise the logits alone. The smallest input is 15×15 with
    aux_logits=False, 32×32 is a comfortable small size.
    """

    def __init__(self, num_classes=1000, in_channels=3, aux_logits=True, dropout=0.2,
                 dropout_aux=0.7):
        super().__init__()
        check_model_args("GoogLeNet", num_classes, in_channels)
        self.aux_logits = bool(aux_logits)
        self.conv1 = BasicConv2d(in_channels, 64, 7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, 1)
        self.conv3 = BasicConv2d(64, 192, 3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        #                           in   1×1  3×3r 3×3  5×5r 5×5 pool
        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32)      # -> 256
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64)    # -> 480
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64)     # -> 512
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64)    # -> 512
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64)    # -> 512
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64)    # -> 528
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128)  # -> 832
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128)  # -> 832
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128)  # -> 1024
        if self.aux_logits:
            self.aux1 = InceptionAux(512, num_classes, dropout_aux)
            self.aux2 = InceptionAux(528, num_classes, dropout_aux)
        else:
            self.aux1 = self.aux2 = None
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x):
        x = self.maxpool1(self.conv1(x))                    # (N, 64, H/4, W/4)
        x = self.maxpool2(self.conv3(self.conv2(x)))        # (N, 192, H/8, W/8)
        x = self.maxpool3(self.inception3b(self.inception3a(x)))   # (N, 480, H/16, W/16)
        x = self.inception4a(x)                             # (N, 512, H/16, W/16)
        aux1 = self.aux1(x) if self.aux1 is not None and self.training else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))  # (N, 528, H/16, W/16)
        aux2 = self.aux2(x) if self.aux2 is not None and self.training else None
        x = self.maxpool4(self.inception4e(x))              # (N, 832, H/32, W/32)
        x = self.inception5b(self.inception5a(x))           # (N, 1024, H/32, W/32)
        x = self.avgpool(x).flatten(1)                      # (N, 1024)
        x = self.fc(self.dropout(x))                        # (N, num_classes)
        if self.training and self.aux_logits:
            return GoogLeNetOutputs(x, aux2, aux1)
        return x


def googlenet(num_classes=1000, in_channels=3, **kwargs):
    """GoogLeNet as torchvision builds it: 13,004,888 parameters with the auxiliary
    classifiers (aux_logits=True, the default), 6,624,904 without (1000 classes, RGB)."""
    return GoogLeNet(num_classes, in_channels, **kwargs)
