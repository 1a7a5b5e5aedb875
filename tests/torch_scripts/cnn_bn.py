"""A small CNN with batch norm, written as PyTorch code (tests/test_compat.py runs it on
minigrad through `python -m minigrad.run`; tests/data/make_torch_golden.py runs it with
real PyTorch). Weights and inputs come from NumPy's seeded generator, so both runs see
the same numbers. Usage: python cnn_bn.py OUT.npz"""
import sys
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


class SmallCNN(nn.Module):
    def __init__(self, in_channels: int = 3, num_classes: int = 5) -> None:
        super().__init__()
        self.features = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(in_channels, 4, kernel_size=3, padding=1, bias=False)),
            ("bn1", nn.BatchNorm2d(4)),
            ("relu1", nn.ReLU()),
            ("pool1", nn.MaxPool2d(2)),
            ("conv2", nn.Conv2d(4, 6, kernel_size=3, stride=1, padding=1)),
            ("relu2", nn.ReLU()),
        ]))
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=0.5)
        self.fc = nn.Linear(6, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)
        x = self.pool(x)
        x = torch.flatten(x, 1)
        x = self.dropout(x)
        return self.fc(x)


def run(dtype):
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rng = np.random.default_rng(0)
    model = SmallCNN().to(device)
    model = model.double() if dtype == torch.float64 else model.float()
    with torch.no_grad():
        for name, value in model.state_dict().items():
            if value.is_floating_point():
                src = rng.uniform(-0.5, 0.5, tuple(value.shape))
                if "running_var" in name:
                    src = src + 1.0
                value.copy_(torch.from_numpy(src))
    x = torch.from_numpy(rng.standard_normal((4, 3, 8, 8))).to(device=device, dtype=dtype)
    y = torch.tensor([0, 3, 1, 4], dtype=torch.long)
    out = {}
    model.train()                                  # batch statistics (dropout needs eval: see below)
    model.dropout.eval()
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    model.zero_grad()
    loss.backward()
    out["train_logits"] = logits.detach().cpu().numpy()
    out["train_loss"] = np.array(loss.item())
    for name, p in model.named_parameters():
        out["grad_" + name] = p.grad.numpy()
    for name, b in model.named_buffers():
        out["buffer_" + name] = b.numpy() if hasattr(b, "numpy") else np.asarray(b)
    model.eval()
    with torch.no_grad():
        logits = model(x)
        probs = F.softmax(logits, dim=1)
    out["eval_logits"] = logits.numpy()
    out["eval_probs"] = probs.numpy()
    out["eval_pred"] = probs.argmax(dim=1).numpy()
    out["log_softmax"] = logits.log_softmax(1).numpy()
    return out


if __name__ == "__main__":
    results = {}
    for tag, dtype in (("f64", torch.float64), ("f32", torch.float32)):
        for k, v in run(dtype).items():
            results[f"{tag}/{k}"] = v
    np.savez(sys.argv[1], **results)
