"""MobileNetV2 (Sandler, Howard, Zhu, Zhmoginov, Chen, "MobileNetV2: Inverted Residuals and
Linear Bottlenecks", CVPR 2018), in torchvision's layout (its state_dict keys and parameter
count, so its weights load)."""
from .. import nn
from ._common import check_model_args, init_weights


def _make_divisible(v, divisor=8):
    """Round a channel count to the nearest multiple of `divisor`, never below 90% of v
    (the rule of the reference implementation, used when width_mult ≠ 1)."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class ConvBNReLU6(nn.Sequential):
    """Convolution (no bias, padding (k−1)/2) → BatchNorm2d → ReLU6, as one Sequential
    (keys 0, 1: torchvision's Conv2dNormActivation). groups = channels makes it depthwise.
    ReLU6 = min(max(x, 0), 6) keeps activations in a range that low-precision arithmetic
    on phones represents well."""

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, groups=1):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                      padding=(kernel_size - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU6(),
        )


class InvertedResidual(nn.Module):
    """The inverted residual block with a linear bottleneck.

    What MobileNet (v1, Howard et al. 2017) introduced: the *depthwise-separable*
    convolution, a 3×3 convolution per channel (groups = C, 9C weights) followed by a 1×1
    pointwise convolution that mixes channels (C·C' weights), instead of one dense 3×3
    (9·C·C'): about 8–9 times fewer multiply-adds for the same receptive field.
    What MobileNetV2 added: *inverted residuals*. A classic bottleneck goes wide → narrow
    → wide; this block goes narrow → wide → narrow: 1×1 expand by t (= expand_ratio) with
    ReLU6, 3×3 depthwise with ReLU6, then a *linear* 1×1 projection (no activation: a ReLU
    in the narrow space would destroy information). The shortcut y = F(x) + x joins the
    narrow ends, when stride = 1 and the channels match.

    Shapes: x (N, C_in, H, W) -1×1 expand-> (N, t·C_in, H, W) -3×3 depthwise, stride s->
    (N, t·C_in, H/s, W/s) -1×1 linear-> (N, C_out, H/s, W/s) = F(x); y = F(x) + x when the
    shapes agree. (t = 1 skips the expansion, as in the first block.)
    """

    def __init__(self, in_channels, out_channels, stride, expand_ratio):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"InvertedResidual(): stride must be 1 or 2, got {stride!r}")
        hidden = int(round(in_channels * expand_ratio))
        self.stride = stride
        self.use_res_connect = stride == 1 and in_channels == out_channels
        layers = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU6(in_channels, hidden, 1))                       # expand
        layers += [ConvBNReLU6(hidden, hidden, 3, stride=stride, groups=hidden),     # depthwise
                   nn.Conv2d(hidden, out_channels, 1, bias=False),                   # linear projection
                   nn.BatchNorm2d(out_channels)]
        self.conv = nn.Sequential(*layers)
        self.out_channels = out_channels

    def forward(self, x):
        out = self.conv(x)                                   # (N, C_out, H/s, W/s) = F(x)
        return out + x if self.use_res_connect else out      # y = F(x) + x


class MobileNetV2(nn.Module):
    """MobileNetV2: a 3×3/2 stem, 17 inverted residual blocks, a 1×1 conv to 1280 channels,
    global average pool, dropout, fc.

    Blocks (t expansion, c channels, n repeats, s stride of the first)::

        t=1 c=16 n=1 s=1 | 6, 24, 2, 2 | 6, 32, 3, 2 | 6, 64, 4, 2 | 6, 96, 3, 1
        | 6, 160, 3, 2 | 6, 320, 1, 1

    Shapes for a 224×224 image: (N, C, 224, 224) -> (N, 32, 112, 112) -> … -> (N, 320, 7, 7)
    -> (N, 1280, 7, 7) -> (N, 1280) -> (N, num_classes). Any input of at least 1×1 works
    (the strides of 2 round up: 32×32 ends at 1×1).
    """

    SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                (6, 160, 3, 2), (6, 320, 1, 1)]

    def __init__(self, num_classes=1000, in_channels=3, width_mult=1.0, round_nearest=8,
                 dropout=0.2):
        super().__init__()
        check_model_args("MobileNetV2", num_classes, in_channels)
        c = _make_divisible(32 * width_mult, round_nearest)
        self.last_channel = _make_divisible(1280 * max(1.0, width_mult), round_nearest)
        features = [ConvBNReLU6(in_channels, c, 3, stride=2)]              # (N, 32, H/2, W/2)
        for t, channels, n, s in self.SETTINGS:
            out = _make_divisible(channels * width_mult, round_nearest)
            for i in range(n):
                features.append(InvertedResidual(c, out, s if i == 0 else 1, t))
                c = out
        features.append(ConvBNReLU6(c, self.last_channel, 1))             # (N, 1280, H/32, W/32)
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.last_channel, num_classes))
        init_weights(self, linear_std=0.01, zero_linear_bias=True)   # torchvision's

    def forward(self, x):
        x = self.features(x)                                     # (N, 1280, H/32, W/32)
        x = nn.functional.adaptive_avg_pool2d(x, (1, 1)).flatten(1)   # (N, 1280)
        return self.classifier(x)                                # (N, num_classes)


def mobilenet_v2(num_classes=1000, in_channels=3, **kwargs):
    """MobileNetV2 (width 1.0): 3,504,872 parameters for 1000 classes, RGB."""
    return MobileNetV2(num_classes, in_channels, **kwargs)
