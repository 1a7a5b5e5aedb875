"""nn.LocalResponseNorm (AlexNet's normalisation across neighbouring channels) and
nn.GroupNorm; the math and the backward are in minigrad/ops/lrn.py and group_norm.py."""
import numpy as np

from ..ops.group_norm import group_norm, group_norm_args
from ..ops.lrn import local_response_norm, lrn_args
from .module import Module, Parameter


class LocalResponseNorm(Module):
    """b_c = a_c / (k + α/n · Σ_{c' = c − ⌊n/2⌋}^{c + ⌊(n−1)/2⌋} a_{c'}²)^β with n = size
    (see F.local_response_norm). AlexNet: LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2).
    Input (N, C, …) with at least 3 dims. No parameters."""

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        super().__init__()
        lrn_args("LocalResponseNorm", size, alpha, beta, k)
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k     # as given (repr)

    def forward(self, x):
        return local_response_norm(x, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class GroupNorm(Module):
    """Group normalisation: each sample's channels in num_groups groups of
    num_channels/num_groups, normalised by the group's own mean and variance, then
    y = γ_c x̂ + β_c (γ = 1, β = 0 initially; see F.group_norm). Input (N, C, …).
    affine=False: no γ, β; bias=False (keyword): γ only (PyTorch's signature; device is
    accepted and must be None or 'cpu')."""

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, device=None, dtype=None, *,
                 bias=True):
        super().__init__()
        if device not in (None, "cpu"):
            raise ValueError(f"GroupNorm(): only device='cpu' exists in minigrad, got {device!r}")
        self.num_groups, self.num_channels, self.eps = group_norm_args(
            "GroupNorm", num_groups, num_channels, eps)
        self.affine, self.has_bias = bool(affine), bool(bias)
        dtype = np.dtype(np.float32 if dtype is None else dtype)
        self.register_parameter("weight", Parameter(np.ones(self.num_channels, dtype)) if self.affine else None)
        self.register_parameter("bias", Parameter(np.zeros(self.num_channels, dtype))
                                if self.affine and self.has_bias else None)

    def forward(self, x):
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ValueError(f"GroupNorm: expected an input (N, {self.num_channels}, ...), got shape "
                             f"{tuple(x.shape)}")
        return group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.has_bias}")
