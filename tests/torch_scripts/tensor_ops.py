"""Tensor operations as PyTorch code uses them in model definitions (views, cat/stack,
in-place residual additions, clones, dtype conversions, index assignment, checkpointing,
jit decorators). tests/test_compat.py runs it on minigrad through `python -m minigrad.run`;
tests/data/make_torch_golden.py runs it with real PyTorch. Usage: python tensor_ops.py OUT.npz"""
import sys
from typing import List

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from torch import Tensor


class Block(nn.Module):
    """A residual block written the way torchvision's ResNet writes it (out += identity)."""

    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c)

    @torch.jit.unused
    def call_checkpoint(self, x: Tensor) -> Tensor:
        return cp.checkpoint(self.conv, x, use_reentrant=False)

    def forward(self, x: Tensor) -> Tensor:
        identity = x
        out = self.call_checkpoint(x) if not torch.jit.is_scripting() else self.conv(x)
        out = self.bn(out)
        out += identity
        out = F.relu(out)
        return out


def concat(inputs: List[Tensor]) -> Tensor:
    return torch.cat(inputs, 1)


def main(path):
    rng = np.random.default_rng(5)
    res = {}
    x = torch.from_numpy(rng.standard_normal((2, 3, 4, 4))).requires_grad_()
    w = torch.tensor(rng.standard_normal((3,)), dtype=torch.float64, requires_grad=True)
    block = Block(3).double()
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(torch.from_numpy(rng.uniform(-0.5, 0.5, tuple(p.shape))))
    y = block(x)                                               # (2, 3, 4, 4)
    z = concat([y, x * w.view(1, 3, 1, 1)])                    # (2, 6, 4, 4)
    z = torch.stack([z, z.clone() * 2], dim=0).mean(0)         # (2, 6, 4, 4)
    flat = torch.flatten(z, 1)                                 # (2, 96)
    feats = flat.view(2, 6, 16).permute(0, 2, 1).contiguous()  # (2, 16, 6)
    scaled = feats * torch.arange(6).to(feats) / 6.0           # int arange promoted, then cast
    scaled = scaled + w.repeat(2)                              # (6,) broadcast
    e = w.view(3, 1).expand(3, 4)                              # (3, 4)
    buf = torch.zeros(2, 4, dtype=torch.float64)
    buf[0] = e[1] * 2.0                                        # index assignment in the graph
    buf[1, 1:3] = e[2, :2]
    probs = scaled.softmax(dim=-1)
    logp = scaled.log_softmax(-1)
    total = (probs * logp).sum() + (buf ** 2).sum() + scaled.max(dim=1)[0].sum()
    total.backward()
    res["y"] = y.detach().numpy()
    res["scaled"] = scaled.detach().numpy()
    res["buf"] = buf.detach().numpy()
    res["total"] = np.array(total.item())
    res["x_grad"] = x.grad.numpy()
    res["w_grad"] = w.grad.numpy()
    for name, p in block.named_parameters():
        res["block_grad/" + name] = p.grad.numpy()
    res["argmax"] = scaled.argmax(dim=2).numpy()
    res["argmin_flat"] = np.array(scaled.argmin().item())
    res["argmax_keep"] = scaled.argmax(1, keepdim=True).numpy()
    idx = scaled.max(dim=1).indices
    res["max_indices"] = idx.numpy()
    ints = (scaled.detach() * 10).long()
    res["long"] = ints.numpy()
    res["long_sum"] = np.array(ints.sum().item())
    res["int_div"] = (ints[0, 0] / 4).numpy()                  # true division: float32
    res["half"] = scaled.detach().half().float().numpy()
    res["type_as"] = torch.ones(3).type_as(x).numpy()
    res["numel"] = np.array([torch.numel(scaled), scaled.numel(), scaled.dim(), scaled.size(1)])
    res["is_tensor"] = np.array([torch.is_tensor(x), torch.is_tensor(3.0)])
    res["full"] = torch.full((2, 2), 1.5).numpy()
    res["zeros_like"] = torch.zeros_like(x).numpy()
    res["ones_like"] = torch.ones_like(w, dtype=torch.float32).numpy()
    with torch.no_grad():
        t = torch.ones(3, 3)
        t.mul_(3).add_(1).sub_(torch.ones(3)).div_(2)
        t[0].fill_(7)
        t[2, 2] = -1
        t.clamp_(min=0.0)
        res["inplace"] = t.numpy()
        z2 = torch.zeros(2, 3)
        z2.copy_(torch.arange(3))
        res["copy_broadcast"] = z2.numpy()
    np.savez(path, **res)


if __name__ == "__main__":
    main(sys.argv[1])
