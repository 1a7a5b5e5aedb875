"""PNG plots of a trained LeNet-5: learning curves, the first-layer filters, and the
feature-map "pyramid" of one test image (1×28×28 → 6×28×28 → 6×14×14 → 16×10×10 → 16×5×5).

examples/lenet.py writes them after training with --plots DIR; this script draws them
from a checkpoint that `lenet.py --save` wrote:

    python examples/lenet.py --epochs 2 --save lenet.npz
    python examples/plots.py lenet.npz --out plots            # curves.png, filters.png, feature_maps.png
    python examples/plots.py lenet.npz --image 7              # another test image's feature maps

Needs matplotlib and the Fashion-MNIST files (apt-get install -y dataset-fashion-mnist).
"""
import argparse
import os
import sys

import numpy as np

import minigrad as mg


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise SystemExit("--plots needs matplotlib: pip install -e '.[examples]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def write_plots(out_dir, model, history, x_test, y_test, mean, std, classes, image=0):
    """Write curves.png (when there is a history), filters.png and feature_maps.png to
    out_dir; returns their paths. x_test is standardised ((x − mean)/std), (N, 1, 28, 28)."""
    plt = _pyplot()
    os.makedirs(out_dir, exist_ok=True)
    written = []

    # 1. learning curves
    if history and history.get("epoch"):
        written.append(_curves(plt, history, os.path.join(out_dir, "curves.png")))

    # 2. the six learned 5×5 filters of the first conv layer
    written.append(_filters(plt, model, os.path.join(out_dir, "filters.png")))

    # 3. the pyramid: one test image through conv1 → pool → conv2 → pool
    written.append(feature_maps(model, x_test, y_test, mean, std, classes,
                                os.path.join(out_dir, "feature_maps.png"), index=image))
    return written


def _curves(plt, history, path):
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    ep = history["epoch"]
    a1.plot(ep, history["train_loss"], "o-", label="train")
    a1.plot(ep, history["test_loss"], "s-", label="test")
    a1.set(xlabel="epoch", ylabel="cross-entropy", title="Loss")
    a2.plot(ep, history["train_acc"], "o-", label="train")
    a2.plot(ep, history["test_acc"], "s-", label="test")
    a2.set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
    for a in (a1, a2):
        a.grid(alpha=0.3)
        a.legend()
        a.set_xticks(ep)                                   # whole epochs, not 0.96 … 1.04
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _filters(plt, model, path):
    w = model[0].weight.numpy()[:, 0]                      # (6, 5, 5)
    fig, axes = plt.subplots(1, 6, figsize=(12, 2.4))
    lim = np.abs(w).max()
    for i, a in enumerate(axes):
        a.imshow(w[i], cmap="RdBu_r", vmin=-lim, vmax=lim)
        a.set_title(f"filter {i}")
        a.axis("off")
    fig.suptitle("First-layer filters (red +, blue −)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _stages(model, x):
    """Run one image through the model; the 4-d activations after each activation function
    and pooling layer, as (layer name, (C, H, W) array), and the predicted class."""
    maps = []
    model.eval()
    with mg.no_grad():
        h = mg.tensor(x)
        for layer in model:
            h = layer(h)
            if type(layer).__name__ in ("ReLU", "Tanh", "Sigmoid", "MaxPool2d", "AvgPool2d") and h.ndim == 4:
                maps.append((type(layer).__name__, h.numpy()[0]))
        logits = h.numpy()[0]
    model.train()
    p = np.exp(logits - logits.max())
    return maps, int(logits.argmax()), float(p.max() / p.sum())


def feature_maps(model, x_test, y_test, mean, std, classes, path, index=0):
    """The feature-map figure: test image `index` and what LeNet-5 makes of it, one block
    per stage, each map large enough to see its pattern.

    Layout (8 columns, every cell used): top row the input (2×2 cells), the six conv1 maps
    and the six pool1 maps (2×3 each, map k in the same place in both); then the sixteen
    conv2 maps (2×8) and the sixteen pool2 maps (2×8). One colour scale per stage (its
    colour bar on the right), so a weak map looks weak next to a strong one.
    """
    plt = _pyplot()
    fig = feature_map_figure(plt, model, x_test, y_test, mean, std, classes, index)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def feature_map_figure(plt, model, x_test, y_test, mean, std, classes, index=0):
    """The matplotlib Figure of feature_maps() (not saved, not closed)."""
    maps, pred, conf = _stages(model, x_test[index:index + 1])
    if len(maps) < 4:
        raise ValueError(f"feature_maps(): expected conv → act → pool twice, found stages "
                         f"{[n for n, _ in maps]}")
    (a1, act1), (_, pool1), (a2, act2), (_, pool2) = maps[:4]
    fig = plt.figure(figsize=(13, 11.5), layout="constrained")
    top, mid, bottom = fig.subfigures(3, 1, height_ratios=[1.1, 1, 1], hspace=0.02)
    f_in, f_c1, f_p1 = top.subfigures(1, 3, width_ratios=[2, 3.35, 3.35], wspace=0.02)

    ax = f_in.subplots()
    ax.imshow(x_test[index, 0] * std + mean, cmap="gray_r", vmin=0, vmax=1)
    ax.set_axis_off()
    truth = classes[int(y_test[index])]
    f_in.suptitle(f"input 1×28×28: {truth}\npredicted: {classes[pred]} ({conf:.0%})",
                  fontsize=12, color="black" if classes[pred] == truth else "firebrick")

    def block(subfig, fmap, rows, cols, title):
        axes = subfig.subplots(rows, cols, squeeze=False)
        lo, hi = float(fmap.min()), float(fmap.max())
        for k, a in enumerate(axes.flat):
            im = a.imshow(fmap[k], cmap="magma", vmin=lo, vmax=hi if hi > lo else lo + 1,
                          interpolation="nearest")
            a.set_xticks([])
            a.set_yticks([])
            a.text(0.03, 0.97, str(k), transform=a.transAxes, ha="left", va="top", fontsize=9,
                   color="white", bbox=dict(facecolor="black", alpha=0.5, pad=1, lw=0))
        subfig.colorbar(im, ax=axes, shrink=0.8, pad=0.01, aspect=25)
        subfig.suptitle(title, fontsize=12)

    C1, H1, W1 = act1.shape
    C2, H2, W2 = act2.shape
    block(f_c1, act1, 2, C1 // 2, f"conv1 + {a1}: {C1} maps of {H1}×{W1}")
    block(f_p1, pool1, 2, C1 // 2, f"pool1: {C1} maps of {pool1.shape[1]}×{pool1.shape[2]}")
    block(mid, act2, 2, C2 // 2, f"conv2 + {a2}: {C2} maps of {H2}×{W2} (each reads all {C1} pool1 maps)")
    block(bottom, pool2, 2, C2 // 2, f"pool2: {C2} maps of {pool2.shape[1]}×{pool2.shape[2]} "
                                     f"→ flattened to {pool2.size} numbers for the classifier")
    fig.suptitle("What LeNet-5 computes from one test image: feature maps after each stage",
                 fontsize=14)
    return fig


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="a checkpoint written by examples/lenet.py --save")
    p.add_argument("--out", default="plots", help="directory for the PNG files (default plots/)")
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist",
                   help="directory with the Fashion-MNIST IDX files")
    p.add_argument("--activation", choices=["relu", "tanh", "sigmoid"], default="relu",
                   help="the activation the checkpoint was trained with (default relu)")
    p.add_argument("--image", type=int, default=0, help="index of the test image for the feature maps")
    args = p.parse_args(argv)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import lenet
    from minigrad.data import load_fashion_mnist

    ckpt = mg.load(args.checkpoint)
    if "model" not in ckpt:
        p.error(f"{args.checkpoint} is not a checkpoint of examples/lenet.py --save (no 'model' entry)")
    model = lenet.lenet5(args.activation)
    model.load_state_dict(ckpt["model"])
    x_train, _ = load_fashion_mnist(args.data, train=True)
    x_test, y_test = load_fashion_mnist(args.data, train=False)
    if not 0 <= args.image < len(x_test):
        p.error(f"--image must be in [0, {len(x_test) - 1}], got {args.image}")
    mean, std = float(x_train.mean()), float(x_train.std())      # as lenet.py standardised
    x_test = (x_test - mean) / std
    history = {k: list(v) for k, v in ckpt["history"].items()} if "history" in ckpt else None
    written = write_plots(args.out, model, history, x_test, y_test, mean, std, lenet.CLASSES,
                          image=args.image)
    for path in written:
        print(path)
    return written


if __name__ == "__main__":
    main()
