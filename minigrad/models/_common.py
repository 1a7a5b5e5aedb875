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


def init_conv_bn(model, zero_init_residual=False):
    """He initialisation for convolutions (kaiming_normal_, fan_out, ReLU gain), γ = 1 and
    β = 0 for batch norm, as in the ResNet paper and torchvision. zero_init_residual sets
    γ = 0 in the last BN of each residual block, so that the block starts as the identity."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    if zero_init_residual:
        for m in model.modules():
            last = getattr(m, "bn3", None) if hasattr(m, "conv3") else getattr(m, "bn2", None)
            if last is not None and hasattr(m, "downsample"):
                nn.init.zeros_(last.weight)
