"""PNG plots for examples/lenet.py: learning curves, the first-layer filters, and the
feature-map "pyramid" of one test image (seed 000: 1×28×28 → 6×28×28 → 6×14×14 → 16×10×10 → 16×5×5)."""
import os

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


def write_plots(out_dir, model, history, x_test, y_test, mean, std, classes):
    plt = _pyplot()
    os.makedirs(out_dir, exist_ok=True)

    # 1. learning curves
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
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "curves.png"), dpi=100)
    plt.close(fig)

    # 2. the six learned 5×5 filters of the first conv layer
    w = model[0].weight.numpy()[:, 0]                      # (6, 5, 5)
    fig, axes = plt.subplots(1, 6, figsize=(12, 2.4))
    lim = np.abs(w).max()
    for i, a in enumerate(axes):
        a.imshow(w[i], cmap="RdBu_r", vmin=-lim, vmax=lim)
        a.set_title(f"filter {i}")
        a.axis("off")
    fig.suptitle("First-layer filters (red +, blue −)")
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "filters.png"), dpi=100)
    plt.close(fig)

    # 3. the pyramid: one test image through conv1 → pool → conv2 → pool
    model.eval()
    with mg.no_grad():
        x = mg.tensor(x_test[:1])
        maps = []
        h = x
        for layer in model:
            h = layer(h)
            if type(layer).__name__ in ("ReLU", "Tanh", "Sigmoid", "MaxPool2d") and h.ndim == 4:
                maps.append((type(layer).__name__, h.numpy()[0]))
        pred = int(h.numpy().argmax())
    model.train()
    stages = [maps[0], maps[1], maps[2], maps[3]]          # act1, pool1, act2, pool2
    titles = ["conv1+act 6×28×28", "pool1 6×14×14", "conv2+act 16×10×10", "pool2 16×5×5"]
    fig = plt.figure(figsize=(14, 9))
    gs = fig.add_gridspec(5, 16)
    ax = fig.add_subplot(gs[0, 0:2])
    ax.imshow(x_test[0, 0] * std + mean, cmap="gray")
    ax.set_title(f"input: {classes[int(y_test[0])]}\npredicted: {classes[pred]}", fontsize=9)
    ax.axis("off")
    for row, ((_, fmap), title) in enumerate(zip(stages, titles), start=1):
        for c in range(fmap.shape[0]):
            a = fig.add_subplot(gs[row, c])
            a.imshow(fmap[c], cmap="viridis")
            a.axis("off")
            if c == 0:
                a.set_title(title, fontsize=9, loc="left")
    fig.suptitle("Feature maps of one test image through both conv layers")
    fig.savefig(os.path.join(out_dir, "feature_maps.png"), dpi=100)
    plt.close(fig)
