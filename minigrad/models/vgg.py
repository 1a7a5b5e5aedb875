"""VGG (Simonyan, Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", ICLR 2015), configurations A (VGG-11) and D (VGG-16), with and without
batch norm, in torchvision's layout."""
from .. import nn
from ._common import check_model_args, init_weights

# channels of each 3×3 convolution; "M" is a 2×2 max pool that halves H and W
CONFIGS = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],                 # VGG-11
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
          512, 512, 512, "M"],                                                             # VGG-16
}


def make_stages(config, in_channels, batch_norm):
    """The `features` Sequential: per entry of config a 3×3 convolution (padding 1, so H and W
    stay), optionally batch norm, and ReLU; or for "M" a 2×2 max pool.

    What VGG introduced: only 3×3 convolutions, stacked. Two stacked 3×3 layers see a
    5×5 window and three see 7×7, with fewer weights (3·3²C² = 27C² against 7²C² = 49C²)
    and a ReLU between each, so a deep stack of small filters is both cheaper and more
    non-linear than one large filter. batch_norm=True inserts BatchNorm2d (Ioffe and
    Szegedy 2015, which came later) after each convolution: it normalises every channel
    over the batch, x̂ = (x − μ_B)/√(σ²_B + ε), then scales and shifts, y = γ·x̂ + β.
    """
    layers, c = [], in_channels
    for v in config:
        if v == "M":
            layers.append(nn.MaxPool2d(2, stride=2))                  # (N, c, H/2, W/2)
            continue
        layers.append(nn.Conv2d(c, v, 3, padding=1))                  # (N, v, H, W)
        if batch_norm:
            layers.append(nn.BatchNorm2d(v))
        layers.append(nn.ReLU())
        c = v
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """A VGG network: `features` (3×3 stacks and five 2×2 pools), a 7×7 adaptive average pool
    and three fully connected layers.

    Shapes for a 224×224 image: (N, C, 224, 224) -> five stages, each ending in a pool:
    (N, 64, 112, 112) -> (N, 128, 56, 56) -> (N, 256, 28, 28) -> (N, 512, 14, 14)
    -> (N, 512, 7, 7) -> flatten (N, 25088) -> 4096 -> 4096 -> (N, num_classes).
    The smallest input is 32×32 (five halvings leave 1×1, which the adaptive pool
    repeats to 7×7).
    """

    def __init__(self, features, num_classes=1000, dropout=0.5):
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(4096, num_classes),
        )
        init_weights(self, linear_std=0.01, zero_linear_bias=True)   # torchvision's

    def forward(self, x):
        x = self.features(x)                     # (N, 512, H/32, W/32)
        x = self.avgpool(x).flatten(1)           # (N, 512, 7, 7) -> (N, 25088)
        return self.classifier(x)                # (N, num_classes)


def _vgg(fn, config, batch_norm, num_classes, in_channels, **kwargs):
    check_model_args(fn, num_classes, in_channels)
    return VGG(make_stages(CONFIGS[config], in_channels, batch_norm), num_classes, **kwargs)


def vgg11(num_classes=1000, in_channels=3, **kwargs):
    """VGG-11 (configuration A): 8 convolutions + 3 linear; 132,863,336 parameters (1000 classes, RGB)."""
    return _vgg("vgg11", "A", False, num_classes, in_channels, **kwargs)


def vgg11_bn(num_classes=1000, in_channels=3, **kwargs):
    """VGG-11 with batch norm after each convolution; 132,868,840 parameters."""
    return _vgg("vgg11_bn", "A", True, num_classes, in_channels, **kwargs)


def vgg16(num_classes=1000, in_channels=3, **kwargs):
    """VGG-16 (configuration D): 13 convolutions + 3 linear; 138,357,544 parameters."""
    return _vgg("vgg16", "D", False, num_classes, in_channels, **kwargs)


def vgg16_bn(num_classes=1000, in_channels=3, **kwargs):
    """VGG-16 with batch norm after each convolution; 138,365,992 parameters."""
    return _vgg("vgg16_bn", "D", True, num_classes, in_channels, **kwargs)
