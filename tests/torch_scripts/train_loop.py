"""A PyTorch training loop (DataLoader, SGD with momentum, gradient clipping, StepLR, Adam, a hand-written
d2l-style SGD step, evaluation under no_grad, state_dict round trip), written as PyTorch
code. tests/test_compat.py runs it on minigrad through `python -m minigrad.run`;
tests/data/make_torch_golden.py runs it with real PyTorch. Usage: python train_loop.py OUT.npz"""
import sys

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F
import torch.optim as optim
from torch.optim.lr_scheduler import StepLR
from torch.utils.data import DataLoader, TensorDataset


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, kernel_size=3)
        self.pool = nn.MaxPool2d(2, 2)
        self.fc1 = nn.Linear(3 * 3 * 3, 8)
        self.fc2 = nn.Linear(8, 4)

    def forward(self, x):
        x = self.pool(F.relu(self.conv(x)))
        x = x.view(x.size(0), -1)
        x = torch.tanh(self.fc1(x))
        return self.fc2(x)


def init_from_numpy(model, seed):
    rng = np.random.default_rng(seed)
    for p in model.parameters():
        with torch.no_grad():
            p.copy_(torch.from_numpy(rng.uniform(-0.4, 0.4, tuple(p.shape))))


def data():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((24, 1, 8, 8))
    Y = (X[:, 0, :4].sum(axis=(1, 2)) > 0).astype(np.int64) + 2 * (X[:, 0, :, :4].sum(axis=(1, 2)) > 0)
    return torch.from_numpy(X), torch.from_numpy(Y)


def evaluate(model, loader):
    model.eval()
    correct, total, loss_sum = 0, 0, 0.0
    with torch.no_grad():
        for xb, yb in loader:
            out = model(xb)
            loss_sum += F.cross_entropy(out, yb, reduction="sum").item()
            correct += (out.argmax(dim=1) == yb).sum().item()
            total += yb.shape[0]
    return correct / total, loss_sum / total


def train(make_optimizer, epochs=3, scheduler=False, clip=None):
    X, Y = data()
    loader = DataLoader(TensorDataset(X, Y), batch_size=8, shuffle=False, num_workers=0)
    model = Net().double()
    init_from_numpy(model, 2)
    optimizer = make_optimizer(model.parameters())
    sched = StepLR(optimizer, step_size=1, gamma=0.5) if scheduler else None
    criterion = nn.CrossEntropyLoss()
    losses = []
    for epoch in range(epochs):
        model.train()
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = criterion(model(xb), yb)
            loss.backward()
            if clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), max_norm=clip)
            optimizer.step()
            losses.append(loss.item())
        if sched is not None:
            sched.step()
    acc, test_loss = evaluate(model, loader)
    state = {k: v.clone().numpy() for k, v in model.state_dict().items()}
    return np.array(losses), np.array([acc, test_loss]), state


def manual_sgd(lr=0.5, epochs=2):
    """The d2l book's from-scratch step: params updated in place under no_grad."""
    X, Y = data()
    model = Net().double()
    init_from_numpy(model, 3)
    params = list(model.parameters())
    losses = []
    for epoch in range(epochs):
        for i in range(0, len(X), 8):
            loss = F.cross_entropy(model(X[i:i + 8]), Y[i:i + 8])
            loss.backward()
            with torch.no_grad():
                for p in params:
                    p -= lr * p.grad
                    p.grad.zero_()
            losses.append(loss.item())
    return np.array(losses), {k: v.numpy() for k, v in model.state_dict().items()}


if __name__ == "__main__":
    out = {}
    runs = {
        "sgd": (lambda ps: optim.SGD(ps, lr=0.2, momentum=0.9, weight_decay=1e-3), True, 0.5),
        "adam": (lambda ps: optim.Adam(ps, lr=0.01), False, None),
    }
    for name, (make, sched, clip) in runs.items():
        losses, metrics, state = train(make, scheduler=sched, clip=clip)
        out[f"{name}/losses"], out[f"{name}/metrics"] = losses, metrics
        for k, v in state.items():
            out[f"{name}/state/{k}"] = v
    losses, state = manual_sgd()
    out["manual/losses"] = losses
    for k, v in state.items():
        out[f"manual/state/{k}"] = v
    # a state_dict exported from this run loads into a fresh model, by the same keys
    fresh = Net().double()
    fresh.load_state_dict({k[len("sgd/state/"):]: torch.from_numpy(v) for k, v in out.items()
                           if k.startswith("sgd/state/")})
    out["reload/logits"] = fresh(data()[0][:4]).detach().numpy()
    np.savez(sys.argv[1], **out)
