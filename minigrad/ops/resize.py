"""Resizing NCHW activations: F.interpolate with mode 'nearest' or 'bilinear' (PyTorch's
coordinate rules), and its backward.

Both modes are separable: along each axis, output position i reads one or two input
positions with weights, and the 2-d result is the product of the two axes' rules,

    y[n, c, i, j] = Σ_p Σ_q  a_p[i] · b_q[j] · x[n, c, r_p[i], s_q[j]]

(rows: indices r_p, weights a_p; columns: s_q, b_q). So the forward gathers along H then
along W, and the backward scatters δ back along W then along H:

    ∂L/∂x[n, c, h, w] = Σ_{p, i: r_p[i] = h} Σ_{q, j: s_q[j] = w} a_p[i] · b_q[j] · δ[n, c, i, j]

The scatter adds one row of δ (times its weight) into row r_p[i] for each output row i.

Coordinates, along one axis of n inputs and m outputs (PyTorch's, in its arithmetic):
  the scale is  S = 1/scale_factor when scale_factor is given (and not
                recompute_scale_factor), else n/m; for bilinear with align_corners=True
                S = (n−1)/(m−1) (0 when m = 1), whatever scale_factor says.
  nearest:      r[i] = min(⌊i·S⌋, n−1), weight 1 (S and the product in float32, as
                PyTorch's CPU kernel; m = n and m = 2n are exact: i and ⌊i/2⌋).
  bilinear:     src = S·i (align_corners=True) or max(S·(i + ½) − ½, 0) (False);
                r₀ = ⌊src⌋, r₁ = min(r₀ + 1, n−1), λ = src − r₀; weights 1−λ and λ.
The output size is `size`, or ⌊n · scale_factor⌋ per axis.
"""
import math
import numbers

import numpy as np

from ..autograd import Function
from .limits import check_output
from .nn import as_float_tensor

_MODES = ("nearest", "bilinear")


# ---- one axis: index and weight tables ---------------------------------------------------------
def _nearest_table(n, m, scale_factor):
    """[(r, 1)] with r[i] = min(⌊i·S⌋, n−1), computed in float32 as PyTorch."""
    i = np.arange(m, dtype=np.int64)
    if m == n:
        r = i
    elif m == 2 * n:
        r = i >> 1
    else:
        S = np.float32(1.0 / scale_factor) if scale_factor is not None else np.float32(n) / np.float32(m)
        r = np.minimum(np.floor(i.astype(np.float32) * S).astype(np.int64), n - 1)
    return [(r, None)]


def _bilinear_table(n, m, scale_factor, align_corners):
    """[(r₀, 1−λ), (r₁, λ)] for src = S·i (align_corners) or max(S·(i+½)−½, 0)."""
    i = np.arange(m, dtype=np.float64)
    if align_corners:
        S = (n - 1) / (m - 1) if m > 1 else 0.0
        src = S * i
    else:
        S = 1.0 / scale_factor if scale_factor is not None else n / m
        src = np.maximum(S * (i + 0.5) - 0.5, 0.0)
    r0 = np.minimum(np.floor(src).astype(np.int64), n - 1)
    r1 = np.minimum(r0 + 1, n - 1)
    lam = src - r0
    return [(r0, 1.0 - lam), (r1, lam)]


def _gather(x, table, axis, dtype):
    """Σ_p w_p[i] · x[…, r_p[i], …] along axis (2 or 3)."""
    shape = [1] * x.ndim
    shape[axis] = -1
    out = None
    for r, w in table:
        term = np.take(x, r, axis=axis)                              # (…, m, …)
        if w is not None:
            term *= w.astype(dtype).reshape(shape)
        out = term if out is None else out + term
    return out


