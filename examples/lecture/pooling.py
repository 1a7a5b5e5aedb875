"""Max pooling and average pooling of a 4×4 slice with 2×2 windows and stride 2, forward
and backward.

    python examples/lecture/pooling.py

Forward: each 2×2 window becomes one number, its maximum or its mean, so a 4×4 slice
becomes 2×2 (no parameters to learn).
Backward (the residual handed to the layer before):
    max pooling      δ goes to the one input that won its window, 0 to the other three
                     ("upsample(δ)");
    average pooling  every input of a window gets δ / (m·n) = δ / 4.

About the notes' numbers: the text of the notes keeps only the average-pooling output,
4.25 5.25 / 2 2, not the 4×4 slice it came from. The slice below is the classic one of
the max-pooling slide the notes reproduce ("Single depth slice", "max pool with 2x2
filters and stride 2"; max 6 8 / 3 4); averaged it gives 5.25, 2 and 2 for three windows, but 3.25 for the top-left one (1 + 1 + 5 + 6 = 13, /4): the notes' 4.25
needs a window summing to 17, so their average-pooling figure must start from a
different top-left window.
"""
import os
import sys

import numpy as np

import minigrad as mg
import minigrad.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _show import show  # noqa: E402

SLICE = np.array([[1, 1, 2, 4],
                  [5, 6, 7, 8],
                  [3, 2, 1, 0],
                  [1, 2, 3, 4]], np.float64)
NOTES_AVG = [[4.25, 5.25], [2, 2]]          # printed in the notes (average pool, 2×2, stride 2)


def main():
    show("single depth slice (4×4):", SLICE)
    x = mg.tensor(SLICE[None, None], requires_grad=True)
    y_max = F.max_pool2d(x, 2, stride=2)
    show("max pool, 2×2 windows, stride 2:", y_max.numpy()[0, 0])
    x_avg = mg.tensor(SLICE[None, None], requires_grad=True)
    y_avg = F.avg_pool2d(x_avg, 2, stride=2)
    show("average pool, 2×2 windows, stride 2:", y_avg.numpy()[0, 0])
    show("the notes print:", np.asarray(NOTES_AVG))

    δ = np.array([[1.0, 2.0], [3.0, 4.0]])
    y_max.backward(δ[None, None])
    y_avg.backward(δ[None, None])
    show("δ arriving from above (2×2):", δ)
    show("max pool backward: δ routed to each window's winner (upsample):", x.grad.numpy()[0, 0])
    show("average pool backward: δ / 4 spread over each window:", x_avg.grad.numpy()[0, 0])
    return {"max": y_max.numpy()[0, 0], "avg": y_avg.numpy()[0, 0],
            "max_grad": x.grad.numpy()[0, 0], "avg_grad": x_avg.grad.numpy()[0, 0], "delta": δ}


if __name__ == "__main__":
    main()
