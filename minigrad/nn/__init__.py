"""Layers (PyTorch's names): Module, Parameter, Sequential and the layer classes."""
from .module import Module, Parameter, Sequential
from .layers import (Linear, ReLU, Sigmoid, Tanh, Softmax, LogSoftmax, Flatten, Dropout,
                     BatchNorm1d, BatchNorm2d, CrossEntropyLoss, MSELoss)
from . import init
from .pooling import MaxPool2d, AvgPool2d, AdaptiveAvgPool2d
from .conv import Conv2d, ConvTranspose2d
from . import functional
from . import parallel
from .parallel.sync_batchnorm import SyncBatchNorm