def _scatter(δ, table, n, axis):
    """The transpose of _gather: out[…, k, …] = Σ_p Σ_{i: r_p[i] = k} w_p[i] · δ[…, i, …].

    Nearest upsampling by an integer factor k (r[i] = ⌊i/k⌋) sums k strided slices of δ.
    Otherwise δ is first laid out with the axis in front (one transposing copy), then each output
    position i adds its contiguous row into row r_p[i]: a Python loop over m ≤ a few
    thousand rows of vectorised adds (measured: 16×64×112×112 → 56×56, 1.4 s with
    np.add.reduceat over the runs of equal r, 0.5 s with strided rows, see
    benchmarks/layers.py for the contiguous form)."""
    m = δ.shape[axis]
    r0, w0 = table[0]
    if len(table) == 1 and w0 is None and m % n == 0 and np.array_equal(r0, np.arange(m) // (m // n)):
        k = m // n                       # nearest ×k: input k' collects outputs k'·k … k'·k + k − 1
        where = [slice(None)] * δ.ndim
        out = None
        for j in range(k):
            where[axis] = slice(j, None, k)
            out = δ[tuple(where)].copy() if out is None else np.add(out, δ[tuple(where)], out=out)
        return out
    rows = np.ascontiguousarray(np.moveaxis(δ, axis, 0))            # (m, …): each row contiguous
    out = np.zeros((n,) + rows.shape[1:], δ.dtype)                   # (n, …)
    for r, w in table:
        if w is None:
            for i, k in enumerate(r):
                out[k] += rows[i]
        else:
            w = w.astype(δ.dtype)
            for i, k in enumerate(r):
                out[k] += w[i] * rows[i]
    return np.moveaxis(out, 0, axis)                                 # (…, n, …)


class Interpolate(Function):
    """y[n,c,i,j] = Σ_p Σ_q a_p[i] b_q[j] x[n,c,r_p[i],s_q[j]] (module docstring's tables).

    Backward: ∂L/∂x[n,c,h,w] = Σ_{p,i: r_p[i]=h} Σ_{q,j: s_q[j]=w} a_p[i] b_q[j] δ[n,c,i,j],
    the gather transposed: δ summed back along W, then along H (InterpolateBackward).
    """

    @staticmethod
    def forward(ctx, x, rows, cols):
        ctx.rows, ctx.cols, ctx.hw = rows, cols, x.shape[2:]
        t = _gather(x, rows, 2, x.dtype)                              # (N, C, OH, W)
        return np.ascontiguousarray(_gather(t, cols, 3, x.dtype))   # (N, C, OH, OW)

    @staticmethod
    def backward(ctx, δ):
        """∂L/∂x: δ scattered back through the column table, then the row table."""
        return InterpolateBackward.apply(δ, ctx.rows, ctx.cols, ctx.hw), None, None


class InterpolateBackward(Function):
    """dx = the scatter of δ (N, C, OH, OW) through the tables to (N, C, H, W): interpolate's
    ∂L/∂x as an op,

        dx[n,c,h,w] = Σ_{p,i: r_p[i]=h} Σ_{q,j: s_q[j]=w} a_p[i] b_q[j] δ[n,c,i,j].

    Backward. dx is linear in δ with constant tables; for Γ = the gradient arriving at dx,
        ⟨Γ, dx⟩ = Σ_{n,c,i,j} δ[n,c,i,j] · Σ_p Σ_q a_p[i] b_q[j] Γ[n,c,r_p[i],s_q[j]]
    so ∂/∂δ = interpolate(Γ) with the same tables (Interpolate), whose backward is this op.
    """

    @staticmethod
    def forward(ctx, δ, rows, cols, hw):
        """rows, cols: the tables Interpolate's forward read; hw: the input's (H, W)."""
        ctx.rows, ctx.cols = rows, cols
        H, W = hw
        t = _scatter(δ, cols, W, 3)                                   # (N, C, OH, W)
        return np.ascontiguousarray(_scatter(t, rows, H, 2))         # (N, C, H, W)

    @staticmethod
    def backward(ctx, Γ):
        """∂/∂δ = interpolate(Γ) (the class docstring)."""
        return Interpolate.apply(Γ, ctx.rows, ctx.cols), None, None, None


# ---- argument handling ---------------------------------------------------------------------
def _pair_of(fn, name, v, kind):
    items = tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    if len(items) != 2:
        raise ValueError(f"{fn}(): {name} must be one value or a pair for a 4-d input, got {v!r}")
    for it in items:
        ok = (isinstance(it, numbers.Integral) if kind == "int" else isinstance(it, numbers.Real))
        if not ok or isinstance(it, bool):
            raise TypeError(f"{fn}(): {name} must be {'ints' if kind == 'int' else 'numbers'}, got {v!r}")
    return items


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resize a (N, C, H, W) input (torch.nn.functional.interpolate), modes 'nearest' and
    'bilinear'.

    size: (OH, OW) or one int for both; or scale_factor: a number or a pair, giving
    OH = ⌊H · scale_h⌋, OW = ⌊W · scale_w⌋ (exactly one of the two). align_corners
    (bilinear only; default False): True maps the corner pixels' centres onto each
    other, src = i·(H−1)/(OH−1); False maps the image edges, src = (i + ½)·S − ½.
    recompute_scale_factor=True uses S = H/OH instead of 1/scale_factor. The module
    docstring gives the coordinate rules and the backward.
    """
    fn = "interpolate"
    x = as_float_tensor(input, fn, "input")
    if mode not in _MODES:
        raise ValueError(f"{fn}(): mode {mode!r} is not supported; minigrad has 'nearest' and 'bilinear'")
    if x.ndim != 4:
        raise ValueError(f"{fn}(): input must be 4-d (N, C, H, W) for mode {mode!r}, got shape {x.shape}")
    if align_corners is not None and mode == "nearest":
        raise ValueError(f"{fn}(): align_corners can only be set with mode 'bilinear', not 'nearest'")
    if antialias:
        raise ValueError(f"{fn}(): antialias=True is not supported")
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{fn}(): give exactly one of size and scale_factor, got size={size!r}, "
                         f"scale_factor={scale_factor!r}")
    H, W = x.shape[2:]
    if size is not None:
        out = _pair_of(fn, "size", size, "int")
        if min(out) < 1:
            raise ValueError(f"{fn}(): size must be positive, got {size!r}")
        scales = (None, None)
    else:
        scales = tuple(float(s) for s in _pair_of(fn, "scale_factor", scale_factor, "real"))
        if not all(s > 0 and math.isfinite(s) for s in scales):
            raise ValueError(f"{fn}(): scale_factor must be positive and finite, got {scale_factor!r}")
        out = (math.floor(H * scales[0]), math.floor(W * scales[1]))
        if min(out) < 1:
            raise ValueError(f"{fn}(): scale_factor {scale_factor!r} shrinks the input of shape "
                             f"{x.shape} to an empty output {out}")
        if recompute_scale_factor:
            scales = (None, None)
    out = (int(out[0]), int(out[1]))
    check_output(fn, "size/scale_factor", x.shape[:2] + out, x.dtype.itemsize)
    if mode == "nearest":
        rows, cols = _nearest_table(H, out[0], scales[0]), _nearest_table(W, out[1], scales[1])
    else:
        ac = bool(align_corners)
        rows = _bilinear_table(H, out[0], scales[0], ac)
        cols = _bilinear_table(W, out[1], scales[1], ac)
    return Interpolate.apply(x, rows, cols)
