"""Memory: training does not leak, and the graph is freed by backward without the cycle
collector's help.

The resident-memory measurement runs in a fresh child process (the rest of the suite would
pollute it): LeNet-5 (examples/lenet.py) is trained on random 32-image batches for 300
steps with the cyclic garbage collector *disabled*, so memory kept alive by reference
cycles counts as a leak too; resident memory after step 300 must be within 5% of
resident memory after step 20.
"""
import gc
import json
import os
import subprocess
import sys
import weakref

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TRAIN = r"""
import gc, json, os, sys
sys.path.insert(0, os.path.join(sys.argv[1], "examples"))
import numpy as np
import minigrad as mg
import minigrad.nn.functional as F
from lenet import lenet5

leak = os.environ.get("MINIGRAD_TEST_LEAK") == "1"   # the test's self-check: keep activations
page = os.sysconf("SC_PAGE_SIZE")


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * page


mg.manual_seed(0)
rng = np.random.default_rng(0)
model = lenet5()
opt = mg.optim.Adam(model.parameters(), lr=1e-3)
kept, marks, cyclic = [], {}, 0
gc.collect()
gc.disable()
for step in range(1, 301):
    x = mg.tensor(rng.standard_normal((32, 1, 28, 28)).astype(np.float32))
    y = rng.integers(0, 10, 32)
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    if leak:
        kept.append(model[0](x).data)
    if step in (20, 300):
        marks[step] = rss()
    if 20 < step <= 40:                 # cyclic garbage made by one step (0 expected)
        gc.enable(); cyclic += gc.collect(); gc.disable()
print(json.dumps({"rss20": marks[20], "rss300": marks[300], "cyclic": cyclic,
                  "loss": float(loss.item())}))
"""


def train_in_child(leak=False):
    env = dict(os.environ, PYTHONPATH=ROOT, MINIGRAD_TEST_LEAK="1" if leak else "0")
    out = subprocess.run([sys.executable, "-c", TRAIN, ROOT], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(os.environ.get("MINIGRAD_SANITIZED") == "1",
                    reason="under ASan freed memory sits in a quarantine (up to 256 MiB) before reuse, "
                           "so resident memory grows by design")
def test_training_lenet_for_300_steps_does_not_grow_resident_memory():
    r = train_in_child()
    growth = r["rss300"] / r["rss20"] - 1
    print(f"\nLeNet-5, batch 32, gc disabled: RSS {r['rss20'] / 2**20:.1f} MiB after 20 steps, "
          f"{r['rss300'] / 2**20:.1f} MiB after 300 ({100 * growth:+.2f}%)")
    assert np.isfinite(r["loss"])
    assert growth < 0.05, f"resident memory grew {100 * growth:.1f}% from step 20 to step 300"
    assert r["cyclic"] == 0, f"{r['cyclic']} objects in reference cycles were made by 20 training steps"


def test_the_measurement_sees_a_leak():
    """Keeping one conv activation (32×6×28×28 float32, 600 KB) per step must fail the 5% bound."""
    r = train_in_child(leak=True)
    assert r["rss300"] / r["rss20"] - 1 > 0.05


def _graph():
    x = mg.tensor(np.random.default_rng(0).standard_normal((4, 1, 12, 12)).astype(np.float32))
    w1 = mg.tensor(np.random.default_rng(1).standard_normal((3, 1, 3, 3)).astype(np.float32), requires_grad=True)
    w2 = mg.tensor(np.random.default_rng(2).standard_normal((10, 75)).astype(np.float32), requires_grad=True)
    h1 = F.conv2d(x, w1, padding=1)                            # (4, 3, 12, 12)
    h2 = F.max_pool2d(h1.relu(), 2)                            # (4, 3, 6, 6)
    h3 = F.avg_pool2d(h2, 2, ceil_mode=True)                   # (4, 3, 3, 3)
    h4 = F.flatten(F.pad(h3, (1, 1, 1, 1)), 1)                 # (4, 75)
    loss = F.cross_entropy(F.linear(h4, w2), np.arange(4))
    return loss, [h1, h2, h3, h4], (w1, w2)


def test_backward_frees_the_graph_without_the_cycle_collector():
    enabled = gc.isenabled()
    gc.disable()
    try:
        loss, hidden, params = _graph()
        refs = [weakref.ref(h) for h in hidden] + [weakref.ref(h.data) for h in hidden]
        loss.backward()
        del hidden
        assert all(r() is None for r in refs), "intermediate tensors outlived backward + del"
        assert loss.grad_fn.saved == ()                         # the loss node let go too
        assert all(p.grad is not None for p in params)
    finally:
        if enabled:
            gc.enable()


def test_without_backward_the_graph_keeps_the_intermediates_alive():
    """The counterpart of the test above: it would fail if backward freed nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        loss, hidden, _ = _graph()
        refs = [weakref.ref(h) for h in hidden]
        del hidden
        assert all(r() is not None for r in refs)
        loss.backward(retain_graph=True)                        # retain_graph keeps them as well
        assert all(r() is not None for r in refs)
        del loss
        assert all(r() is None for r in refs)                   # no cycle: refcounting frees it all
    finally:
        if enabled:
            gc.enable()


@pytest.mark.parametrize("make", [
    lambda: F.conv2d(mg.randn(2, 3, 9, 9, requires_grad=True), mg.randn(4, 3, 3, 3, requires_grad=True), stride=2),
    lambda: F.conv2d(mg.randn(2, 4, 9, 9, requires_grad=True), mg.randn(4, 1, 3, 3, requires_grad=True), groups=4),
    lambda: F.conv_transpose2d(mg.randn(2, 3, 5, 5, requires_grad=True), mg.randn(3, 2, 3, 3, requires_grad=True), stride=2),
    lambda: F.max_pool2d(mg.randn(2, 3, 9, 9, requires_grad=True), 3, 2, 1),
    lambda: F.avg_pool2d(mg.randn(2, 3, 9, 9, requires_grad=True), 3, 2, 1),
], ids=["conv2d", "conv2d-depthwise", "conv_transpose2d", "max_pool2d", "avg_pool2d"])
def test_kernels_hold_no_reference_to_their_inputs_or_outputs(make):
    """After backward, nothing inside the extension or the op keeps the arrays alive."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        y = make()
        inputs = [t for t in y.grad_fn.inputs if isinstance(t, mg.Tensor)]
        refs = [weakref.ref(y.data)] + [weakref.ref(t.data) for t in inputs]
        y.sum().backward()
        grads = [weakref.ref(t.grad.data) for t in inputs]
        del y, inputs
        assert all(r() is None for r in refs + grads)
    finally:
        if enabled:
            gc.enable()
