"""Layers (PyTorch's names): Module, Parameter, Sequential and the layer classes."""
from .module import Module, Parameter, Sequential
from .container import ModuleList, ModuleDict
from .layers import (Linear, ReLU, Sigmoid, Tanh, Softmax, LogSoftmax, Flatten, Dropout,
                     BatchNorm1d, BatchNorm2d, CrossEntropyLoss, MSELoss)
from .activation import (Identity, ReLU6, LeakyReLU, Hardtanh, SiLU, GELU, Dropout2d,
                         Softmax2d)
from . import init
from .pooling import MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, AdaptiveMaxPool2d
from .conv import Conv2d, ConvTranspose2d
from . import functional
