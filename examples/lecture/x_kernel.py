"""A 3×3 X-shaped kernel sliding over a 5×5 binary image: the first worked example of
the convolution lecture.

    python examples/lecture/x_kernel.py

The kernel
    1 0 1
    0 1 0
    1 0 1
is laid on the top-left 3×3 window of the image, each pixel is multiplied by the kernel
entry over it ("1x1 1x0 1x1 ..." in the notes) and the nine products are added: 4. Moving
one pixel at a time (stride 1, no padding) gives a 3×3 result, (5 − 3)/1 + 1 = 3.

With three input channels holding the same image and the same kernel on each, every
output is the sum over the channels: the notes' "4+4+4, 3+3+3, 4+4+4" row, i.e. 12 9 12.
"""
import os
import sys

import numpy as np

import minigrad as mg
import minigrad.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _show import show  # noqa: E402

IMAGE = np.array([[1, 1, 1, 0, 0],
                  [0, 1, 1, 1, 0],
                  [0, 0, 1, 1, 1],
                  [0, 0, 1, 1, 0],
                  [0, 1, 1, 0, 0]], np.float32)
X_KERNEL = np.array([[1, 0, 1],
                     [0, 1, 0],
                     [1, 0, 1]], np.float32)
NOTES_RESULT = [[4, 3, 4], [2, 4, 3], [2, 3, 4]]                     # the notes' 3×3 output
NOTES_THREE_CHANNELS = [[4 + 4 + 4, 3 + 3 + 3, 4 + 4 + 4], [6, 12, 9], [6, 9, 12]]


def main():
    show("image (5×5):", IMAGE)
    show("kernel (3×3, an X):", X_KERNEL)

    # the first window, product by product, as the notes write it
    window = IMAGE[:3, :3]
    terms = [f"{int(a)}x{int(k)}" for a, k in zip(window.ravel(), X_KERNEL.ravel())]
    print("top-left window:", " + ".join(terms), "=", int((window * X_KERNEL).sum()))

    x = mg.tensor(IMAGE[None, None])                      # (N, C, H, W) = (1, 1, 5, 5)
    w = mg.tensor(X_KERNEL[None, None])                   # (K, C, F_h, F_w) = (1, 1, 3, 3)
    y = F.conv2d(x, w).numpy()[0, 0]                      # (3, 3)
    show("F.conv2d(image, kernel), stride 1, no padding:", y)

    x3 = mg.tensor(np.repeat(IMAGE[None, None], 3, axis=1))         # (1, 3, 5, 5)
    w3 = mg.tensor(np.repeat(X_KERNEL[None, None], 3, axis=1))      # (1, 3, 3, 3)
    y3 = F.conv2d(x3, w3).numpy()[0, 0]
    show("three channels, one kernel per channel, summed over the channels:", y3)
    return {"result": y, "three_channels": y3}


if __name__ == "__main__":
    main()
