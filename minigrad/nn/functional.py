"""minigrad.nn.functional (imported as F): the differentiable functions behind the layers."""
from ..ops.elementwise import relu, sigmoid, tanh
from ..ops.shape import pad, flatten
from ..ops.nn import linear, softmax, log_softmax, dropout
from ..ops.loss import cross_entropy, mse_loss
from ..ops.norm import batch_norm
from ..ops.pool import max_pool2d, avg_pool2d, adaptive_avg_pool2d, global_avg_pool2d
from ..ops.conv import conv2d, conv_transpose2d
