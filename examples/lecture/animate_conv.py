"""Animations of a convolution: the kernel sliding over the zero-padded input with a chosen
stride and dilation while the output fills in, and the backward — δ dilated by the
stride, padded, met by the kernel flipped 180° while ∂L/∂x fills in.

    python examples/lecture/animate_conv.py                      # the notes' X kernel, stride 2, pad 1
    python examples/lecture/animate_conv.py --stride 1 --dilation 2 --padding 2
    python examples/lecture/animate_conv.py --png-frames 3       # also a few frames as PNG

The forward uses the notes' 5×5 image and X kernel; the backward, by default, a lopsided
kernel, so that the flip can be seen (--forward-kernel, --backward-kernel choose).
Writes conv_forward.gif and conv_backward.gif (and, with --png-frames, some frames as
PNG) to plots/lecture/ (git-ignored). Needs matplotlib and Pillow.

Every number on a picture is minigrad's: the output cells are F.conv2d's output and the
∂L/∂x cells are x.grad after y.backward(δ); the sum printed above each frame is the
window's products added up by NumPy, so frame by frame the picture checks the kernel.

Forward frame (i', j'): the kernel taps sit on the padded input at
    row i'·S + p·D, column j'·S + q·D   (p, q = 0 … F − 1)
and y[i', j'] = Σ x_pad · w. Backward frame (i, j): the flipped kernel sits on the padded,
dilated δ at rows i + p·D, columns j + q·D (stride 1 now), and ∂L/∂x[i, j] = Σ δ_pad · flip(w).
Grey cells are padding, light orange cells the zeros the stride's dilation put into δ.
"""
import argparse
import os
import sys

import numpy as np

import minigrad as mg
import minigrad.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stride2_backward import input_grad_by_steps  # noqa: E402
from x_kernel import IMAGE, X_KERNEL  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KERNELS = {"x": X_KERNEL.astype(np.float64),                        # the notes' X-shaped kernel
           "arrow": np.array([[1.0, 2.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0]])}
PAD, DILATED, REAL, WINDOW, DONE, CURRENT = "#d9d9d9", "#fde7c8", "#f4a259", "#3a7bd5", "#cdebc5", "#5cb85c"


def _pyplot():
    try:
        import matplotlib
        import PIL  # noqa: F401
    except ImportError:
        raise SystemExit("the animations need matplotlib and Pillow: pip install matplotlib pillow") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _num(v):
    return f"{v:.3g}" if v != int(v) else str(int(v))


def _grid(ax, values, colors, title, window=(), weights=None, shown=None, current=None):
    """Draw `values` as a grid of cells. colors: per-cell face colours; window: cells under
    the kernel (outlined, the tap's weight written small in the corner from `weights`);
    shown: boolean mask of the cells whose number is written (default all); current: the
    cell being filled."""
    H, W = values.shape
    from matplotlib.patches import Rectangle     # added as artists: the limits are set below,
                                                 # so add_patch's autoscaling would be wasted work
    for i in range(H):
        for j in range(W):
            face = CURRENT if (i, j) == current else colors[i][j]
            ax.add_artist(Rectangle((j, i), 1, 1, facecolor=face, edgecolor="#777777", lw=0.8))
            if shown is None or shown[i, j]:
                ax.text(j + 0.5, i + 0.55, _num(values[i, j]), ha="center", va="center",
                        fontsize=12 if H <= 9 else 9, weight="bold" if (i, j) == current else None)
    for k, (i, j) in enumerate(window):
        ax.add_artist(Rectangle((j + 0.05, i + 0.05), 0.9, 0.9, facecolor=WINDOW, alpha=0.12))
        ax.add_artist(Rectangle((j + 0.05, i + 0.05), 0.9, 0.9, facecolor="none", edgecolor=WINDOW, lw=2.5))
        if weights is not None:
            ax.text(j + 0.95, i + 0.08, f"×{_num(weights[k])}", ha="right", va="top", fontsize=8,
                    color="#0b3d91", weight="bold")
    ax.set_xlim(-0.05, W + 0.05)
    ax.set_ylim(H + 0.05, -0.05)
    ax.set_aspect("equal")
    ax.set_xticks([])                  # no ticks to lay out (axis("off") hides them, yet the
    ax.set_yticks([])                  # title's placement would still measure them every frame)
    ax.axis("off")
    ax.set_title(title, fontsize=11)


