"""Lazy layers: LazyConv2d, LazyLinear, LazyBatchNorm1d/2d infer their input size at the first
call (PyTorch's names and behaviour), so a model can be written without working out
in_channels/in_features by hand, as the d2l textbook does:

    net = nn.Sequential(nn.LazyConv2d(6, 5, padding=2), nn.Sigmoid(), ..., nn.LazyLinear(10))
    net(mg.zeros(1, 1, 28, 28))              # a dry run creates every parameter
    opt = mg.optim.SGD(net.parameters(), lr=0.9)

Before the first call each parameter is an UninitializedParameter: parameters() yields
it (so an optimizer built before the dry run holds the very objects that are filled in
later), but its shape is unknown and reading it raises. The first call reads the size
from the input (in_channels = x.shape[-3], in_features = x.shape[-1], num_features =
x.shape[1]), builds the non-lazy layer with it — the same constructor, so the same
initialisation, drawing from minigrad's generator at that moment — moves its values into
the existing Parameter objects, and turns the module into that layer
(type(m) becomes Conv2d / Linear / BatchNorm2d, as in PyTorch).

Not supported (documented refusals): load_state_dict into a module that has not run
yet (run the dry forward first; PyTorch can materialise from the state dict's shapes).
"""
import numpy as np

from .. import random as _random
from ..tensor import Tensor
from .conv import Conv2d
from .layers import BatchNorm1d, BatchNorm2d, Linear
from .module import Module, Parameter


class UninitializedParameter(Parameter):
    """A Parameter whose shape a lazy layer has not inferred yet (torch's
    nn.UninitializedParameter). It holds an empty array of the layer's dtype; its
    shape raises until the layer's first call, when it becomes a plain Parameter in
    place (same object, so optimizers and other references see the new values)."""

    def __init__(self, requires_grad=True, device=None, dtype=None):
        super().__init__(np.empty(0, np.float32 if dtype is None else dtype), requires_grad)

    @property
    def shape(self):
        raise RuntimeError("Can't access the shape of an uninitialized parameter: its lazy layer "
                           "infers it at the first call. Run a forward pass (a dry run) first.")

    def materialize(self, data):
        """Take `data` (an ndarray) as the values and become a plain Parameter."""
        self.data = data
        self.grad = None
        self.__class__ = Parameter

    def __repr__(self):
        return "<UninitializedParameter>"


def _keep_generator(build):
    """build() with minigrad's generator restored afterwards: argument checking by the
    non-lazy constructor must not consume random numbers the real initialisation uses."""
    rng = _random.generator()
    state = rng.bit_generator.state
    try:
        return build()
    finally:
        rng.bit_generator.state = state


class _LazyMixin(Module):
    """Shared by the lazy layers. A subclass sets cls_to_become, _size_attr (the inferred
    constructor argument), _copied (attributes taken over from the built layer) and
    writes _build(size) and _infer(x). (A Module itself, so that a lazy layer's memory
    layout is its layer's and __class__ can become the layer.)"""

    cls_to_become = None
    _copied = ()

    def has_uninitialized_params(self):
        """True until the first call has created the parameters."""
        return any(isinstance(p, UninitializedParameter) for p in self._parameters.values())

    def reset_parameters(self):
        """A no-op until the parameters exist; then the non-lazy layer's reset."""
        reset = getattr(self.cls_to_become, "reset_parameters", None)
        if reset is not None and not self.has_uninitialized_params():
            reset(self)

    def initialize_parameters(self, x):
        """Infer the size from x, build the non-lazy layer and become it."""
        size = self._infer(x)
        name = type(self).__name__
        try:
            ref = self._build(size)
        except (TypeError, ValueError) as e:
            raise type(e)(f"{name}: the input of shape {tuple(x.shape)} gives "
                          f"{self._size_attr}={size}, which {self.cls_to_become.__name__} refuses: {e}") from None
        # the uninitialised parameters carry the dtype (the constructor's, or one a
        # .double()/.to(dtype) gave them before the first call): the values follow it
        dtype = next((p.data.dtype for p in self._parameters.values()
                      if isinstance(p, UninitializedParameter)), None)
        for pname, p in ref._parameters.items():
            mine = self._parameters.get(pname)
            if p is not None and isinstance(mine, UninitializedParameter):
                mine.materialize(p.data.astype(mine.data.dtype, copy=False))
        self._buffers.clear()
        for bname, b in ref._buffers.items():
            if dtype is not None and b is not None and b.dtype.kind == "f":
                b = b.astype(dtype, copy=False)
            self._buffers[bname] = b
        for attr in (self._size_attr,) + self._copied:
            object.__setattr__(self, attr, getattr(ref, attr))
        self.__class__ = self.cls_to_become

    def forward(self, x, *args, **kwargs):
        self.initialize_parameters(x)
        return self.forward(x, *args, **kwargs)           # now the non-lazy layer's forward


