"""Naive NumPy references, written straight from the formulas in DESIGN.md (and PyTorch's
documented definitions), for tests to compare minigrad against.

Everything here is float64 (or exact integer) arithmetic with plain loops over output
positions: slow, obviously right, and independent of minigrad's code. Each forward has
a `*_vjp` partner giving the vector-Jacobian product for an upstream gradient g = ∂L/∂y,
computed by scattering every output's contribution back where the forward gathered it.

Conventions: x is (N, C, H, W); padding for conv2d is (top, bottom, left, right); pairs
are (rows, cols).
"""
import math

import numpy as np


# ---- conv2d ----------------------------------------------------------------------------------

def conv_out_size(n, k, s, p_lo, p_hi, d):
    """floor((n + P_lo + P_hi − D·(k−1) − 1) / S) + 1."""
    return (n + p_lo + p_hi - d * (k - 1) - 1) // s + 1


def same_padding(n, k, s, d):
    """TensorFlow's 'same' along one axis: (before, after), out = ceil(n / S)."""
    out = -(-n // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
    return total // 2, total - total // 2


def conv_padding4(padding, H, W, kh, kw, stride, dilation):
    """(top, bottom, left, right) from an int, a pair, 'valid' or 'same'."""
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        return same_padding(H, kh, stride[0], dilation[0]) + same_padding(W, kw, stride[1], dilation[1])
    ph, pw = (padding, padding) if np.ndim(padding) == 0 else padding
    return (ph, ph, pw, pw)


def _padded(x, pt, pb, pl, pr):
    N, C, H, W = x.shape
    xp = np.zeros((N, C, H + pt + pb, W + pl + pr), np.float64)
    xp[:, :, pt:pt + H, pl:pl + W] = x
    return xp


def conv2d(x, w, b, stride, padding4, dilation, groups):
    """y[n,k,i',j'] = b[k] + Σ_c Σ_p Σ_q x_pad[n, g·Cg+c, i'·S + p·D, j'·S + q·D] · w[k,c,p,q]."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    N, C, H, W = x.shape
    K, Cg, kh, kw = w.shape
    (sh, sw), (dh, dw), G = stride, dilation, groups
    pt, pb, pl, pr = padding4
    Kg = K // G
    OH = conv_out_size(H, kh, sh, pt, pb, dh)
    OW = conv_out_size(W, kw, sw, pl, pr, dw)
    xp = _padded(x, pt, pb, pl, pr)
    y = np.zeros((N, K, OH, OW))
    for i in range(OH):
        for j in range(OW):
            patch = xp[:, :, i * sh:i * sh + dh * (kh - 1) + 1:dh, j * sw:j * sw + dw * (kw - 1) + 1:dw]
            for g in range(G):
                y[:, g * Kg:(g + 1) * Kg, i, j] = np.einsum(
                    "ncpq,kcpq->nk", patch[:, g * Cg:(g + 1) * Cg], w[g * Kg:(g + 1) * Kg])
    if b is not None:
        y += np.asarray(b, np.float64)[None, :, None, None]
    return y


def conv2d_vjp(x, w, gy, stride, padding4, dilation, groups):
    """(∂L/∂x, ∂L/∂w, ∂L/∂b) for ∂L/∂y = gy: each output's δ goes back to the inputs and
    weights its forward sum multiplied."""
    x, w, gy = (np.asarray(a, np.float64) for a in (x, w, gy))
    N, C, H, W = x.shape
    K, Cg, kh, kw = w.shape
    (sh, sw), (dh, dw), G = stride, dilation, groups
    pt, pb, pl, pr = padding4
    Kg = K // G
    _, _, OH, OW = gy.shape
    xp = _padded(x, pt, pb, pl, pr)
    dxp = np.zeros_like(xp)
    dwt = np.zeros_like(w)
    for i in range(OH):
        for j in range(OW):
            rows = slice(i * sh, i * sh + dh * (kh - 1) + 1, dh)
            cols = slice(j * sw, j * sw + dw * (kw - 1) + 1, dw)
            for g in range(G):
                gc, gk = slice(g * Cg, (g + 1) * Cg), slice(g * Kg, (g + 1) * Kg)
                δ = gy[:, gk, i, j]                                       # (N, Kg)
                dxp[:, gc, rows, cols] += np.einsum("nk,kcpq->ncpq", δ, w[gk])
                dwt[gk] += np.einsum("nk,ncpq->kcpq", δ, xp[:, gc, rows, cols])
    dx = dxp[:, :, pt:pt + H, pl:pl + W]
    return dx, dwt, gy.sum(axis=(0, 2, 3))


# ---- conv_transpose2d ------------------------------------------------------------------------

def conv_transpose2d_out_size(n, k, s, p, op, d):
    return (n - 1) * s - 2 * p + d * (k - 1) + op + 1


def conv_transpose2d(x, w, b, stride, padding, output_padding, groups, dilation):
    """Each input x[n,ci,i,j] adds x · w[ci, co, p, q] at output row i·S + p·D, column
    j·S + q·D of the uncropped output; then P rows/cols are cropped from each side (the
    output_padding extra rows stay at the bottom/right). w is (C_in, C_out/G, kh, kw)."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    N, Cin, H, W = x.shape
    _, Cog, kh, kw = w.shape
    (sh, sw), (ph, pw), (oph, opw), (dh, dw), G = stride, padding, output_padding, dilation, groups
    Cig = Cin // G
    Hf = (H - 1) * sh + dh * (kh - 1) + 1 + oph
    Wf = (W - 1) * sw + dw * (kw - 1) + 1 + opw
    full = np.zeros((N, Cog * G, Hf, Wf))
    for i in range(H):
        for j in range(W):
            rows = slice(i * sh, i * sh + dh * (kh - 1) + 1, dh)
            cols = slice(j * sw, j * sw + dw * (kw - 1) + 1, dw)
            for g in range(G):
                gi, go = slice(g * Cig, (g + 1) * Cig), slice(g * Cog, (g + 1) * Cog)
                full[:, go, rows, cols] += np.einsum("nc,cdpq->ndpq", x[:, gi, i, j], w[gi])
    y = full[:, :, ph:Hf - ph, pw:Wf - pw]
    if b is not None:
        y = y + np.asarray(b, np.float64)[None, :, None, None]
    return y


def conv_transpose2d_vjp(x, w, gy, stride, padding, output_padding, groups, dilation):
    """(∂L/∂x, ∂L/∂w, ∂L/∂b): the gradient is read back from where each input wrote."""
    x, w, gy = (np.asarray(a, np.float64) for a in (x, w, gy))
    N, Cin, H, W = x.shape
    _, Cog, kh, kw = w.shape
    (sh, sw), (ph, pw), (oph, opw), (dh, dw), G = stride, padding, output_padding, dilation, groups
    Cig = Cin // G
    Hf = (H - 1) * sh + dh * (kh - 1) + 1 + oph
    Wf = (W - 1) * sw + dw * (kw - 1) + 1 + opw
    gfull = np.zeros((N, Cog * G, Hf, Wf))
    gfull[:, :, ph:Hf - ph, pw:Wf - pw] = gy
    dx, dw_ = np.zeros_like(x), np.zeros_like(w)
    for i in range(H):
        for j in range(W):
            rows = slice(i * sh, i * sh + dh * (kh - 1) + 1, dh)
            cols = slice(j * sw, j * sw + dw * (kw - 1) + 1, dw)
            for g in range(G):
                gi, go = slice(g * Cig, (g + 1) * Cig), slice(g * Cog, (g + 1) * Cog)
                window = gfull[:, go, rows, cols]                          # (N, Cog, kh, kw)
                dx[:, gi, i, j] = np.einsum("ndpq,cdpq->nc", window, w[gi])
                dw_[gi] += np.einsum("nc,ndpq->cdpq", x[:, gi, i, j], window)
    return dx, dw_, gy.sum(axis=(0, 2, 3))


# ---- pooling ----------------------------------------------------------------------------------

def pool_axis(n, k, s, p, d, ceil_mode):
    """(window starts, P_before) along one axis, PyTorch's output size (with ceil_mode,
    a window may not start in the bottom padding), or Keras's 'same'/'valid'."""
    if p == "same":
        out = -(-n // s)
        before = max((out - 1) * s + d * (k - 1) + 1 - n, 0) // 2
        return [i * s - before for i in range(out)], before, True
    p = 0 if p == "valid" else p
    span = d * (k - 1) + 1
    num = n + 2 * p - span
    out = (-(-num // s) if ceil_mode else num // s) + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return [i * s - p for i in range(out)], p, False


def pool_out_shape(x_shape, k, s, p, d, ceil_mode):
    H, W = x_shape[-2:]
    pair = (lambda v: (v, v) if isinstance(v, str) else v)(p)
    rows, _, _ = pool_axis(H, k[0], s[0], pair[0], d[0], ceil_mode)
    cols, _, _ = pool_axis(W, k[1], s[1], pair[1], d[1], ceil_mode)
    return tuple(x_shape[:-2]) + (len(rows), len(cols))


def _planes(x):
    x = np.asarray(x, np.float64)
    return x.reshape((-1,) + x.shape[-2:])


def max_pool2d(x, k, s, p, d, ceil_mode):
    """(y, idx): y = max over the window of the real inputs (padding is −inf and never
    wins), NaN wins its window; idx is the winner's flat index h·W + w (first in row-major
    order on ties) or −1 for a window with no real input (y = −inf)."""
    xs = np.asarray(x).shape
    P3 = _planes(x)
    H, W = P3.shape[1:]
    pair = (p, p) if isinstance(p, str) else p
    rows, _, _ = pool_axis(H, k[0], s[0], pair[0], d[0], ceil_mode)
    cols, _, _ = pool_axis(W, k[1], s[1], pair[1], d[1], ceil_mode)
    y = np.full((len(P3), len(rows), len(cols)), -np.inf)
    idx = np.full(y.shape, -1, np.int64)
    for i, r0 in enumerate(rows):
        for j, c0 in enumerate(cols):
            taps = [(r0 + a * d[0], c0 + b * d[1]) for a in range(k[0]) for b in range(k[1])]
            taps = sorted((r, c) for r, c in taps if 0 <= r < H and 0 <= c < W)
            for n in range(len(P3)):
                for r, c in taps:
                    v = P3[n, r, c]
                    best = y[n, i, j]
                    if idx[n, i, j] < 0 or (not np.isnan(best) and (np.isnan(v) or v > best)):
                        y[n, i, j], idx[n, i, j] = v, r * W + c
    shape = tuple(xs[:-2]) + y.shape[1:]
    return y.reshape(shape), idx.reshape(shape)


def max_pool2d_vjp(gy, idx, x_shape):
    """∂L/∂x: each output's δ goes to its window's winner; overlapping windows add."""
    H, W = x_shape[-2:]
    g = _planes(gy)
    ix = np.asarray(idx).reshape(g.shape)
    dx = np.zeros((len(g), H * W))
    for n in range(len(g)):
        for i in range(g.shape[1]):
            for j in range(g.shape[2]):
                if ix[n, i, j] >= 0:
                    dx[n, ix[n, i, j]] += g[n, i, j]
    return dx.reshape(x_shape)


def avg_windows(H, W, k, s, p, ceil_mode, count_include_pad, divisor_override):
    """[(i, j, rows, cols, divisor)]: PyTorch's avg_pool2d — the window is clipped to the
    padded input for the count_include_pad divisor and to the real input for the sum;
    'same' (Keras) counts only real inputs."""
    pair = (p, p) if isinstance(p, str) else p
    out = []
    axes = []
    for n, kk, ss, pp in ((H, k[0], s[0], pair[0]), (W, k[1], s[1], pair[1])):
        starts, before, same = pool_axis(n, kk, ss, pp, 1, ceil_mode)
        ax = []
        for st in starts:
            end = min(st + kk, n + before)
            lo, hi = max(st, 0), min(end, n)
            ax.append((lo, hi, end - st, same))
        axes.append(ax)
    for i, (rlo, rhi, rsize, same) in enumerate(axes[0]):
        for j, (clo, chi, csize, _) in enumerate(axes[1]):
            if divisor_override is not None:
                div = divisor_override
            elif count_include_pad and not same:
                div = rsize * csize
            else:
                div = (rhi - rlo) * (chi - clo)
            out.append((i, j, slice(rlo, rhi), slice(clo, chi), div))
    return out, (len(axes[0]), len(axes[1]))


def avg_pool2d(x, k, s, p, ceil_mode=False, count_include_pad=True, divisor_override=None):
    xs = np.asarray(x).shape
    P3 = _planes(x)
    wins, (OH, OW) = avg_windows(P3.shape[1], P3.shape[2], k, s, p, ceil_mode, count_include_pad,
                                 divisor_override)
    y = np.zeros((len(P3), OH, OW))
    for i, j, r, c, div in wins:
        y[:, i, j] = P3[:, r, c].sum(axis=(1, 2)) / div
    return y.reshape(tuple(xs[:-2]) + (OH, OW))


def avg_pool2d_vjp(gy, x_shape, k, s, p, ceil_mode=False, count_include_pad=True, divisor_override=None):
    g = _planes(gy)
    wins, _ = avg_windows(x_shape[-2], x_shape[-1], k, s, p, ceil_mode, count_include_pad,
                          divisor_override)
    dx = np.zeros((len(g),) + tuple(x_shape[-2:]))
    for i, j, r, c, div in wins:
        dx[:, r, c] += (g[:, i, j] / div)[:, None, None]
    return dx.reshape(x_shape)


def adaptive_windows(n, o):
    """Window i of o along an axis of n: rows floor(i·n/o) … ceil((i+1)·n/o) − 1."""
    return [(i * n // o, -(-(i + 1) * n // o)) for i in range(o)]


def adaptive_avg_pool2d(x, out):
    xs = np.asarray(x).shape
    P3 = _planes(x)
    rows, cols = adaptive_windows(P3.shape[1], out[0]), adaptive_windows(P3.shape[2], out[1])
    y = np.zeros((len(P3), out[0], out[1]))
    for i, (r0, r1) in enumerate(rows):
        for j, (c0, c1) in enumerate(cols):
            y[:, i, j] = P3[:, r0:r1, c0:c1].mean(axis=(1, 2))
    return y.reshape(tuple(xs[:-2]) + tuple(out))


def adaptive_avg_pool2d_vjp(gy, x_shape, out):
    g = _planes(gy)
    H, W = x_shape[-2:]
    dx = np.zeros((len(g), H, W))
    for i, (r0, r1) in enumerate(adaptive_windows(H, out[0])):
        for j, (c0, c1) in enumerate(adaptive_windows(W, out[1])):
            dx[:, r0:r1, c0:c1] += (g[:, i, j] / ((r1 - r0) * (c1 - c0)))[:, None, None]
    return dx.reshape(x_shape)


# ---- matmul ------------------------------------------------------------------------------------

def _sum_to(g, shape):
    """Undo NumPy broadcasting: sum g down to `shape`."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for ax, n in enumerate(shape):
        if n == 1 and g.shape[ax] != 1:
            g = g.sum(axis=ax, keepdims=True)
    return g


def matmul(a, b):
    """y[..., i, j] = Σ_k a[..., i, k] · b[..., k, j], as an explicit broadcast sum of
    products (1-d operands promoted and the promoted axis dropped, NumPy's rules)."""
    a, b = np.asarray(a), np.asarray(b)
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    y = (a2[..., :, :, None] * b2[..., None, :, :]).sum(axis=-2)
    if a.ndim == 1:
        y = y[..., 0, :]
    if b.ndim == 1:
        y = y[..., 0]
    return y


def matmul_vjp(a, b, gy):
    """(∂L/∂a, ∂L/∂b): ∂L/∂a[..., i, k] = Σ_j g[..., i, j] b[..., k, j], summed over
    broadcast batch axes; ∂L/∂b[..., k, j] = Σ_i a[..., i, k] g[..., i, j]."""
    a, b, gy = (np.asarray(v, np.float64) for v in (a, b, gy))
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    g = gy
    if a.ndim == 1:
        g = g[..., None, :] if b.ndim != 1 else g[..., None]
    if b.ndim == 1:
        g = g[..., None]
    da = (g[..., :, None, :] * b2[..., None, :, :]).sum(axis=-1)     # (..., m, k)
    db = (a2[..., :, :, None] * g[..., :, None, :]).sum(axis=-3)     # (..., k, n)
    if a.ndim == 1:
        da = da[..., 0, :]
    if b.ndim == 1:
        db = db[..., 0]
    return _sum_to(da, a.shape), _sum_to(db, b.shape)


# ---- losses ------------------------------------------------------------------------------------

def log_softmax_rows(z):
    z = np.asarray(z, np.float64)
    out = np.empty_like(z)
    for n in range(len(z)):
        m = np.max(z[n])
        out[n] = z[n] - m - math.log(np.sum(np.exp(z[n] - m)))
    return out


def cross_entropy(z, y, weight=None, reduction="mean", label_smoothing=0.0):
    """PyTorch's definition: q[n,c] = (1−ε)·w[y_n]·[c = y_n] + (ε/C)·w[c];
    ℓ_n = −Σ_c q[n,c] · log_softmax(z)[n,c]; 'mean' divides Σ ℓ_n by Σ_n w[y_n]."""
    z = np.asarray(z, np.float64)
    N, C = z.shape
    w = np.ones(C) if weight is None else np.asarray(weight, np.float64)
    logp = log_softmax_rows(z)
    losses = np.zeros(N)
    for n in range(N):
        for c in range(C):
            q = (1 - label_smoothing) * w[y[n]] * (c == y[n]) + label_smoothing / C * w[c]
            losses[n] -= q * logp[n, c]
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    denom = sum(w[y[n]] for n in range(N))
    return losses.sum() / denom if denom else np.nan


def cross_entropy_vjp(z, y, gy, weight=None, reduction="mean", label_smoothing=0.0):
    """∂ℓ_n/∂z[n,k] = softmax(z)[n,k]·Σ_c q[n,c] − q[n,k], times δ_n ('none'), δ ('sum')
    or δ / Σ_n w[y_n] ('mean')."""
    z = np.asarray(z, np.float64)
    N, C = z.shape
    w = np.ones(C) if weight is None else np.asarray(weight, np.float64)
    p = np.exp(log_softmax_rows(z))
    gy = np.asarray(gy, np.float64)
    denom = sum(w[y[n]] for n in range(N))
    dz = np.zeros_like(z)
    for n in range(N):
        q = np.array([(1 - label_smoothing) * w[y[n]] * (c == y[n]) + label_smoothing / C * w[c]
                      for c in range(C)])
        row = p[n] * q.sum() - q
        scale = gy[n] if reduction == "none" else (gy if reduction == "sum" else gy / denom)
        dz[n] = row * scale
    return dz


def mse_loss(x, t, reduction="mean"):
    d = np.asarray(x, np.float64) - np.asarray(t, np.float64)
    sq = d * d
    if reduction == "none":
        return sq
    if reduction == "sum":
        return sq.sum()
    return sq.sum() / sq.size if sq.size else np.nan


def mse_loss_vjp(x, t, gy, reduction="mean"):
    """∂L/∂x = 2(x − t)·δ, divided by the element count for 'mean'."""
    d = np.asarray(x, np.float64) - np.asarray(t, np.float64)
    gy = np.asarray(gy, np.float64)
    g = 2 * d * gy
    if reduction == "mean":
        g = g / d.size
    return g
