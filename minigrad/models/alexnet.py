"""AlexNet (Krizhevsky, Sutskever, Hinton, "ImageNet Classification with Deep
Convolutional Neural Networks", NeurIPS 2012), in torchvision's single-tower form."""
from .. import nn
from ._common import check_model_args


class AlexNet(nn.Module):
    """Five convolutions and three fully connected layers: the network that won ImageNet 2012.

    What the paper introduced (or made work at scale): ReLU instead of tanh (six times
    faster training), dropout in the fully connected layers, *overlapping* max pooling
    (3×3 windows with stride 2, so neighbouring windows share a row: z = 3 > s = 2), data
    augmentation, and Local Response Normalisation after the first two convolutions, ::

        b[c] = a[c] / (k + α/n · Σ_{c' near c} a[c']²)^β,  n = 5, k = 2, α = 1e-4, β = 0.75.

    torchvision (whose state_dict keys and parameter count this class has) follows the
    later "one weird trick" variant: one tower, 64/192/384/256/256 channels, and no LRN
    (it was found to help little). lrn=True puts the paper's LRN back after the first two
    ReLUs, as features.1 = Sequential(ReLU, LocalResponseNorm) and features.4 likewise: LRN
    has no parameters, so the state_dict keys stay torchvision's. PyTorch's LRN divides α
    by n, so the paper's α = 1e-4 is alpha = n·1e-4 = 5e-4 there.

    Shapes for a 224×224 image::

        (N, C, 224, 224) -conv 11×11/4 p2-> (N, 64, 55, 55) -pool 3/2-> (N, 64, 27, 27)
        -conv 5×5 p2-> (N, 192, 27, 27) -pool-> (N, 192, 13, 13)
        -conv 3×3 ×3-> (N, 384 | 256 | 256, 13, 13) -pool-> (N, 256, 6, 6)
        -adaptive avg pool 6×6, flatten-> (N, 9216) -> 4096 -> 4096 -> (N, num_classes)

    The smallest input is 63×63 (the last pool needs a 3×3 map).
    """

    def __init__(self, num_classes=1000, in_channels=3, dropout=0.5, lrn=False):
        super().__init__()
        check_model_args("AlexNet", num_classes, in_channels)

        def act():
            if not lrn:
                return nn.ReLU()
            return nn.Sequential(nn.ReLU(), nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0))

        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, 11, stride=4, padding=2), act(),      # (N, 64, 55, 55)
            nn.MaxPool2d(3, stride=2),                                        # (N, 64, 27, 27) overlapping
            nn.Conv2d(64, 192, 5, padding=2), act(),                          # (N, 192, 27, 27)
            nn.MaxPool2d(3, stride=2),                                        # (N, 192, 13, 13)
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),                     # (N, 384, 13, 13)
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),                     # (N, 256, 13, 13)
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(),                     # (N, 256, 13, 13)
            nn.MaxPool2d(3, stride=2),                                        # (N, 256, 6, 6)
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(),
            nn.Dropout(dropout), nn.Linear(4096, 4096), nn.ReLU(),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        x = self.features(x)                 # (N, 256, h, w)
        x = self.avgpool(x).flatten(1)       # (N, 256, 6, 6) -> (N, 9216)
        return self.classifier(x)            # (N, num_classes)


def alexnet(num_classes=1000, in_channels=3, **kwargs):
    """AlexNet as torchvision builds it: 61,100,840 parameters for 1000 classes, RGB."""
    return AlexNet(num_classes, in_channels, **kwargs)
