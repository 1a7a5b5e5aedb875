"""Finite-difference gradient checking (public: mg.gradcheck)."""
import numpy as np

from .tensor import Tensor


class GradcheckError(AssertionError):
    """Raised by gradcheck: names the output, the input, the element and both numbers."""


def _as_outputs(out):
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return [o for o in outs if isinstance(o, Tensor)]


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0):
    """Check the analytic gradients of `fn` against central finite differences.

    Every floating input that requires grad is copied to a float64 leaf; `fn` is called
    on those copies. For each output o a fixed random vector r_o projects the Jacobian:
    the scalar L = Σ_o Σ r_o · o has the analytic gradient ∂L/∂x (one backward) and the
    numeric one (L(x + eps·e_i) − L(x − eps·e_i)) / 2eps for every element i of every
    input x. Each element must satisfy ``|numeric − analytic| ≤ atol + rtol·|numeric|``.

    Returns True, or raises GradcheckError naming the output, input, element index,
    numeric and analytic values, eps, atol and rtol.
    """
    if isinstance(inputs, Tensor):
        inputs = (inputs,)
    inputs = tuple(inputs)
    leaves = []
    for x in inputs:
        if isinstance(x, Tensor) and x.requires_grad:
            # C order, so that reshape(-1) below is a view (a transposed input would give a copy)
            leaves.append(Tensor(np.array(x.data, dtype=np.float64, order="C"), requires_grad=True))
        else:
            leaves.append(x)
    checked = [i for i, x in enumerate(leaves) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck(): no input requires grad; nothing to check")

    outs = _as_outputs(fn(*leaves))
    if not outs:
        raise ValueError("gradcheck(): fn returned no Tensor")
    rng = np.random.default_rng(seed)
    projections = [rng.standard_normal(o.shape) for o in outs]

    def scalar():
        """L = Σ_o Σ r_o · o, in float64, with the inputs as they are now."""
        return sum(float(np.sum(np.asarray(o.data, np.float64) * r))
                   for o, r in zip(_as_outputs(fn(*leaves)), projections))

    # analytic: one backward of L
    for i in checked:
        leaves[i].grad = None
    total = None
    for o, r in zip(outs, projections):
        if not o.requires_grad:
            continue
        term = (o * Tensor(r.astype(o.dtype))).sum()
        total = term if total is None else total + term
    if total is not None:
        total.backward()

    for i in checked:
        x = leaves[i]
        analytic = np.zeros(x.shape) if x.grad is None else np.asarray(x.grad.data, np.float64)
        flat = x.data.reshape(-1)           # a view: perturbing it perturbs x
        numeric = np.empty(flat.size)
        for k in range(flat.size):
            orig = flat[k]
            flat[k] = orig + eps
            plus = scalar()
            flat[k] = orig - eps
            minus = scalar()
            flat[k] = orig
            numeric[k] = (plus - minus) / (2 * eps)
        numeric = numeric.reshape(x.shape)
        bad = np.abs(numeric - analytic) > atol + rtol * np.abs(numeric)
        if np.any(bad) or np.any(np.isnan(analytic) != np.isnan(numeric)):
            idx = tuple(int(j) for j in np.argwhere(bad | (np.isnan(analytic) != np.isnan(numeric)))[0])
            raise GradcheckError(
                f"Jacobian mismatch for output {'0' if len(outs) == 1 else '0..' + str(len(outs) - 1)} "
                f"with respect to input {i} (shape {x.shape}) at element {idx}: "
                f"numerical {numeric[idx]:.8g}, analytical {analytic[idx]:.8g} "
                f"(eps={eps}, atol={atol}, rtol={rtol}; {int(bad.sum())} of {bad.size} elements differ)")
    return True


def gradgradcheck(fn, inputs, grad_outputs=None, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0):
    """Check second derivatives of `fn`: the gradient of its gradient against central finite
    differences of the gradient (PyTorch's gradgradcheck).

    With v the `grad_outputs` (random, seeded, when None) and x the inputs that require
    grad, the first derivatives g(x, v) = ∂⟨v, fn(x)⟩/∂x are computed with
    ``autograd.grad(..., create_graph=True)``; `gradcheck` then checks g as a function of
    both x and v (so every op's backward is differentiated through its saved inputs and
    through δ). Everything runs in float64.

    Returns True, or raises GradcheckError naming `fn`, the first derivative (∂/∂input j),
    the input of g, the element and both numbers.
    """
    from . import autograd
    if isinstance(inputs, Tensor):
        inputs = (inputs,)
    inputs = tuple(inputs)
    diff = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not diff:
        raise ValueError("gradgradcheck(): no input requires grad; nothing to check")
    leaves = [Tensor(np.array(x.data, dtype=np.float64, order="C"), requires_grad=True)
              if i in diff else x for i, x in enumerate(inputs)]
    outs = _as_outputs(fn(*leaves))
    if grad_outputs is None:
        rng = np.random.default_rng(seed + 1)
        grad_outputs = [rng.standard_normal(o.shape) for o in outs]
    elif isinstance(grad_outputs, (Tensor, np.ndarray)):
        grad_outputs = [grad_outputs]
    if len(grad_outputs) != len(outs):
        raise ValueError(f"gradgradcheck(): {len(grad_outputs)} grad_outputs for {len(outs)} outputs")
    vs = [Tensor(np.asarray(v.data if isinstance(v, Tensor) else v, dtype=np.float64),
                 requires_grad=True) for v in grad_outputs]
    n = len(leaves)

    def first_derivatives(*args):
        xs, v = args[:n], args[n:]
        ys = _as_outputs(fn(*xs))
        pairs = [(y, g) for y, g in zip(ys, v) if y.requires_grad]
        wrt = [xs[i] for i in diff]
        if not pairs:
            return tuple(Tensor(np.zeros(x.shape)) for x in wrt)
        grads = autograd.grad([y for y, _ in pairs], wrt, [g for _, g in pairs],
                              create_graph=True, allow_unused=True)
        return tuple(Tensor(np.zeros(x.shape)) if g is None else g for x, g in zip(wrt, grads))

    try:
        return gradcheck(first_derivatives, tuple(leaves) + tuple(vs), eps=eps, atol=atol,
                         rtol=rtol, seed=seed)
    except GradcheckError as e:
        owner = getattr(fn, "__self__", None)              # SomeFunction.apply names its op
        name = (f"{owner.__name__}.apply" if isinstance(owner, type) else
                getattr(fn, "__qualname__", None) or repr(fn))
        which = ", ".join(f"∂/∂input {i}" for i in diff)
        raise GradcheckError(
            f"gradgradcheck({name}): second derivatives disagree. The function checked is "
            f"({which}) of ⟨v, {name}(inputs)⟩, taking inputs 0..{n - 1} and then v (the "
            f"grad_outputs, inputs {n}..{n + len(vs) - 1}). {e}") from None
