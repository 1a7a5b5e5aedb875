"""The gradient of a gradient through SyncBatchNorm, on every rank of
`mpiexec -n N python tests/mpi_worker_double_backward.py` (launched by
tests/test_double_backward_nn.py): against BatchNorm2d on the global batch in one process,
float64. Prints "ok sync_batchnorm_double_backward" on rank 0 when every rank passed; a
failure raises, and init_process_group's excepthook ends the job with a non-zero exit.
"""
import numpy as np

import minigrad as mg
import minigrad.distributed as dist
import minigrad.nn as nn
from minigrad.autograd import grad

from mpi_worker import close


def second_order(layer, x, c, v, u):
    """∂/∂(x, γ) of  ⟨v, ∂L/∂x⟩ + ⟨u, ∂L/∂γ⟩ + ⟨v, (∂L/∂x)²⟩  with L = Σ layer(x) · c."""
    y = layer(x)
    gx, gw = grad((y * mg.tensor(c)).sum(), [x, layer.weight], create_graph=True)
    penalty = (gx * mg.tensor(v)).sum() + (gw * mg.tensor(u)).sum() + (gx * gx * mg.tensor(v)).sum()
    penalty.backward()
    return x.grad.numpy(), layer.weight.grad.numpy().copy()


def check_sync_batchnorm_double_backward():
    R, r = dist.get_world_size(), dist.get_rank()
    rng = np.random.default_rng(5)
    sizes = [2 + i for i in range(R)]                          # uneven local batches
    lo, hi = sum(sizes[:r]), sum(sizes[:r + 1])
    x = rng.standard_normal((sum(sizes), 3, 2, 3)) * 2 + 0.5
    c, v = rng.standard_normal(x.shape), rng.standard_normal(x.shape)
    u = rng.standard_normal(3)
    w, b = rng.standard_normal(3), rng.standard_normal(3)

    def layer(cls):
        m = cls(3, dtype=np.float64)
        m.weight.data[...], m.bias.data[...] = w, b
        return m
    gx_s, gw_s = second_order(layer(nn.SyncBatchNorm), mg.tensor(x[lo:hi], requires_grad=True),
                              c[lo:hi], v[lo:hi], u)           # Σ_r ⟨u, ∂L_r/∂γ⟩ = ⟨u, ∂L/∂γ⟩
    gx_g, gw_g = second_order(layer(nn.BatchNorm2d), mg.tensor(x, requires_grad=True), c, v, u)
    close(gx_s, gx_g[lo:hi], "SyncBatchNorm: second derivative with respect to x")
    dist.all_reduce(gw_s)
    close(gw_s, gw_g, "SyncBatchNorm: second derivative with respect to γ (summed over ranks)")


if __name__ == "__main__":
    dist.init_process_group(backend="mpi")
    check_sync_batchnorm_double_backward()
    dist.barrier()
    if dist.get_rank() == 0:
        print("ok sync_batchnorm_double_backward", flush=True)
    dist.destroy_process_group()
