"""Peak memory of conv2d forward + backward on a 64×64×56×56 input with a 3×3, 64→64 kernel
(a ResNet stage), float32.

    python benchmarks/memory.py [--batch 64] [--size 56] [--channels 64]

Each case runs in a fresh child process, which allocates the input, the weight and the
upstream gradient, records its peak resident memory (VmHWM; ru_maxrss where /proc is
missing), runs forward + backward once, and reports the growth of the peak. The arrays any implementation must hold at once —
the input, the output, δ, ∂L/∂x (each N·C·H·W·4 bytes) and the weight and its gradient — are
printed as a floor: what is above it is workspace (im2col buffers and the like; minigrad
bounds its im2col buffer by processing the batch in chunks). An unchunked im2col of the
whole batch would need N·C·kh·kw·OH·OW·4 bytes on top; that line is printed too.
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PEAK = r"""
import json, resource, sys

def peak():
    # this process's peak resident memory in bytes: VmHWM, the high-water mark of its own
    # address space (ru_maxrss would do, but after fork + exec it starts at the *parent's*
    # peak, so a big parent hides the child's growth)
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024     # KiB on Linux
"""

CHILD = PEAK + r"""
N, C, S, impl = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
import numpy as np
rng = np.random.default_rng(0)
x = rng.standard_normal((N, C, S, S), dtype=np.float32)
w = rng.standard_normal((C, C, 3, 3), dtype=np.float32) * 0.05
g = rng.standard_normal((N, C, S, S), dtype=np.float32)
if impl.startswith("minigrad"):
    import minigrad as mg
    import minigrad.nn.functional as F
    if impl != "minigrad":                           # e.g. minigrad:gemm, for the rest of the run
        from minigrad import kernels
        kernels.use(impl.split(":")[1]).__enter__()
    xt, wt = mg.Tensor._wrap(x, True), mg.Tensor._wrap(w, True)
    small = mg.Tensor._wrap(x[:1].copy(), True)             # load the kernels, warm BLAS
    F.conv2d(small, wt, padding=1).sum().backward()
    wt.grad = None
    before = peak()
    y = F.conv2d(xt, wt, padding=1)
    y.backward(g)
    after = peak()
    assert xt.grad.shape == x.shape and wt.grad.shape == w.shape
else:
    import torch
    torch.set_grad_enabled(True)
    xt = torch.from_numpy(x).requires_grad_()
    wt = torch.from_numpy(w).requires_grad_()
    small = torch.from_numpy(x[:1].copy()).requires_grad_()
    torch.nn.functional.conv2d(small, wt, padding=1).sum().backward()
    wt.grad = None
    before = peak()
    y = torch.nn.functional.conv2d(xt, wt, padding=1)
    y.backward(torch.from_numpy(g))
    after = peak()
print(json.dumps({"before": before, "after": after}))
"""


LENET = PEAK + r"""
steps, bs, impl, root = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
import os
import numpy as np
sys.path.insert(0, os.path.join(root, "examples"))
from minigrad.data import load_fashion_mnist
x, y = load_fashion_mnist(train=True)
x = (x - x.mean()) / x.std()
if impl == "minigrad":
    import minigrad as mg, minigrad.nn.functional as F
    from lenet import lenet5
else:
    import torch, torch.nn as nn


def reset_peak():
    # give the heap that loading the data freed back to the OS (so neither library reuses
    # it for free), then reset the high-water mark to what is resident now
    import ctypes
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


reset_peak()
before = peak()
if impl == "minigrad":
    mg.manual_seed(0)
    model = lenet5()
    opt = mg.optim.Adam(model.parameters(), lr=2e-3)
    for i in range(steps):
        loss = F.cross_entropy(model(mg.tensor(x[i * bs:(i + 1) * bs])), mg.tensor(y[i * bs:(i + 1) * bs]))
        opt.zero_grad(); loss.backward(); opt.step()
else:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for i in range(steps):
        loss = nn.functional.cross_entropy(model(torch.from_numpy(x[i * bs:(i + 1) * bs])),
                                           torch.from_numpy(y[i * bs:(i + 1) * bs]))
        opt.zero_grad(); loss.backward(); opt.step()
print(json.dumps({"before": before, "after": peak()}))
"""


def run_lenet(impl, bs):
    """Peak growth over one epoch of LeNet-5 training (model, optimizer, all steps), measured
    from after the library is imported and the data set loaded."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", LENET, str(60000 // bs), str(bs), impl, ROOT],
                         capture_output=True, text=True, env=env)
    if out.returncode != 0:
        return None, out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return r["after"] - r["before"], None


def run(impl, N, C, S):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", CHILD, str(N), str(C), str(S), impl],
                         capture_output=True, text=True, env=env)
    if out.returncode != 0:
        return None, out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return r["after"] - r["before"], None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--channels", type=int, default=64)
    ap.add_argument("--size", type=int, default=56)
    ap.add_argument("--lenet", action="store_true", help="also one epoch of LeNet-5 training "
                    "(needs the Fashion-MNIST data)")
    ap.add_argument("--lenet-batch", type=int, default=64)
    a = ap.parse_args(argv)
    N, C, S = a.batch, a.channels, a.size
    mib = 2**20
    act = N * C * S * S * 4
    floor = 2 * act + 2 * C * C * 9 * 4          # y and ∂L/∂x are new; x and δ exist before
    im2col = N * C * 9 * S * S * 4
    print(f"conv2d forward + backward, x {N}×{C}×{S}×{S} float32 ({act / mib:.0f} MiB), "
          f"w {C}×{C}×3×3, padding 1")
    print(f"  new arrays any implementation must make (y, ∂L/∂x, ∂L/∂w): {floor / mib:8.0f} MiB")
    print(f"  an im2col matrix of the whole batch would add:              {im2col / mib:8.0f} MiB")
    print()
    print(f"  {'implementation':<26}{'peak growth (MiB)':>18}{'over the floor (MiB)':>22}")
    cases = ["minigrad", "minigrad:gemm", "minigrad:direct"]
    import importlib.util
    if importlib.util.find_spec("torch") is not None:      # not imported here: keep the parent small
        cases.append("torch")
    else:
        print("  (PyTorch is not installed: no comparison row)")
    for impl in cases:
        delta, err = run(impl, N, C, S)
        if delta is None:
            print(f"  {impl:<26}{'failed: ' + err}")
        else:
            print(f"  {impl:<26}{delta / mib:18.0f}{(delta - floor) / mib:22.0f}")
    if a.lenet:
        print()
        print(f"one epoch of LeNet-5 training (Adam, batch {a.lenet_batch}), peak growth after import and data loading:")
        for impl in ["minigrad"] + (["torch"] if "torch" in cases else []):
            delta, err = run_lenet(impl, a.lenet_batch)
            print(f"  {impl:<26}" + (f"failed: {err}" if delta is None else f"{delta / mib:18.0f} MiB"))


if __name__ == "__main__":
    main()
