"""Helpers shared by the model definitions: argument checks and the usual initialisation."""
import numbers

from .. import nn


def check_model_args(fn, num_classes, in_channels):
    """Raise a clear error unless num_classes and in_channels are positive ints."""
    for name, v in (("num_classes", num_classes), ("in_channels", in_channels)):
        if not isinstance(v, numbers.Integral) or isinstance(v, bool):
            raise TypeError(f"{fn}(): {name} must be an int, got {v!r}")
        if v < 1:
            raise ValueError(f"{fn}(): {name} must be at least 1, got {v}")


def init_weights(model, conv_mode="fan_out", linear_std=None, zero_linear_bias=False,
                 zero_init_residual=False):
    """The initialisations of the papers (and torchvision), in one place.

    Convolutions: He's kaiming_normal_ for ReLU networks, std = √2/√fan with fan =
    C·F_h·F_w of the input (conv_mode='fan_in') or of the output ('fan_out'); biases 0.
    Batch norm: γ = 1, β = 0. Linear: weights from N(0, linear_std²) when linear_std is
    given (VGG, MobileNetV2), else kept; biases 0 when zero_linear_bias.
    zero_init_residual sets γ = 0 in the last BN of each residual block (the one before
    the addition), so that every block starts as the identity.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode=conv_mode, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            if linear_std is not None:
                nn.init.normal_(m.weight, 0.0, linear_std)
            if zero_linear_bias and m.bias is not None:
                nn.init.zeros_(m.bias)
    if zero_init_residual:
        for m in model.modules():
            last = getattr(m, "bn3", None) if hasattr(m, "conv3") else getattr(m, "bn2", None)
            if last is not None and hasattr(m, "downsample"):
                nn.init.zeros_(last.weight)
