"""Differentiable operations, one module per family. Each op is a `Function` subclass
with its forward and backward side by side; the functions here are what Tensor's
operators and minigrad.nn.functional call."""