def _input_of(name, x, ndims):
    if not isinstance(x, Tensor) and not hasattr(x, "shape"):
        raise TypeError(f"{name}: expected a Tensor input, got {type(x).__name__}")
    if len(x.shape) not in ndims:
        raise ValueError(f"{name}: expected a {' or '.join(map(str, ndims))}-d input, got shape "
                         f"{tuple(x.shape)}")
    return x


class LazyConv2d(_LazyMixin, Conv2d):
    """Conv2d whose in_channels is inferred from the first input (x.shape[-3], for
    (N, C, H, W) or (C, H, W)). Arguments as Conv2d without in_channels; in_channels
    reads 0 until the first call. Initialised as Conv2d: U(±1/√fan_in) for weight and bias."""

    cls_to_become = Conv2d
    _size_attr = "in_channels"

    def __init__(self, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True):
        Module.__init__(self)
        self._args = (out_channels, kernel_size, stride, padding, dilation, groups, bias)
        # the arguments are checked now, by Conv2d itself, with a stand-in in_channels
        probe = _keep_generator(lambda: Conv2d(groups if isinstance(groups, int) and groups > 0 else 1,
                                               *self._args))
        for attr in ("out_channels", "kernel_size", "stride", "padding", "dilation", "groups",
                     "output_padding", "data_format"):
            object.__setattr__(self, attr, getattr(probe, attr))
        self.in_channels = 0
        self.weight = UninitializedParameter()
        if bias:
            self.bias = UninitializedParameter()
        else:
            self.register_parameter("bias", None)

    def _infer(self, x):
        return int(_input_of("LazyConv2d", x, (3, 4)).shape[-3])

    def _build(self, in_channels):
        return Conv2d(in_channels, *self._args)


class LazyLinear(_LazyMixin, Linear):
    """Linear whose in_features is inferred from the first input (x.shape[-1]).
    Arguments as Linear without in_features; in_features reads 0 until the first call.
    Initialised as Linear: W ~ U(±1/√in_features), b ~ U(±1/√in_features)."""

    cls_to_become = Linear
    _size_attr = "in_features"

    def __init__(self, out_features, bias=True, dtype=None):
        Module.__init__(self)
        self._args = (out_features, bias, dtype)
        probe = _keep_generator(lambda: Linear(0, out_features, bias, dtype))
        self.out_features = probe.out_features
        self.in_features = 0
        self.weight = UninitializedParameter(dtype=probe.weight.dtype)
        if bias:
            self.bias = UninitializedParameter(dtype=probe.weight.dtype)
        else:
            self.register_parameter("bias", None)

    def _infer(self, x):
        x = _input_of("LazyLinear", x, range(1, 64))
        return int(x.shape[-1])

    def _build(self, in_features):
        out_features, bias, dtype = self._args
        return Linear(in_features, out_features, bias, dtype)


class _LazyBatchNorm(_LazyMixin):
    """Shared by LazyBatchNorm1d/2d: num_features = x.shape[1] at the first call."""

    _size_attr = "num_features"

    def __init__(self, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, dtype=None):
        Module.__init__(self)
        self._args = (eps, momentum, affine, track_running_stats, dtype)
        probe = _keep_generator(lambda: self.cls_to_become(1, *self._args))
        for attr in ("eps", "momentum", "affine", "track_running_stats"):
            object.__setattr__(self, attr, getattr(probe, attr))
        self.num_features = 0
        if self.affine:
            self.weight = UninitializedParameter(dtype=probe.weight.dtype)
            self.bias = UninitializedParameter(dtype=probe.weight.dtype)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def _infer(self, x):
        return int(_input_of(type(self).__name__, x, self.cls_to_become._ndims).shape[1])

    def _build(self, num_features):
        return self.cls_to_become(num_features, *self._args)


class LazyBatchNorm1d(_LazyBatchNorm, BatchNorm1d):
    """BatchNorm1d whose num_features is inferred from the first input (x.shape[1] of
    (N, C) or (N, C, L)), as in the d2l BatchNorm-LeNet. Otherwise as LazyBatchNorm2d."""

    cls_to_become = BatchNorm1d


class LazyBatchNorm2d(_LazyBatchNorm, BatchNorm2d):
    """BatchNorm2d whose num_features is inferred from the first input (x.shape[1] of
    (N, C, H, W)). Arguments as BatchNorm2d without num_features; num_features reads 0
    and the running statistics do not exist until the first call. γ = 1, β = 0,
    running_mean = 0, running_var = 1, as BatchNorm2d."""

    cls_to_become = BatchNorm2d
