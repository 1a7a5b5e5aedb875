"""Pooling layers: MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, AdaptiveMaxPool2d (PyTorch's
names and arguments).

They hold no parameters; each forwards to the function of the same name in
minigrad.nn.functional (minigrad/ops/pool.py has the math). The arguments are validated
when the layer is built, so a wrong kernel or padding fails at model definition, not
at the first batch.
"""
from ..ops.pool import (adaptive_avg_pool2d, adaptive_max_pool2d, adaptive_output_size, avg_pool2d,
                        bool_arg, divisor_arg, max_pool2d, pool_args)
from .module import Module


class MaxPool2d(Module):
    """y = max over each kernel_size window (see F.max_pool2d).

    MaxPool2d(2) halves H and W, as in LeNet-5; MaxPool2d(3, stride=2) overlaps its
    windows, as in AlexNet.
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__()
        pool_args("MaxPool2d", kernel_size, stride, padding, dilation)
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.dilation = dilation
        self.return_indices = bool_arg("MaxPool2d", "return_indices", return_indices)
        self.ceil_mode = bool_arg("MaxPool2d", "ceil_mode", ceil_mode)

    def forward(self, x):
        return max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                          self.ceil_mode, self.return_indices)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding!r}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """y = the mean over each kernel_size window (see F.avg_pool2d for the divisor rules)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__()
        pool_args("AvgPool2d", kernel_size, stride, padding)
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.ceil_mode = bool_arg("AvgPool2d", "ceil_mode", ceil_mode)
        self.count_include_pad = bool_arg("AvgPool2d", "count_include_pad", count_include_pad)
        self.divisor_override = divisor_arg("AvgPool2d", divisor_override)

    def forward(self, x):
        return avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                          self.count_include_pad, self.divisor_override)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding!r}"


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size; AdaptiveAvgPool2d(1) is the global average
    pool that ends ResNet (see F.adaptive_avg_pool2d)."""

    def __init__(self, output_size):
        super().__init__()
        adaptive_output_size("AdaptiveAvgPool2d", output_size)
        self.output_size = output_size

    def forward(self, x):
        return adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveMaxPool2d(Module):
    """Max pooling to a fixed output size, PyTorch's windows for any size (see
    F.adaptive_max_pool2d); with return_indices=True the call returns (y, indices)."""

    def __init__(self, output_size, return_indices=False):
        super().__init__()
        adaptive_output_size("AdaptiveMaxPool2d", output_size)
        self.output_size = output_size
        self.return_indices = bool_arg("AdaptiveMaxPool2d", "return_indices", return_indices)

    def forward(self, x):
        return adaptive_max_pool2d(x, self.output_size, self.return_indices)

    def extra_repr(self):
        return f"output_size={self.output_size}"