def _frame(plt, panels, heading, layout):
    """One animation frame (an RGB array): panels = [(values, colors, title, kwargs)].
    layout: a dict shared by the frames of one animation (their panels have the same sizes
    and titles): the first frame fills it with the margins tight_layout found, the others
    reuse them (tight_layout measures every text of the figure; it took half of a frame)."""
    widths = [p[0].shape[1] for p in panels]
    fig, axes = plt.subplots(1, len(panels), figsize=(2.2 + 0.62 * sum(widths), 4.6),
                             gridspec_kw={"width_ratios": widths})
    for ax, (values, colors, title, kw) in zip(axes, panels):
        _grid(ax, values, colors, title, **kw)
    fig.suptitle(heading, fontsize=11, y=0.98)
    if layout:
        fig.subplots_adjust(**layout)
    else:
        fig.tight_layout(rect=(0, 0, 1, 0.93))
        layout.update({k: getattr(fig.subplotpars, k) for k in ("left", "right", "bottom", "top", "wspace")})
    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return rgb


def _save_gif(frames, path, ms=900):
    from PIL import Image
    H = max(f.shape[0] for f in frames)
    W = max(f.shape[1] for f in frames)
    images = [Image.fromarray(np.pad(f, ((0, H - f.shape[0]), (0, W - f.shape[1]), (0, 0)),
                                     constant_values=255)) for f in frames]
    durations = [ms] * (len(images) - 1) + [ms * 3]          # linger on the finished result
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0)


def _filled(shown):
    """Cell colours of a result being filled in: green where a number is written."""
    return [[DONE if v else "white" for v in row] for row in shown]


def _expression(xs, ws):
    terms = [f"{_num(a)}·{_num(b) if b >= 0 else '(' + _num(b) + ')'}" for a, b in zip(xs, ws)]
    text = " + ".join(terms)
    return text if len(terms) <= 9 else " + ".join(terms[:8]) + " + …"


def forward_frames(plt, x, w, S, P, D):
    """Frames of y = conv2d(x, w, stride=S, padding=P, dilation=D); returns (frames, y, checks)."""
    y = F.conv2d(mg.tensor(x[None, None]), mg.tensor(w[None, None]), stride=S, padding=P,
                 dilation=D).numpy()[0, 0]                             # minigrad's numbers
    xp = np.pad(x, P)
    Fh, Fw = w.shape
    colors = [[PAD if not (P <= i < P + x.shape[0] and P <= j < P + x.shape[1]) else "white"
               for j in range(xp.shape[1])] for i in range(xp.shape[0])]
    frames, checks, layout = [], [], {}
    shown = np.zeros(y.shape, bool)
    for i in range(y.shape[0]):
        for j in range(y.shape[1]):
            window = [(i * S + p * D, j * S + q * D) for p in range(Fh) for q in range(Fw)]
            xs = [xp[r, c] for r, c in window]
            total = float(np.dot(xs, w.ravel()))                       # NumPy's sum of the products
            checks.append((i, j, total, float(y[i, j])))
            shown[i, j] = True
            heading = f"y[{i},{j}] = {_expression(xs, w.ravel())} = {_num(y[i, j])}"
            frames.append(_frame(plt, [
                (xp, colors, f"input, padded by {P} (stride {S}, dilation {D})",
                 dict(window=window, weights=w.ravel())),
                (w, [["white"] * Fw for _ in range(Fh)], "kernel w", {}),
                (y, _filled(shown), "output y = F.conv2d", dict(shown=shown.copy(), current=(i, j))),
            ], heading, layout))
    return frames, y, checks


