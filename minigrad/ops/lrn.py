"""Local response normalisation across channels (AlexNet, Krizhevsky et al. 2012, §3.3).

Each activation is divided by a power of the energy of its channel neighbours at the
same position (n = size, channel axis 1, any number of trailing axes):

    d_c = k + (α/n) · Σ_{c' ∈ W(c)} a_{c'}²,        b_c = a_c · d_c^(−β)

W(c) = {c − ⌊n/2⌋, …, c + ⌊(n−1)/2⌋} ∩ {0, …, C−1}: PyTorch's window (it pads the
channel axis with ⌊n/2⌋ zeros before and ⌊(n−1)/2⌋ after and divides by n always, so
channels near the edges see fewer neighbours but the same α/n). AlexNet used
n = 5, α = 10⁻⁴, β = 0.75, k = 2.

Backward. b_c depends on a_j directly when j = c, and through d_c whenever j ∈ W(c):
    ∂b_c/∂a_j = [c = j] · d_c^(−β) − β · a_c · d_c^(−β−1) · (α/n) · 2a_j · [j ∈ W(c)]
so
    ∂L/∂a_j = δ_j · d_j^(−β) − (2αβ/n) · a_j · Σ_{c : j ∈ W(c)} δ_c · a_c · d_c^(−β−1)
The set {c : j ∈ W(c)} = {j − ⌊(n−1)/2⌋, …, j + ⌊n/2⌋} is the window mirrored, so the
backward is the forward's channel-window sum of u_c = δ_c a_c d_c^(−β−1) with the
padding swapped.
"""
import numbers

import numpy as np

from ..autograd import Function
from .nn import as_float_tensor


def _channel_window_sum(v, before, after):
    """s[:, c] = Σ_{t = −before … after} v[:, c + t] (zero outside 0 … C−1), along axis 1.

    n = before + after + 1 shifted slices of a zero-padded copy: exact, O(n·size)."""
    C = v.shape[1]
    padded = np.zeros((v.shape[0], C + before + after) + v.shape[2:], v.dtype)  # (N, C+n−1, …)
    padded[:, before:before + C] = v
    s = padded[:, 0:C].copy()                                                   # (N, C, …)
    for t in range(1, before + after + 1):
        s += padded[:, t:t + C]
    return s


class LocalResponseNormFunction(Function):
    """b_c = a_c · (k + (α/n) Σ_{c' ∈ W(c)} a_{c'}²)^(−β), W(c) = c − ⌊n/2⌋ … c + ⌊(n−1)/2⌋.

    Backward (module docstring): with d_c = k + (α/n) Σ_{W(c)} a², u_c = δ_c a_c d_c^(−β−1),
        ∂L/∂a_j = δ_j d_j^(−β) − (2αβ/n) · a_j · Σ_{c = j − ⌊(n−1)/2⌋}^{j + ⌊n/2⌋} u_c
    """

    @staticmethod
    def forward(ctx, a, size, alpha, beta, k):
        before, after = size // 2, (size - 1) // 2
        t = a.dtype.type
        d = t(k) + t(alpha / size) * _channel_window_sum(a * a, before, after)   # (N, C, …) d_c
        d_neg_beta = d ** t(-beta)                                                 # d_c^(−β)
        ctx.save_for_backward(d, d_neg_beta)
        ctx.size, ctx.alpha, ctx.beta, ctx.k = size, alpha, beta, k
        return a * d_neg_beta                                                      # b_c

    @staticmethod
    def backward(ctx, δ):
        """∂L/∂a_j = δ_j d_j^(−β) − (2αβ/n) a_j Σ_{c: j ∈ W(c)} δ_c a_c d_c^(−β−1), by
        LocalResponseNormBackward (an op of its own, so that it is differentiated again)."""
        d, d_neg_beta = ctx.saved
        return (LocalResponseNormBackward.apply(δ, ctx.inputs[0], d, d_neg_beta, ctx.size,
                                                ctx.alpha, ctx.beta, ctx.k),
                None, None, None, None)


