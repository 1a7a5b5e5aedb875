"""The textbook (d2l) way of writing the lecture's networks: lazy modules whose shapes are
inferred at a dry run, `net.apply(init_cnn)`, and small LeNet / NiN / Inception / residual
/ dense blocks, trained for a few SGD steps. tests/test_compat.py runs it on minigrad through
`python -m minigrad.run`; tests/data/make_torch_golden.py runs it with real PyTorch.
Usage: python textbook_lazy.py OUT.npz"""
import sys

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


def init_cnn(module):
    if type(module) == nn.Linear or type(module) == nn.Conv2d:
        nn.init.xavier_uniform_(module.weight)


def lenet():
    return nn.Sequential(
        nn.LazyConv2d(6, kernel_size=5, padding=2), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.LazyConv2d(16, kernel_size=5), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.LazyLinear(120), nn.Sigmoid(),
        nn.LazyLinear(84), nn.Sigmoid(),
        nn.LazyLinear(10))


def nin_block(out_channels, kernel_size, strides, padding):
    return nn.Sequential(
        nn.LazyConv2d(out_channels, kernel_size, strides, padding), nn.ReLU(),
        nn.LazyConv2d(out_channels, kernel_size=1), nn.ReLU(),
        nn.LazyConv2d(out_channels, kernel_size=1), nn.ReLU())


class Inception(nn.Module):
    def __init__(self, c1, c2, c3, c4, **kwargs):
        super(Inception, self).__init__(**kwargs)
        self.b1_1 = nn.LazyConv2d(c1, kernel_size=1)
        self.b2_1 = nn.LazyConv2d(c2[0], kernel_size=1)
        self.b2_2 = nn.LazyConv2d(c2[1], kernel_size=3, padding=1)
        self.b3_1 = nn.LazyConv2d(c3[0], kernel_size=1)
        self.b3_2 = nn.LazyConv2d(c3[1], kernel_size=5, padding=2)
        self.b4_1 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
        self.b4_2 = nn.LazyConv2d(c4, kernel_size=1)

    def forward(self, x):
        b1 = F.relu(self.b1_1(x))
        b2 = F.relu(self.b2_2(F.relu(self.b2_1(x))))
        b3 = F.relu(self.b3_2(F.relu(self.b3_1(x))))
        b4 = F.relu(self.b4_2(self.b4_1(x)))
        return torch.cat((b1, b2, b3, b4), dim=1)


class Residual(nn.Module):
    def __init__(self, num_channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1, stride=strides)
        self.conv2 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1)
        self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1, stride=strides) if use_1x1conv else None
        self.bn1 = nn.LazyBatchNorm2d()
        self.bn2 = nn.LazyBatchNorm2d()

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3:
            X = self.conv3(X)
        Y += X
        return F.relu(Y)


def conv_block(num_channels):
    return nn.Sequential(nn.LazyBatchNorm2d(), nn.ReLU(), nn.LazyConv2d(num_channels, kernel_size=3, padding=1))


class DenseBlock(nn.Module):
    def __init__(self, num_convs, num_channels):
        super(DenseBlock, self).__init__()
        layer = []
        for i in range(num_convs):
            layer.append(conv_block(num_channels))
        self.net = nn.Sequential(*layer)

    def forward(self, X):
        for blk in self.net:
            Y = blk(X)
            X = torch.cat((X, Y), dim=1)
        return X


def summary(g):
    """A gradient as stored in the golden file: whole when small, else its projections on
    8 random directions (NumPy-seeded, the same on both sides) and its norm."""
    g = np.asarray(g, np.float64).reshape(-1)
    if g.size <= 256:
        return g
    directions = np.random.default_rng(g.size).standard_normal((g.size, 8))
    return np.append(g @ directions, np.linalg.norm(g))


def small_nets():
    return {
        "lenet": (lenet(), (4, 1, 28, 28)),
        "nin": (nn.Sequential(nin_block(8, 3, 1, 1), nn.MaxPool2d(3, stride=2), nin_block(10, 3, 1, 1),
                              nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten()), (4, 1, 12, 12)),
        "inception": (nn.Sequential(Inception(2, (3, 4), (2, 3), 2), nn.AdaptiveAvgPool2d((1, 1)),
                                    nn.Flatten(), nn.LazyLinear(10)), (4, 3, 8, 8)),
        "resnet": (nn.Sequential(Residual(3), Residual(6, use_1x1conv=True, strides=2),
                                 nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.LazyLinear(10)), (4, 3, 8, 8)),
        "densenet": (nn.Sequential(DenseBlock(2, 3), nn.LazyBatchNorm2d(), nn.ReLU(),
                                   nn.AdaptiveMaxPool2d((1, 1)), nn.Flatten(), nn.LazyLinear(10)), (4, 3, 8, 8)),
    }


def main(path):
    out = {}
    rng = np.random.default_rng(7)
    for name, (net, shape) in small_nets().items():
        net(torch.zeros(*shape))                  # the dry run infers every lazy shape
        net.apply(init_cnn)
        net = net.double()
        with torch.no_grad():
            for key, v in net.state_dict().items():
                if v.is_floating_point():        # the dry run moved the running statistics too
                    low = 0.5 if "running_var" in key else -0.6
                    v.copy_(torch.from_numpy(rng.uniform(low, low + 1.2, tuple(v.shape))))
        out[f"{name}/types"] = np.array([type(m).__name__ for m in net.modules()])
        out[f"{name}/nparams"] = np.array(sum(p.numel() for p in net.parameters()))
        X = torch.from_numpy(rng.standard_normal(shape))
        y = torch.from_numpy(rng.integers(0, 10, shape[0]))
        optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
        losses = []
        for step in range(2):
            net.train()
            optimizer.zero_grad()
            logits = net(X)
            loss = F.cross_entropy(logits, y)
            loss.backward()
            if step == 0:
                out[f"{name}/logits"] = logits.detach().numpy()
                for pname, p in net.named_parameters():
                    out[f"{name}/grad/{pname}"] = summary(p.grad.numpy())
            optimizer.step()
            losses.append(loss.item())
        net.eval()
        with torch.no_grad():
            out[f"{name}/eval_logits"] = net(X).numpy()
        out[f"{name}/losses"] = np.array(losses)
    np.savez(path, **out)


if __name__ == "__main__":
    main(sys.argv[1])
