"""Layers (PyTorch's names): Module, Parameter, Sequential and the layer classes."""
from .module import Module, Parameter, Sequential
from .container import ModuleList, ModuleDict
from .layers import (Linear, ReLU, Sigmoid, Tanh, Softmax, LogSoftmax, Flatten, Dropout,
                     BatchNorm1d, BatchNorm2d, CrossEntropyLoss, MSELoss, NLLLoss, bn_relu,
                     add_relu, bn_add_relu)
from .activation import (Identity, ReLU6, LeakyReLU, Hardtanh, SiLU, GELU, Hardsigmoid,
                         Hardswish, Dropout2d, Softmax2d)
from .normalization import LocalResponseNorm, GroupNorm
from .upsampling import Upsample, UpsamplingNearest2d, UpsamplingBilinear2d
from . import init
from . import utils
from .pooling import MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, AdaptiveMaxPool2d
from .conv import Conv2d, ConvTranspose2d
from .chain import conv_norm_chain
from .lazy import (LazyConv2d, LazyLinear, LazyBatchNorm1d, LazyBatchNorm2d,
                   UninitializedParameter)
from . import functional
from . import parallel
from .parallel.sync_batchnorm import SyncBatchNorm