class LocalResponseNormBackward(Function):
    """LRN's ∂L/∂a (module docstring) as an op: forward over the saved d and d^(−β);
    backward (the double backward) over tensors, d recomputed from a.

    Write W(v)_c = Σ_{c' ∈ W(c)} v_{c'} (the forward's window sum), M its mirror (the
    adjoint: Σ_j x_j M(u)_j = Σ_c W(x)_c u_c), κ = 2αβ/n, p = d^(−β), q = d^(−β−1). Then
        ∂L/∂a = δ p − κ a M(δ a q)
    and, with ε the gradient arriving at ∂L/∂a, ⟨ε, ∂L/∂a⟩ = Σ ε δ p − κ Σ_c W(ε a)_c δ_c a_c q_c, so
        ∂/∂δ = ε p − κ a q W(ε a)
        ∂/∂a = −κ [a M(ε δ q) + ε M(δ a q) + W(ε a) δ q − (β + 1)(2α/n) a M(W(ε a) δ a q / d)]
    (∂p_c/∂a_j = −κ q_c a_j and ∂q_c/∂a_j = −(β + 1)(2α/n) a_j q_c / d_c for j ∈ W(c)).
    """

    @staticmethod
    def forward(ctx, δ, a, d, d_neg_beta, size, alpha, beta, k):
        ctx.size, ctx.alpha, ctx.beta, ctx.k = size, alpha, beta, k
        n = size
        t = a.dtype.type
        u = δ * a * d_neg_beta / d                                     # δ_c a_c d_c^(−β−1)
        mirrored = _channel_window_sum(u, (n - 1) // 2, n // 2)        # Σ_{c: j ∈ W(c)} u_c
        da = δ * d_neg_beta - t(2 * alpha * beta / n) * a * mirrored
        return da

    @staticmethod
    def backward(ctx, ε):
        δ, a = ctx.inputs[:2]
        n, alpha, beta, k = ctx.size, ctx.alpha, ctx.beta, ctx.k
        before, after = n // 2, (n - 1) // 2

        def W(v):
            return ChannelWindowSum.apply(v, before, after)

        def M(v):
            return ChannelWindowSum.apply(v, after, before)

        κ = 2 * alpha * beta / n
        d = k + (alpha / n) * W(a * a)                                 # recomputed from a
        p = d ** (-beta)                                               # d^(−β)
        q = p / d                                                      # d^(−β−1)
        Wεa = W(ε * a)
        dδ = da = None
        if ctx.needs_input_grad[0]:
            dδ = ε * p - κ * a * q * Wεa
        if ctx.needs_input_grad[1]:
            δq = δ * q
            da = -κ * (a * M(ε * δq) + ε * M(a * δq) + Wεa * δq
                       - ((beta + 1) * 2 * alpha / n) * a * M(Wεa * a * δq / d))
        return dδ, da, None, None, None, None, None, None


class ChannelWindowSum(Function):
    """s[:, c] = Σ_{t = −before … after} v[:, c + t] (zero outside 0 … C−1): LRN's window sum
    as an op. Linear; its backward is the mirrored window (before and after swapped)."""

    @staticmethod
    def forward(ctx, v, before, after):
        ctx.before, ctx.after = before, after
        return _channel_window_sum(v, before, after)

    @staticmethod
    def backward(ctx, ε):
        return ChannelWindowSum.apply(ε, ctx.after, ctx.before), None, None


def _positive_number(fn, name, v, allow_zero=True):
    if not isinstance(v, (numbers.Real, np.generic)) or isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{fn}(): {name} must be a number, got {v!r}")
    v = float(v)
    if not (v >= 0 if allow_zero else v > 0) or v == float("inf"):
        raise ValueError(f"{fn}(): {name} must be a finite {'non-negative' if allow_zero else 'positive'} "
                         f"number, got {v}")
    return v


def lrn_args(fn, size, alpha, beta, k):
    """Validated (size, alpha, beta, k): size a positive int, alpha and beta finite ≥ 0, k > 0."""
    if not isinstance(size, numbers.Integral) or isinstance(size, bool):
        raise TypeError(f"{fn}(): size must be an int, got {size!r}")
    if size < 1:
        raise ValueError(f"{fn}(): size must be positive, got {size}")
    return (int(size), _positive_number(fn, "alpha", alpha), _positive_number(fn, "beta", beta),
            _positive_number(fn, "k", k, allow_zero=False))


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """Local response normalisation across channels (torch.nn.functional.local_response_norm):

        b[n, c, …] = a[n, c, …] / (k + α/size · Σ_{c' = c − ⌊size/2⌋}^{c + ⌊(size−1)/2⌋} a[n, c', …]²)^β

    (channels outside 0 … C−1 count as 0). input: (N, C, …) with at least 3 dims, e.g.
    (N, C, H, W). k must be positive (the base of the power is then never 0).
    """
    fn = "local_response_norm"
    x = as_float_tensor(input, fn, "input")
    size, alpha, beta, k = lrn_args(fn, size, alpha, beta, k)
    if x.ndim < 3:
        raise ValueError(f"{fn}(): input must have at least 3 dims (N, C, …), got shape {x.shape}")
    return LocalResponseNormFunction.apply(x, size, alpha, beta, k)
