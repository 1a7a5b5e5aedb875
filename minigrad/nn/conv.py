"""Convolution layers: nn.Conv2d and nn.ConvTranspose2d (PyTorch's arguments, init and repr)."""
import math
import numbers

import numpy as np

from .. import random as _random
from ..ops._args import int_arg, pair
from ..ops.conv import conv2d, conv_transpose2d
from ..ops.layout import is_channels_last
from .module import Module, Parameter


def _positive(v, cls, name):
    v = int_arg(v, cls, name)
    if v < 1:
        raise ValueError(f"{cls}(): {name} must be positive, got {v}")
    return v


def _uniform(shape, bound):
    """float32 samples from U(−bound, bound), from minigrad's generator (mg.manual_seed)."""
    return _random.generator().uniform(-bound, bound, size=shape).astype(np.float32)


class _ConvNd(Module):
    """Shared by Conv2d and ConvTranspose2d: argument checks, parameters, init, repr."""

    def __init__(self, cls, in_channels, out_channels, kernel_size, stride, padding,
                 dilation, groups, bias, weight_shape_fn, output_padding=(0, 0)):
        super().__init__()
        self.in_channels = _positive(in_channels, cls, "in_channels")
        self.out_channels = _positive(out_channels, cls, "out_channels")
        self.groups = _positive(groups, cls, "groups")
        if self.in_channels % self.groups:
            raise ValueError(f"{cls}(): in_channels={in_channels} must be divisible by "
                             f"groups={groups}")
        if self.out_channels % self.groups:
            raise ValueError(f"{cls}(): out_channels={out_channels} must be divisible by "
                             f"groups={groups}")
        self.kernel_size = pair(kernel_size, cls, "kernel_size", 1)
        self.stride = pair(stride, cls, "stride", 1)
        self.dilation = pair(dilation, cls, "dilation", 1)
        self.padding = padding
        self.output_padding = output_padding
        shape = weight_shape_fn(self.in_channels, self.out_channels, self.groups, self.kernel_size)
        # PyTorch's reset_parameters: kaiming_uniform_(w, a=√5) gives the bound
        # gain·√(3/fan_in) with gain = √(2/(1+a²)) = √(1/3), i.e. 1/√fan_in; the bias
        # is U(±1/√fan_in) too. fan_in = weight.shape[1]·kh·kw.
        fan_in = shape[1] * shape[2] * shape[3]
        bound = 1.0 / math.sqrt(fan_in)
        self.weight = Parameter(_uniform(shape, bound))
        if bias:
            self.bias = Parameter(_uniform((self.out_channels,), bound))
        else:
            self.register_parameter("bias", None)

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.output_padding != (0, 0):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if getattr(self, "data_format", "channels_first") != "channels_first":
            s += f", data_format={self.data_format!r}"
        return s


class Conv2d(_ConvNd):
    """y = conv2d(x, weight, bias): weight (out, in/groups, kh, kw), bias (out,).

    padding: an int, a pair, 'valid' or 'same' (TensorFlow's, for every stride).
    data_format='channels_last': x (N, H, W, C) -> (N, OH, OW, K) and weight
    (kh, kw, in/groups, out), as Keras's layers.Conv2D holds its kernel.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, data_format="channels_first"):
        cls = "Conv2d"
        if isinstance(padding, str):
            if padding not in ("valid", "same"):
                raise ValueError(f"{cls}(): padding must be an int, a pair, 'valid' or 'same', "
                                 f"got {padding!r}")
        else:
            padding = pair(padding, cls, "padding", 0)
        super().__init__(cls, in_channels, out_channels, kernel_size, stride, padding,
                         dilation, groups, bias,
                         lambda i, o, g, k: (o, i // g) + k)
        self.data_format = "channels_last" if is_channels_last(cls, data_format) else "channels_first"
        if self.data_format == "channels_last":     # the same init, stored (kh, kw, in/groups, out)
            self.weight = Parameter(np.ascontiguousarray(self.weight.data.transpose(2, 3, 1, 0)))

    def forward(self, x):
        m = self._member                                    # (self.weight, self.bias, faster)
        return conv2d(x, m("_parameters", "weight"), m("_parameters", "bias"), self.stride,
                      self.padding, self.dilation, self.groups, self.data_format)


class ConvTranspose2d(_ConvNd):
    """y = conv_transpose2d(x, weight, bias): weight (in, out/groups, kh, kw), bias (out,).

    forward(x, output_size=None): output_size (H, W) (or with leading N, C) picks the
    output_padding that gives that size, as in PyTorch.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1):
        cls = "ConvTranspose2d"
        if isinstance(padding, str):
            raise ValueError(f"{cls}(): padding must be an int or a pair, got {padding!r}")
        padding = pair(padding, cls, "padding", 0)
        output_padding = pair(output_padding, cls, "output_padding", 0)
        super().__init__(cls, in_channels, out_channels, kernel_size, stride, padding,
                         dilation, groups, bias,
                         lambda i, o, g, k: (i, o // g) + k, output_padding)
        for a in (0, 1):
            if self.output_padding[a] >= max(self.stride[a], self.dilation[a]):
                raise ValueError(f"{cls}(): output_padding {self.output_padding} must be "
                                 f"smaller than either stride {self.stride} or dilation "
                                 f"{self.dilation}")

    def _output_padding(self, x, output_size):
        if output_size is None:
            return self.output_padding
        size = tuple(output_size)
        if len(size) not in (2, 3, 4) or not all(isinstance(s, numbers.Integral) for s in size):
            raise ValueError(f"ConvTranspose2d: output_size must be (H, W), optionally with "
                             f"leading batch/channel sizes, got {output_size!r}")
        size = size[-2:]
        hw = tuple(x.shape[-2:])
        op = []
        for a in (0, 1):
            smallest = ((hw[a] - 1) * self.stride[a] - 2 * self.padding[a]
                        + self.dilation[a] * (self.kernel_size[a] - 1) + 1)
            extra = size[a] - smallest
            if not 0 <= extra < max(self.stride[a], self.dilation[a]):
                raise ValueError(
                    f"ConvTranspose2d: requested output size {tuple(size)} is not reachable "
                    f"from input {tuple(x.shape)}: each side must be in "
                    f"[{smallest}, {smallest + max(self.stride[a], self.dilation[a]) - 1}]")
            op.append(extra)
        return tuple(op)

    def forward(self, x, output_size=None):
        return conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                self._output_padding(x, output_size), self.groups,
                                self.dilation)
