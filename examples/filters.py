"""Hand-made convolution kernels applied with F.conv2d to real Fashion-MNIST images,
written as one PNG grid. The kernels are those of the course's lecture notes: the
identity, shift, box-blur and edge-detection filters that Lei Huang's CNN seminar
convolves a photo with (notes 001), and the Sobel and Prewitt operators that the notes
"卷积神经网络 (3)" give as kernels designed by hand, before back-propagation learned
them (notes 004).

    python examples/filters.py --out filters.png

Before networks learned their kernels, people designed them: identity, shift, box blur,
Laplacian edge detection, Sobel and Prewitt gradients. Each row of the grid is one image;
each column one kernel.
"""
import argparse
import os

import numpy as np

import minigrad as mg
import minigrad.nn.functional as F
from minigrad.data import load_fashion_mnist

KERNELS = {
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    "shift right": [[0, 0, 0], [1, 0, 0], [0, 0, 0]],     # correlation: out[i,j] = in[i,j-1]
    "box blur": np.full((3, 3), 1 / 9),
    "Laplacian": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    "Sobel x": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "Sobel y": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "Prewitt x": [[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]],
    "Prewitt y": [[-1, -1, -1], [0, 0, 0], [1, 1, 1]],
}


def apply_filters(images):
    """images (N, 1, H, W) -> (N, K, H, W): every kernel on every image, 'same' padding."""
    w = np.stack([np.asarray(k, np.float32) for k in KERNELS.values()])[:, None]   # (K, 1, 3, 3)
    return F.conv2d(mg.tensor(images), mg.tensor(w), padding="same").numpy()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--out", default="filters.png")
    p.add_argument("--images", type=int, default=4)
    args = p.parse_args(argv)
    try:
        import matplotlib
    except ImportError:
        raise SystemExit("filters.py needs matplotlib: pip install -e '.[examples]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, y = load_fashion_mnist(args.data, train=False)
    picks = [int(np.flatnonzero(y == c)[0]) for c in (0, 7, 8, 9, 3, 1)][:args.images]
    images = x[picks]
    out = apply_filters(images)
    names = list(KERNELS)
    fig, axes = plt.subplots(len(picks), len(names) + 1, figsize=(2 * (len(names) + 1), 2.1 * len(picks)))
    axes = np.atleast_2d(axes)
    for r in range(len(picks)):
        axes[r, 0].imshow(images[r, 0], cmap="gray")
        axes[r, 0].set_title("input" if r == 0 else "")
        for c, name in enumerate(names):
            a = axes[r, c + 1]
            fm = out[r, c]
            if name in ("identity", "shift right", "box blur"):
                a.imshow(fm, cmap="gray")
            else:
                lim = np.abs(fm).max() or 1
                a.imshow(fm, cmap="RdBu_r", vmin=-lim, vmax=lim)
            if r == 0:
                a.set_title(name)
    for a in axes.ravel():
        a.axis("off")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    fig.savefig(args.out, dpi=90)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
