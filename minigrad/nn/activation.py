"""Activation layers beyond ReLU/Sigmoid/Tanh, Identity, Dropout2d and Softmax2d
(PyTorch's names, arguments and reprs). The math is in minigrad/ops/activation.py.

`inplace=True` is accepted wherever PyTorch accepts it and gives the same numbers;
minigrad computes the result out of place (see minigrad/ops/activation.py).
"""
from ..ops import activation as A
from ..ops import nn as N
from .layers import Dropout
from .module import Module


class Identity(Module):
    """y = x. Any constructor arguments are accepted and ignored (as in PyTorch), so it
    can stand in for a layer that takes arguments, e.g. `nn.Identity(54, unused=1)`."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


class _Inplace(Module):
    """An activation with PyTorch's `inplace` flag (accepted; computed out of place)."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = A._inplace_arg(type(self).__name__, inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class Hardtanh(_Inplace):
    """y = min(max(x, min_val), max_val); ∂L/∂x = δ where min_val < x < max_val."""

    def __init__(self, min_val=-1.0, max_val=1.0, inplace=False):
        super().__init__(inplace)
        self.min_val = A._number("Hardtanh", "min_val", min_val)
        self.max_val = A._number("Hardtanh", "max_val", max_val)
        if self.min_val > self.max_val:
            raise ValueError(f"Hardtanh(): min_val ({min_val}) must not exceed max_val ({max_val})")

    def forward(self, x):
        return A.hardtanh(x, self.min_val, self.max_val)

    def extra_repr(self):
        s = f"min_val={self.min_val}, max_val={self.max_val}"
        return s + (", inplace=True" if self.inplace else "")


class ReLU6(Hardtanh):
    """y = min(max(x, 0), 6) (MobileNetV2); ∂L/∂x = δ where 0 < x < 6."""

    def __init__(self, inplace=False):
        super().__init__(0.0, 6.0, inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class LeakyReLU(_Inplace):
    """y = x for x > 0, negative_slope · x otherwise (default slope 0.01)."""

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__(inplace)
        self.negative_slope = A._number("LeakyReLU", "negative_slope", negative_slope)

    def forward(self, x):
        return A.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class SiLU(_Inplace):
    """y = x · σ(x) (Swish); ∂y/∂x = σ(x)(1 + x(1 − σ(x)))."""

    def forward(self, x):
        return A.silu(x)


class Hardsigmoid(_Inplace):
    """y = relu6(x + 3) / 6; ∂L/∂x = δ/6 where −3 < x < 3."""

    def forward(self, x):
        return A.hardsigmoid(x)


class Hardswish(_Inplace):
    """y = x · relu6(x + 3) / 6 (MobileNetV3); see F.hardswish for the derivative."""

    def forward(self, x):
        return A.hardswish(x)


class GELU(Module):
    """y = x · Φ(x), Φ the standard normal CDF; approximate='tanh' uses
    ½ x (1 + tanh(√(2/π)(x + 0.044715 x³))) (see F.gelu)."""

    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = A.gelu_approximate_arg("GELU", approximate)

    def forward(self, x):
        return A.gelu(x, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Dropout2d(Dropout):
    """Channel dropout: in training, each channel plane x[n, c] is zeroed with probability
    p and the kept ones are scaled by 1/(1−p); the identity in eval mode (see F.dropout2d).
    Input (N, C, H, W), or (N, C, L)."""

    def forward(self, x):
        return N.dropout2d(x, self.p, self.training)


class Softmax2d(Module):
    """Softmax over the channels at every pixel: y[n, c, h, w] = e^x[n,c,h,w] / Σ_c' e^x[n,c',h,w].
    Input (N, C, H, W) or (C, H, W) (the softmax runs along dim −3)."""

    def forward(self, x):
        x = N.as_float_tensor(x, "Softmax2d", "input")
        if x.ndim not in (3, 4):
            raise ValueError(f"Softmax2d: input must be 3-d (C, H, W) or 4-d (N, C, H, W), "
                             f"got shape {x.shape}")
        return N.softmax(x, -3)
