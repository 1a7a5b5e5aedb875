"""Layers (PyTorch's names): Module, Parameter, Sequential and the layer classes."""
from .module import Module, Parameter, Sequential
from .conv import Conv2d, ConvTranspose2d
from . import functional
