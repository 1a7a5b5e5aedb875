"""LeNet-5 (LeCun, Bottou, Bengio, Haffner 1998), as the lecture notes draw it."""
from .. import nn
from ._common import check_model_args


def lenet5(num_classes=10, in_channels=1, activation="relu"):
    """LeNet-5: the first CNN trained end to end by backpropagation.

    What it introduced: local receptive fields with shared weights (convolutions),
    subsampling (pooling) between them, and a few fully connected layers on top.

    conv 6@5×5 pad 2 → act → max pool 2 → conv 16@5×5 → act → max pool 2 → 120 → 84 →
    num_classes. Shapes for a 28×28 image: (N, in_channels, 28, 28) -> (N, 6, 28, 28)
    -> (N, 6, 14, 14) -> (N, 16, 10, 10) -> (N, 16, 5, 5) -> (N, 400) -> (N, 120)
    -> (N, 84) -> (N, num_classes). (The 1998 paper used 32×32 inputs without padding,
    sigmoid-like activations and average pooling; activation='sigmoid' comes closer.)

    Parameters
    ----------
    num_classes : int
    in_channels : int
    activation : {'relu', 'tanh', 'sigmoid'}
    """
    check_model_args("lenet5", num_classes, in_channels)
    acts = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}
    if activation not in acts:
        raise ValueError(f"lenet5(): activation must be one of {sorted(acts)}, got {activation!r}")
    act = acts[activation]
    return nn.Sequential(
        nn.Conv2d(in_channels, 6, 5, padding=2), act(), nn.MaxPool2d(2),   # (N, 6, 14, 14)
        nn.Conv2d(6, 16, 5), act(), nn.MaxPool2d(2),                       # (N, 16, 5, 5)
        nn.Flatten(),                                                      # (N, 400)
        nn.Linear(16 * 5 * 5, 120), act(),
        nn.Linear(120, 84), act(),
        nn.Linear(84, num_classes),
    )
