"""The TensorFlow / Keras cells of the convolution lecture, run in minigrad with
channels-last data: layers.Conv2D and tf.nn.conv2d on an image batch x of shape [1, 32, 32, 3].

    python examples/lecture/keras_tf_cells.py

TensorFlow keeps the channels last: activations (N, H, W, C) and kernels
(F_h, F_w, C_in, C_out). minigrad computes in PyTorch's (N, C, H, W) layout;
data_format="channels_last" lets it take TensorFlow's tensors as they are (the axes are
moved on the way in and out; the numbers are the same). The notes' cells and outputs:

    layers.Conv2D(4, kernel_size=5, strides=1, padding='valid')   -> [1, 28, 28, 4]
    layers.Conv2D(4, kernel_size=5, strides=1, padding='same')    -> [1, 32, 32, 4]
    layers.Conv2D(4, kernel_size=5, strides=2, padding='same')    -> [1, 16, 16, 4]
    layer.kernel: shape (5, 5, 3, 4);  layer.bias: shape (4,), zeros in Keras
    tf.nn.conv2d(x, w, strides=1, padding='VALID')                -> [1, 28, 28, 4]
    tf.nn.conv2d(x, w, strides=2, padding='VALID')                -> [1, 14, 14, 4]

'same' follows TensorFlow for every stride: out = ⌈in / S⌉, so 32 → 16 at stride 2.
"""
import numpy as np

import minigrad as mg
import minigrad.nn as nn
import minigrad.nn.functional as F


def main():
    mg.manual_seed(0)
    x = mg.randn(1, 32, 32, 3)                              # x = tf.random.normal([1, 32, 32, 3])
    out = {}
    for stride, padding in ((1, "valid"), (1, "same"), (2, "same")):
        # layers.Conv2D(4, kernel_size=5, strides=stride, padding=padding)
        layer = nn.Conv2d(3, 4, kernel_size=5, stride=stride, padding=padding,
                          data_format="channels_last")
        y = layer(x)
        print(f"Conv2D(4, kernel_size=5, strides={stride}, padding='{padding}') -> {list(y.shape)}")
        out[("Conv2D", stride, padding)] = tuple(y.shape)
    print(f"layer.kernel shape {tuple(layer.weight.shape)}; layer.bias shape {tuple(layer.bias.shape)} "
          f"(minigrad starts the bias at small random values, as PyTorch does; Keras at zeros)")
    out["kernel"], out["bias"] = tuple(layer.weight.shape), tuple(layer.bias.shape)

    w = mg.randn(5, 5, 3, 4)                                # w = tf.random.normal([5, 5, 3, 4])
    b = mg.zeros(4)                                         # b = tf.zeros([4])
    for stride in (1, 2):
        y = F.conv2d(x, w, stride=stride, padding="valid", data_format="channels_last")
        print(f"tf.nn.conv2d(x, w, strides={stride}, padding='VALID') -> {list(y.shape)}")
        out[("tf.nn.conv2d", stride)] = tuple(y.shape)
        if stride == 1:
            print(f"out + b -> {list((y + b).shape)}")
            out["plus_bias"] = tuple((y + b).shape)

    # the same numbers as channels-first: move the axes by hand and compare
    y_last = F.conv2d(x, w, stride=2, padding="same", data_format="channels_last").numpy()
    y_first = F.conv2d(x.permute(0, 3, 1, 2), w.permute(3, 2, 0, 1), stride=2, padding="same").numpy()
    diff = float(np.abs(y_last - y_first.transpose(0, 2, 3, 1)).max())
    print(f"channels-last vs channels-first (axes moved by hand): largest difference {diff:g}")
    out["max_difference"] = diff
    return out


if __name__ == "__main__":
    main()