def backward_frames(plt, x, w, δ, S, P, D):
    """Frames of ∂L/∂x = pad(dilate(δ, S)) ⋆ flip(w); returns (frames, dx, checks)."""
    xt = mg.tensor(x[None, None], requires_grad=True)
    y = F.conv2d(xt, mg.tensor(w[None, None]), stride=S, padding=P, dilation=D)
    y.backward(δ[None, None])
    dx = xt.grad.numpy()[0, 0]                                         # minigrad's numbers
    steps = input_grad_by_steps(δ, w, x.shape, S, P, D)
    padded, flipped = steps["padded"], steps["flipped"]
    top, _, left, _ = steps["pads"]
    # colour every cell of the padded δ by where it came from
    colors = [[PAD] * padded.shape[1] for _ in range(padded.shape[0])]
    for i in range(padded.shape[0]):
        for j in range(padded.shape[1]):
            a, b = i - top, j - left                                   # position in the dilated δ
            if 0 <= a < steps["dilated"].shape[0] and 0 <= b < steps["dilated"].shape[1]:
                colors[i][j] = REAL if a % S == 0 and b % S == 0 else DILATED
    Fh, Fw = w.shape
    frames, checks, layout = [], [], {}
    shown = np.zeros(dx.shape, bool)
    for i in range(dx.shape[0]):
        for j in range(dx.shape[1]):
            window = [(i + p * D, j + q * D) for p in range(Fh) for q in range(Fw)]
            ds = [padded[r, c] for r, c in window]
            total = float(np.dot(ds, flipped.ravel()))
            checks.append((i, j, total, float(dx[i, j])))
            shown[i, j] = True
            heading = f"∂L/∂x[{i},{j}] = {_expression(ds, flipped.ravel())} = {_num(dx[i, j])}"
            frames.append(_frame(plt, [
                (padded, colors, f"δ dilated by the stride {S}, padded", dict(window=window, weights=flipped.ravel())),
                (w, [["white"] * Fw for _ in range(Fh)], "kernel w", {}),
                (flipped, [["white"] * Fw for _ in range(Fh)], "w flipped 180°", {}),
                (dx, _filled(shown), "∂L/∂x = x.grad", dict(shown=shown.copy(), current=(i, j))),
            ], heading, layout))
    return frames, dx, checks


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stride", type=int, default=2)
    p.add_argument("--padding", type=int, default=1)
    p.add_argument("--dilation", type=int, default=1)
    p.add_argument("--forward-kernel", choices=sorted(KERNELS), default="x",
                   help="kernel of the forward animation (default: the notes' X)")
    p.add_argument("--backward-kernel", choices=sorted(KERNELS), default="arrow",
                   help="kernel of the backward animation (default: a lopsided one, so that "
                        "the 180° flip shows; the X looks the same flipped)")
    p.add_argument("--out", default=os.path.join(ROOT, "plots", "lecture"), help="output directory")
    p.add_argument("--png-frames", type=int, default=0, metavar="K",
                   help="also write the first, middle and last K frames of each animation as PNG")
    p.add_argument("--ms", type=int, default=900, help="milliseconds per frame")
    args = p.parse_args(argv)
    for name in ("stride", "dilation"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1")
    if args.padding < 0:
        p.error("--padding must be at least 0")
    x = IMAGE.astype(np.float64)                                     # the notes' 5×5 image
    w, w_back = KERNELS[args.forward_kernel], KERNELS[args.backward_kernel]
    reach = args.dilation * (w.shape[0] - 1) + 1
    if reach > x.shape[0] + 2 * args.padding:
        p.error(f"the dilated kernel ({reach}×{reach}) does not fit in the padded 5×5 input")
    plt = _pyplot()
    os.makedirs(args.out, exist_ok=True)

    fwd, y, fchecks = forward_frames(plt, x, w, args.stride, args.padding, args.dilation)
    δ = np.arange(1.0, y.size + 1).reshape(y.shape)                   # an easy-to-follow δ: 1, 2, 3, …
    bwd, dx, bchecks = backward_frames(plt, x, w_back, δ, args.stride, args.padding, args.dilation)
    written = []
    for name, frames in (("conv_forward", fwd), ("conv_backward", bwd)):
        path = os.path.join(args.out, f"{name}.gif")
        _save_gif(frames, path, args.ms)
        written.append(path)
        if args.png_frames:
            from PIL import Image
            k = args.png_frames
            picks = sorted(set(list(range(min(k, len(frames)))) + [len(frames) // 2, len(frames) - 1]))
            for n in picks:
                png = os.path.join(args.out, f"{name}_frame{n:02d}.png")
                Image.fromarray(frames[n]).save(png)
                written.append(png)
        print(f"{path}: {len(frames)} frames")
    worst = max(abs(t - v) for *_, t, v in fchecks + bchecks)
    print(f"every frame's NumPy sum vs minigrad's number: largest difference {worst:g}")
    return {"written": written, "forward": fchecks, "backward": bchecks, "y": y, "dx": dx,
            "n_frames": (len(fwd), len(bwd))}


if __name__ == "__main__":
    main()
