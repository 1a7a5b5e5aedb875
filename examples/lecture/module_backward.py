"""Torch7's module-wise view of a network: each module has a forward and a backward, and
a training step pushes δ back through them by hand.

    python examples/lecture/module_backward.py

The notes build, in Torch7 (Lua),
    model = nn.Sequential(); model:add(nn.Linear(3, 4)); model:add(nn.Sigmoid())
    model:add(nn.Linear(4, 3)); model:add(nn.Sigmoid()); criterion = nn.MSECriterion()
and train with
    outputs = model:forward(X);           loss = criterion:forward(outputs, Y)
    dloss_doutput = criterion:backward(outputs, Y);  model:backward(X, dloss_doutput)
In minigrad, module.backward(input, grad_output) returns ∂L/∂input and adds ∂L/∂θ to
every parameter's .grad, as Torch7's does. Below: the same step, once module by module
(last first, each module given the input it saw in the forward), once by autograd; the
gradients agree.
"""
import numpy as np

import minigrad as mg
import minigrad.nn as nn
import minigrad.nn.functional as F


def _fmt(a):
    return np.array2string(np.asarray(a, np.float64), precision=5, suppress_small=True, separator=", ")


def create_model():
    return nn.Sequential(nn.Linear(3, 4), nn.Sigmoid(), nn.Linear(4, 3), nn.Sigmoid())


def main():
    mg.manual_seed(0)
    model = create_model()
    X = mg.tensor([[1.0, 0.0, 0.0]])                    # the notes' input (1, 0, 0)ᵀ, one row
    Y = mg.tensor([[0.0, 1.0, 0.0]])

    # forward, module by module, keeping each module's input
    inputs, h = [], X
    with mg.no_grad():
        for m in model:
            inputs.append(h)
            h = m(h)
    outputs = h
    loss = F.mse_loss(outputs, Y)                      # criterion:forward(outputs, Y)
    dloss_doutput = 2 * (outputs.numpy() - Y.numpy()) / outputs.size   # criterion:backward
    print(f"outputs = {_fmt(outputs.numpy())}, loss = {loss.item():.6f}")
    print(f"dloss/doutput = 2·(outputs − Y)/n = {_fmt(dloss_doutput)}")

    δ = dloss_doutput                                  # model:backward(X, dloss_doutput)
    for m, inp in zip(reversed(list(model)), reversed(inputs)):
        δ = m.backward(inp, δ)
        print(f"  {type(m).__name__:8s} backward -> δ for its input {tuple(δ.shape)}: {_fmt(δ.numpy())}")
    by_hand = {n: p.grad.numpy().copy() for n, p in model.named_parameters()}

    model.zero_grad()                                  # the same gradients by autograd
    Xg = mg.tensor(X.numpy(), requires_grad=True)
    F.mse_loss(model(Xg), Y).backward()
    worst = max(float(np.abs(by_hand[n] - p.grad.numpy()).max()) for n, p in model.named_parameters())
    print(f"parameter gradients, module by module vs autograd: largest difference {worst:.2g}")
    print(f"∂L/∂X module by module {_fmt(δ.numpy())}, autograd {_fmt(Xg.grad.numpy())}")
    return {"by_hand": by_hand, "autograd": {n: p.grad.numpy() for n, p in model.named_parameters()},
            "dx_by_hand": δ.numpy(), "dx_autograd": Xg.grad.numpy()}


if __name__ == "__main__":
    main()
