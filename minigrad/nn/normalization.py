"""nn.LocalResponseNorm: AlexNet's normalisation across neighbouring channels (the math
and its backward are in minigrad/ops/lrn.py)."""
from ..ops.lrn import local_response_norm, lrn_args
from .module import Module


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
