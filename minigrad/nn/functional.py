"""minigrad.nn.functional (imported as F): the differentiable functions behind the layers."""
from ..ops.elementwise import sigmoid, tanh, add_relu
from ..ops.activation import (relu, relu6, hardtanh, leaky_relu, silu, gelu, hardsigmoid,
                              hardswish)
from ..ops.shape import pad, flatten
from ..ops.nn import linear, softmax, log_softmax, dropout, dropout2d
from ..ops.loss import cross_entropy, mse_loss, nll_loss, one_hot
from ..ops.norm import batch_norm, batch_norm_relu, batch_norm_add_relu
from ..ops.lrn import local_response_norm
from ..ops.group_norm import group_norm
from ..ops.resize import interpolate
from ..ops.pool import (max_pool2d, avg_pool2d, adaptive_avg_pool2d, adaptive_max_pool2d,
                        global_avg_pool2d)
from ..ops.conv import conv2d, conv_transpose2d
