"""DenseNet (Huang, Liu, van der Maaten, Weinberger, "Densely Connected Convolutional
Networks", CVPR 2017), DenseNet-121 in torchvision's layout (its state_dict keys and
parameter count, so its weights load)."""
from .. import nn
from ..nn import functional as F
from ..ops.shape import cat
from ._common import check_model_args, init_weights


class DenseLayer(nn.Module):
    """One layer of a dense block: BN → ReLU → 1×1 conv (bottleneck) → BN → ReLU → 3×3 conv.

    What the paper introduced: *dense connections*. Layer ℓ of a block sees the
    concatenation of the block input and of every earlier layer's output, ::

        x_ℓ = H_ℓ([x_0, x_1, …, x_{ℓ−1}]),

    and adds only `growth_rate` (k = 32) new channels. Features are reused instead of
    relearned, and every layer has a short path to the loss. Where ResNet *adds* F(x) to x,
    DenseNet *concatenates*. The 1×1 bottleneck (4k channels) keeps the 3×3 conv cheap as the
    input grows (DenseNet-B); BN and ReLU come before each conv (pre-activation).

    Shapes: the inputs (N, C_i, H, W) for i < ℓ — a list, as torchvision's layer takes
    them, or already concatenated, as DenseBlock passes them —, (N, ΣC_i, H, W)
    -> (N, bn_size·k, H, W) -> y (N, k, H, W). Backward: δ of the concatenation is cut into
    the inputs' channel slices, so every earlier layer receives a gradient from every later one.
    """

    def __init__(self, in_channels, growth_rate, bn_size, drop_rate=0.0):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(in_channels, bn_size * growth_rate, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, 3, padding=1, bias=False)
        self.drop_rate = float(drop_rate)

    @property
    def _chain(self):
        m = self._modules
        return (m["norm1"], m["relu1"], m["conv1"], m["norm2"], m["relu2"], m["conv2"])

    def forward(self, inputs):
        x = cat(inputs, dim=1) if isinstance(inputs, (list, tuple)) else inputs   # (N, ΣC_i, H, W)
        y = nn.conv_norm_chain(self._chain, x)     # one op: the two units below, bit for bit
        # = self.conv1(relu1(norm1(x)))  (N, bn_size·k, H, W)  bottleneck
        # → self.conv2(relu2(norm2(·)))  (N, k, H, W)
        if self.drop_rate > 0:
            y = F.dropout(y, self.drop_rate, self.training)
        return y


class DenseBlock(nn.Module):
    """`num_layers` DenseLayers (named denselayer1, denselayer2, …), each fed the concatenation
    of the block input and all earlier outputs; returns that concatenation including the last.

    The concatenation is built one step at a time, X_ℓ = [X_{ℓ−1} | x_{ℓ−1}] (X_1 = x_0):
    the same tensor [x_0 … x_{ℓ−1}] that torchvision's cat(features) makes, but each
    layer's cat has two inputs. Backward, ∂L/∂X_{ℓ−1} = (layer ℓ−1's gradient) + the first
    channels of ∂L/∂X_ℓ: one sum per layer over the whole prefix, where cat(features) cuts
    ∂L/∂X_ℓ into ℓ slices and the engine adds each feature's ℓ contributions one by one
    (a DenseNet-121 step: 58 sums instead of 535). The additions come in the same order
    — the last layer's contribution first — so the gradients are bit for bit
    cat(features)'s (tests/test_models.py).

    Shapes: (N, C, H, W) -> (N, C + num_layers·k, H, W)."""

    def __init__(self, num_layers, in_channels, bn_size, growth_rate, drop_rate=0.0):
        super().__init__()
        for i in range(num_layers):
            self.add_module(f"denselayer{i + 1}",
                            DenseLayer(in_channels + i * growth_rate, growth_rate, bn_size, drop_rate))

    def forward(self, x):
        for layer in self._modules.values():               # x: X_ℓ = [x_0 … x_{ℓ−1}]
            x = cat([x, layer(x)], dim=1)                  # X_{ℓ+1} = [X_ℓ | H_ℓ(X_ℓ)]
        return x                                           # (N, C + L·k, H, W)


class Transition(nn.Sequential):
    """Between dense blocks: BN → ReLU → 1×1 conv (halves the channels, "compression" θ = ½)
    → 2×2 average pool (halves H and W). Shapes: (N, C, H, W) -> (N, C/2, H/2, W/2)."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.add_module("norm", nn.BatchNorm2d(in_channels))
        self.add_module("relu", nn.ReLU())
        self.add_module("conv", nn.Conv2d(in_channels, out_channels, 1, bias=False))
        self.add_module("pool", nn.AvgPool2d(2, stride=2))


class DenseNet(nn.Module):
    """DenseNet-BC: a 7×7 stem, dense blocks joined by transitions, BN, global average pool, fc.

    Shapes of DenseNet-121 (blocks of 6, 12, 24, 16 layers, k = 32) for a 224×224 image::

        (N, C, 224, 224) -conv0 7×7/2, pool0 3×3/2-> (N, 64, 56, 56)
        -block1-> (N, 256, 56, 56) -transition1-> (N, 128, 28, 28)
        -block2-> (N, 512, 28, 28) -transition2-> (N, 256, 14, 14)
        -block3-> (N, 1024, 14, 14) -transition3-> (N, 512, 7, 7)
        -block4-> (N, 1024, 7, 7) -norm5, relu, global avg pool-> (N, 1024) -> (N, num_classes)

    The smallest input is 29×29 (the three transitions need a 2×2 map each).

    memory_efficient is accepted for torchvision's signature; minigrad always keeps the
    concatenations (torchvision's flag recomputes them in backward, with the same numbers).
    """

    def __init__(self, growth_rate=32, block_config=(6, 12, 24, 16), num_init_features=64,
                 bn_size=4, drop_rate=0.0, num_classes=1000, in_channels=3, memory_efficient=False):
        super().__init__()
        check_model_args("DenseNet", num_classes, in_channels)
        self.features = nn.Sequential()
        self.features.add_module("conv0", nn.Conv2d(in_channels, num_init_features, 7, stride=2,
                                                    padding=3, bias=False))
        self.features.add_module("norm0", nn.BatchNorm2d(num_init_features))
        self.features.add_module("relu0", nn.ReLU())
        self.features.add_module("pool0", nn.MaxPool2d(3, stride=2, padding=1))
        c = num_init_features
        for i, num_layers in enumerate(block_config):
            self.features.add_module(f"denseblock{i + 1}",
                                     DenseBlock(num_layers, c, bn_size, growth_rate, drop_rate))
            c += num_layers * growth_rate
            if i != len(block_config) - 1:
                self.features.add_module(f"transition{i + 1}", Transition(c, c // 2))
                c //= 2
        self.features.add_module("norm5", nn.BatchNorm2d(c))
        self.classifier = nn.Linear(c, num_classes)
        init_weights(self, conv_mode="fan_in", zero_linear_bias=True)   # torchvision's

    def forward(self, x):
        x = F.relu(self.features(x))                         # (N, 1024, H/32, W/32)
        x = F.adaptive_avg_pool2d(x, (1, 1)).flatten(1)      # (N, 1024)
        return self.classifier(x)                            # (N, num_classes)


def densenet121(num_classes=1000, in_channels=3, **kwargs):
    """DenseNet-121 (k = 32, blocks 6-12-24-16): 7,978,856 parameters for 1000 classes, RGB."""
    return DenseNet(32, (6, 12, 24, 16), 64, num_classes=num_classes, in_channels=in_channels,
                    **kwargs)
