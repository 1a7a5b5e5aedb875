"""Network in Network (Lin, Chen, Yan, ICLR 2014), as "Dive into Deep Learning" (§8.3) builds it
for ImageNet-sized inputs. torchvision has no NiN, so there is no state_dict to match."""
from .. import nn
from ._common import check_model_args


class NiNBlock(nn.Sequential):
    """A convolution followed by two 1×1 convolutions, each with ReLU.

    What the paper introduced: the 1×1 convolution as a tiny fully connected network
    ("mlpconv") applied at every pixel. It mixes the channels of one position, ::

        y[n, f', i, j] = Σ_f w[f', f] · x[n, f, i, j] + b[f'],

    so the block is a per-pixel MLP slid over the image, adding depth and non-linearity
    without touching the spatial layout. (GoogLeNet's and ResNet's 1×1 reductions come from here.)

    Shapes: (N, C_in, H, W) -k×k conv, stride s, padding p-> (N, C_out, H', W')
    -1×1-> (N, C_out, H', W') -1×1-> (N, C_out, H', W').
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 1), nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 1), nn.ReLU(),
        )


class NiN(nn.Sequential):
    """NiN: four NiN blocks with AlexNet's first-layer sizes, max pools between them, and
    *global average pooling* instead of fully connected layers (the paper's second idea): the
    last block has one channel per class and each channel's mean is that class's score, so the
    classifier has no parameters of its own and cannot overfit.

    Shapes for a 224×224 image::

        (N, C, 224, 224) -block 11×11/4-> (N, 96, 54, 54) -pool 3/2-> (N, 96, 26, 26)
        -block 5×5 p2-> (N, 256, 26, 26) -pool-> (N, 256, 12, 12)
        -block 3×3 p1-> (N, 384, 12, 12) -pool-> (N, 384, 5, 5) -dropout 0.5
        -block 3×3 p1-> (N, num_classes, 5, 5) -global avg pool, flatten-> (N, num_classes)

    The smallest input is 67×67.
    """

    def __init__(self, num_classes=10, in_channels=1, dropout=0.5):
        check_model_args("NiN", num_classes, in_channels)
        super().__init__(
            NiNBlock(in_channels, 96, 11, 4, 0), nn.MaxPool2d(3, stride=2),
            NiNBlock(96, 256, 5, 1, 2), nn.MaxPool2d(3, stride=2),
            NiNBlock(256, 384, 3, 1, 1), nn.MaxPool2d(3, stride=2),
            nn.Dropout(dropout),
            NiNBlock(384, num_classes, 3, 1, 1),
            nn.AdaptiveAvgPool2d((1, 1)),
            nn.Flatten(),
        )


def nin(num_classes=10, in_channels=1, **kwargs):
    """NiN as d2l defines it (defaults: 10 classes, one input channel, for Fashion-MNIST
    resized to 224×224); 1,992,166 parameters for 10 classes and one channel."""
    return NiN(num_classes, in_channels, **kwargs)
