"""LeNet-5 training step (SGD with momentum, cross-entropy): minigrad vs PyTorch.

    python benchmarks/lenet_step.py [--batch 64 256] [--repeat 30]
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/lenet_step.py

Same architecture, same initial weights (copied), same batch; one step = forward,
loss, zero_grad, backward, optimizer step. Paired medians (see common.py).
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
from common import blas_info, fmt_ms, fmt_ratio, paired, print_table, try_torch  # noqa: E402

import minigrad as mg  # noqa: E402
import minigrad.nn.functional as F  # noqa: E402
from lenet import lenet5  # noqa: E402


def torch_lenet(torch, model):
    nn = torch.nn
    t = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                      nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    t.load_state_dict({k: torch.tensor(v) for k, v in model.state_dict().items()})
    return t


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, nargs="+", default=[64, 256])
    p.add_argument("--repeat", type=int, default=30)
    args = p.parse_args(argv)
    torch = try_torch()
    print(blas_info())
    print(f"minigrad threads: {mg.get_num_threads()}"
          + (f"; torch {torch.__version__} threads: {torch.get_num_threads()}" if torch else "; torch not installed"))
    rows = []
    for n in args.batch:
        rng = np.random.default_rng(0)
        x = rng.standard_normal((n, 1, 28, 28)).astype(np.float32)
        y = rng.integers(0, 10, n)
        mg.manual_seed(0)
        model = lenet5()
        opt = mg.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        xt, yt = mg.tensor(x), mg.tensor(y)

        def step_mg():
            loss = F.cross_entropy(model(xt), yt)
            opt.zero_grad()
            loss.backward()
            opt.step()

        step_t = None
        if torch is not None:
            tm = torch_lenet(torch, model)
            topt = torch.optim.SGD(tm.parameters(), lr=0.01, momentum=0.9)
            tx, ty = torch.tensor(x), torch.tensor(y)

            def step_t():
                loss = torch.nn.functional.cross_entropy(tm(tx), ty)
                topt.zero_grad()
                loss.backward()
                topt.step()

        a, b, r = paired(step_mg, step_t, repeat=args.repeat, warmup=5)
        rows.append((n, fmt_ms(a), fmt_ms(b), fmt_ratio(r), f"{n / a:,.0f}", "—" if b is None else f"{n / b:,.0f}"))
    print_table(["batch", "minigrad ms", "torch ms", "ratio", "minigrad img/s", "torch img/s"], rows)


if __name__ == "__main__":
    main()
