"""How big is the output of a convolution? (N − F + 2P)/S + 1, checked on the notes' cases,
and how many parameters a convolution layer has.

    python examples/lecture/output_sizes.py

An N×N input, an F×F kernel, stride S and P zeros of padding on every side give an
output of (N − F + 2P)/S + 1 along each axis (rounded down when S does not divide
N − F + 2P: the last rows and columns the kernel cannot reach are dropped, as Torch7's
floor((width + 2·padW − kW)/dW + 1) says). Each case below runs a real F.conv2d and
compares its output shape with the formula and with the number in the notes.

A layer with K filters of F×F over D input channels has F·F·D weights per filter plus
one bias each: (F·F·D + 1)·K parameters.
"""
import numpy as np

import minigrad as mg
import minigrad.nn as nn
import minigrad.nn.functional as F

# (what the notes say, N, F, S, padding, the notes' output size)
CASES = [
    ("7×7 input, 3×3 filter, stride 1", 7, 3, 1, 0, 5),
    ("7×7 input, 3×3 filter, stride 2", 7, 3, 2, 0, 3),
    ("7×7 input, 3×3 filter, stride 1, pad 1 ('preserved size')", 7, 3, 1, 1, 7),
    ("'same' convolution: 9×9 input, 3×3, stride 1, pad 1", 9, 3, 1, 1, 9),
    ("'valid' convolution: 9×9 input, 3×3, stride 1, pad 0", 9, 3, 1, 0, 7),
    ("'same' padding by name: 9×9 input, 3×3, stride 1", 9, 3, 1, "same", 9),
    ("'valid' padding by name: 9×9 input, 3×3, stride 1", 9, 3, 1, "valid", 7),
    ("32×32×3 input, ten 5×5 filters, stride 1, pad 2", 32, 5, 1, 2, 32),
]


def formula(N, F_, S, P):
    """(N − F + 2P)/S + 1, rounded down."""
    return (N - F_ + 2 * P) // S + 1


def main():
    sizes = []
    for text, N, F_, S, P, notes in CASES:
        x = mg.zeros(1, 1, N, N)
        y = F.conv2d(x, mg.zeros(1, 1, F_, F_), stride=S, padding=P)
        p = {"same": (F_ - 1) // 2, "valid": 0}.get(P, P)
        print(f"{text}: (N − F + 2P)/S + 1 = ({N} − {F_} + 2·{p})/{S} + 1 = {formula(N, F_, S, p)}; "
              f"F.conv2d gives {y.shape[-2]}×{y.shape[-1]}; the notes say {notes}")
        sizes.append((y.shape[-2], y.shape[-1], formula(N, F_, S, p), notes))

    layer = nn.Conv2d(3, 10, 5, stride=1, padding=2)
    out = layer(mg.zeros(1, 3, 32, 32))
    n_params = sum(p.size for p in layer.parameters())
    print(f"32×32×3 through ten 5×5 filters, stride 1, pad 2: output {tuple(out.shape)} (N, K, H, W); "
          f"each filter 5·5·3 + 1 = {5 * 5 * 3 + 1} parameters, × 10 = {n_params} (weight "
          f"{tuple(layer.weight.shape)}, bias {tuple(layer.bias.shape)})")

    # seed 000's 'For instance': x [b, 28, 28, 3], sixteen 3×3×3 kernels, stride 1, padding 1
    b = 2
    inst = nn.Conv2d(3, 16, 3, stride=1, padding=1)
    y = inst(mg.zeros(b, 3, 28, 28))
    print(f"x: [b, 28, 28, 3], multi-k [16, 3, 3, 3], stride 1, padding 1, bias [16] -> out "
          f"[b, {y.shape[2]}, {y.shape[3]}, {y.shape[1]}] (b = {b}; minigrad holds it as {tuple(y.shape)})")
    return {"sizes": sizes, "params_760": n_params, "layer_out": tuple(out.shape),
            "instance_out": tuple(y.shape), "instance_weight": tuple(inst.weight.shape),
            "instance_bias": tuple(inst.bias.shape)}


if __name__ == "__main__":
    main()
