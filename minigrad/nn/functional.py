"""minigrad.nn.functional (imported as F): the differentiable functions behind the layers."""
from ..ops.elementwise import relu, sigmoid, tanh
from ..ops.shape import pad, flatten
from ..ops.conv import conv2d, conv_transpose2d
