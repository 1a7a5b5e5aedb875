"""Weights exported from torchvision load into minigrad.models and give the same outputs
(float64, eval and train mode). Needs torch and torchvision; skipped without them."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.library  # noqa: E402

torch.library.register_fake = lambda *a, **k: (lambda f: f)    # torchvision 0.28 with torch 2.13
tvm = pytest.importorskip("torchvision.models")

import minigrad as mg  # noqa: E402
import minigrad.models as M  # noqa: E402

from test_models import _double  # noqa: E402

CASES = [  # (name, torchvision kwargs, ours kwargs, input shape)
    ("resnet18", {}, {}, (2, 3, 32, 32)),
    ("mobilenet_v2", {}, {}, (2, 3, 32, 32)),
    ("googlenet", {"aux_logits": False, "init_weights": False}, {"aux_logits": False}, (2, 3, 32, 32)),
    ("densenet121", {}, {}, (2, 3, 32, 32)),
    ("resnet50", {}, {}, (2, 3, 32, 32)),
    ("alexnet", {}, {}, (2, 3, 63, 63)),
    ("vgg11_bn", {}, {}, (2, 3, 32, 32)),
]
FAST = {"resnet18", "mobilenet_v2"}


@pytest.mark.parametrize("name, tv_kwargs, kwargs, shape", [
    c if c[0] in FAST else pytest.param(*c, marks=pytest.mark.slow) for c in CASES])
def test_torchvision_weights_load_and_agree(name, tv_kwargs, kwargs, shape):
    torch.manual_seed(0)
    theirs = getattr(tvm, name)(num_classes=10, **tv_kwargs).double()
    ours = _double(getattr(M, name)(num_classes=10, **kwargs))
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).standard_normal(shape)
    for train in (False, True):
        theirs.train(train)
        ours.train(train)
        if train:     # no dropout, so that both see the same function
            for m in list(theirs.modules()):
                if isinstance(m, torch.nn.Dropout):
                    m.p = 0.0
            for m in ours.modules():
                if hasattr(m, "p") and type(m).__name__ == "Dropout":
                    m.p = 0.0
        with torch.no_grad():
            expected = theirs(torch.from_numpy(x)).numpy()
        with mg.no_grad():
            got = ours(mg.tensor(x)).numpy()
        # relative 1e-7 of the logits' scale: in train mode a BN over the 2 values of a 1×1
        # map (N = 2) cancels digits, so small logits may differ by 1e-6 of themselves
        np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-7 * np.abs(expected).max(),
                                   err_msg=f"{name}, train={train}")
