"""Gradients of gradients: a Hessian-vector product of a small CNN's loss, and a training
step with a gradient penalty.

    python examples/higher_order.py

1. Hessian-vector product. For the loss L(θ) of a small CNN (conv, ReLU, max-pool,
   linear, cross-entropy) and a direction v in parameter space,

       H v = ∂/∂θ ⟨∂L/∂θ, v⟩

   needs two backward passes: the first with create_graph=True, so that ∂L/∂θ is itself
   a tensor of a graph; the second differentiates ⟨∂L/∂θ, v⟩. The backward of the
   convolution is itself made of convolutions (∂L/∂x = conv_transpose2d(δ, w), ∂L/∂w a
   correlation of x with δ), so the second pass runs the same kernels again. The script
   checks H v against central differences of the gradient, (∇L(θ + εv) − ∇L(θ − εv)) / 2ε.

2. Gradient penalty (as in WGAN-GP, or input-gradient regularisation). The step
   minimises L + λ·(‖∂L/∂x‖₂ − 1)², a loss that contains a gradient: backward of it
   differentiates the input gradient with respect to the weights.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import minigrad as mg                      # noqa: E402
import minigrad.nn as nn                   # noqa: E402
import minigrad.nn.functional as F         # noqa: E402
from minigrad import autograd              # noqa: E402


def small_cnn():
    """1×8×8 images -> 3 classes: conv 3×3 (4 maps), ReLU, 2×2 max-pool, linear."""
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(4 * 4 * 4, 3)).double()


def hessian_vector_product(model, x, y, v):
    """H v for the loss of `model` on (x, y): v and the result are lists of arrays shaped
    like model.parameters()."""
    params = list(model.parameters())
    loss = F.cross_entropy(model(x), y)
    grads = autograd.grad(loss, params, create_graph=True)          # ∂L/∂θ, differentiable
    dot = sum((g * mg.tensor(vi)).sum() for g, vi in zip(grads, v))  # ⟨∂L/∂θ, v⟩
    return [h.numpy() for h in autograd.grad(dot, params)]         # ∂⟨∂L/∂θ, v⟩/∂θ = H v


def gradient_at(model, x, y, shift):
    """∇L at θ + shift (shift: arrays shaped like the parameters); θ is restored after."""
    params = list(model.parameters())
    with mg.no_grad():
        for p, s in zip(params, shift):
            p.data += s
    try:
        loss = F.cross_entropy(model(x), y)
        return [g.numpy() for g in autograd.grad(loss, params)]
    finally:
        with mg.no_grad():
            for p, s in zip(params, shift):
                p.data -= s


def check_hessian_vector_product(seed=0, eps=1e-5):
    """(H v by double backward, H v by finite differences of the gradient), flattened."""
    mg.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = small_cnn()
    x = mg.tensor(rng.standard_normal((5, 1, 8, 8)))
    y = rng.integers(0, 3, 5)
    v = [rng.standard_normal(p.shape) for p in model.parameters()]
    hv = hessian_vector_product(model, x, y, v)
    plus = gradient_at(model, x, y, [eps * vi for vi in v])
    minus = gradient_at(model, x, y, [-eps * vi for vi in v])
    numeric = [(a - b) / (2 * eps) for a, b in zip(plus, minus)]
    return np.concatenate([h.ravel() for h in hv]), np.concatenate([n.ravel() for n in numeric])


def gradient_penalty_step(model, optimizer, x, y, lam=10.0):
    """One SGD step on L + λ(‖∂L/∂x‖₂ − 1)²; returns (L, penalty) as floats."""
    x = x.detach().requires_grad_(True)
    loss = F.cross_entropy(model(x), y)
    gx, = autograd.grad(loss, x, create_graph=True)                 # ∂L/∂x, differentiable
    norm = (gx * gx).sum().sqrt()
    penalty = lam * (norm - 1.0) ** 2
    optimizer.zero_grad()
    (loss + penalty).backward()                                      # through ∂L/∂x too
    optimizer.step()
    return loss.item(), penalty.item()


def main():
    hv, numeric = check_hessian_vector_product()
    err = np.max(np.abs(hv - numeric)) / np.max(np.abs(numeric))
    print(f"Hessian-vector product of a small CNN's loss ({hv.size} parameters):")
    print(f"  double backward  {np.array2string(hv[:4], precision=6)} ...")
    print(f"  finite diff.     {np.array2string(numeric[:4], precision=6)} ...")
    print(f"  largest difference / largest entry: {err:.1e}")

    mg.manual_seed(1)
    rng = np.random.default_rng(1)
    model = small_cnn()
    optimizer = mg.optim.SGD(model.parameters(), lr=0.05)
    x = mg.tensor(rng.standard_normal((16, 1, 8, 8)))
    y = rng.integers(0, 3, 16)
    print("\nTraining with a gradient penalty, L + 10·(‖∂L/∂x‖ − 1)²:")
    for step in range(6):
        loss, penalty = gradient_penalty_step(model, optimizer, x, y)
        print(f"  step {step}: L = {loss:.4f}, penalty = {penalty:.4f}")


if __name__ == "__main__":
    main()
