"""The torch alias (minigrad.compat, python -m minigrad.run): PyTorch-style scripts run on
minigrad unchanged and give PyTorch's numbers (against tests/data/torch_golden.npz, made by
tests/data/make_torch_golden.py with real PyTorch; no torch needed here)."""
import os
import subprocess
import sys

import numpy as np
import pytest

import minigrad as mg
from minigrad import compat

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(ROOT, "tests", "torch_scripts")
GOLDEN = os.path.join(ROOT, "tests", "data", "torch_golden.npz")


def run_script(args, tmp_path):
    """`python -m minigrad.run *args` in tmp_path with this checkout on the path."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "minigrad.run", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True)


@pytest.fixture
def alias():
    with compat.torch_alias() as torch:
        yield torch


# ---- the scripts, against PyTorch's numbers ------------------------------------------------
SCRIPT_NAMES = sorted(f[:-3] for f in os.listdir(SCRIPTS) if f.endswith(".py"))


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_pytorch_script_gives_pytorchs_numbers(name, tmp_path):
    out = tmp_path / "out.npz"
    proc = run_script([os.path.join(SCRIPTS, name + ".py"), str(out)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    golden = np.load(GOLDEN)
    want = {k[len(name) + 1:]: golden[k] for k in golden.files if k.startswith(name + "/")}
    assert want, f"no golden results for {name}: run tests/data/make_torch_golden.py"
    got = np.load(out)
    assert sorted(got.files) == sorted(want)
    for key, ref in want.items():
        val = got[key]
        assert val.shape == ref.shape and val.dtype == ref.dtype, (key, val.dtype, ref.dtype)
        if ref.dtype.kind != "f":
            np.testing.assert_array_equal(val, ref, err_msg=key)
        elif key.startswith("f32/"):
            # float32: within PyTorch's own float32-vs-float64 spread (4x, plus rounding)
            ref64 = want["f64/" + key[4:]].astype(np.float64)
            spread = np.max(np.abs(ref.astype(np.float64) - ref64), initial=0.0)
            err = np.max(np.abs(val.astype(np.float64) - ref64), initial=0.0)
            assert err <= 4 * spread + 1e-6 * np.max(np.abs(ref64), initial=1.0), (key, err, spread)
        else:
            np.testing.assert_allclose(val, ref, rtol=1e-7, atol=1e-12, err_msg=key)


def test_run_passes_arguments_and_reports_errors(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("import sys, torch\n"
                      "print(sys.argv[1:], __name__, torch.zeros(2).sum().item(), torch.cuda.is_available())\n")
    proc = run_script([str(script), "--epochs", "2"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['--epochs', '2'] __main__ 0.0 False"
    (tmp_path / "as_module.py").write_text("import sys, minigrad, torch.nn as nn\n"
                                           "print(sys.argv[1:], nn.ReLU is minigrad.nn.ReLU)\n")
    proc = run_script(["-m", "as_module", "x"], tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == "['x'] True", proc.stderr
    assert run_script([], tmp_path).returncode == 2
    missing = run_script([str(tmp_path / "nope.py")], tmp_path)
    assert missing.returncode == 2 and "nope.py" in missing.stderr
    failing = tmp_path / "f.py"
    failing.write_text("import torch\ntorch.ones(2).cuda()\n")
    proc = run_script([str(failing)], tmp_path)
    assert proc.returncode != 0 and "minigrad runs on the CPU only" in proc.stderr


# ---- the alias itself ----------------------------------------------------------------------
def test_alias_modules_resolve_to_minigrad(alias):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    import torch.nn.init as init
    import torch.optim as optim
    from torch.optim.lr_scheduler import StepLR
    from torch.utils.data import DataLoader, TensorDataset, Dataset
    from torch.utils.checkpoint import checkpoint
    from torch import Tensor
    assert torch is alias and torch.nn is nn
    assert nn.Conv2d is mg.nn.Conv2d and F.conv2d is mg.nn.functional.conv2d
    assert init.kaiming_uniform_ is mg.nn.init.kaiming_uniform_
    assert optim.SGD is mg.optim.SGD and StepLR is mg.optim.lr_scheduler.StepLR
    assert Tensor is mg.Tensor and torch.Tensor is mg.Tensor
    assert issubclass(DataLoader, mg.data.DataLoader) and TensorDataset is mg.data.TensorDataset
    assert torch.float == torch.float32 == np.float32 and torch.long == np.int64 and torch.half == np.float16
    assert torch.double == np.float64 and torch.int == np.int32 and torch.bool == np.bool_
    assert torch.uint8 == np.uint8 and torch.int32 == np.int32 and torch.int64 == np.int64
    assert torch.device("cpu") == "cpu" and torch.cuda.is_available() is False
    assert torch.cuda.device_count() == 0
    assert torch.is_tensor(torch.ones(1)) and not torch.is_tensor(np.ones(1))
    assert torch.numel(torch.ones(2, 3)) == 6
    assert torch.flatten(torch.ones(2, 3, 4), 1).shape == (2, 12)
    assert torch.argmax(torch.tensor([1.0, 3.0, 2.0])).item() == 1       # a Tensor method as a function
    assert torch.zeros(2, device="cpu").shape == (2,)
    assert torch.tensor([1, 2], device=torch.device("cpu")).dtype == np.int64
    with pytest.raises(RuntimeError, match="CPU only.*'cuda:0'"):
        torch.zeros(2, device="cuda:0")
    torch._assert(True, "fine")
    with pytest.raises(AssertionError, match="shape"):
        torch._assert(False, "wrong shape")
    ds = Dataset()
    with pytest.raises(NotImplementedError):
        ds[0]
    assert checkpoint(lambda a, b: a * b, torch.ones(2), torch.ones(2) * 3, use_reentrant=False).tolist() == [3, 3]


def test_unknown_names_say_minigrad_lacks_them(alias):
    import torch
    with pytest.raises(AttributeError, match=r"torch\.fft_magic: minigrad does not provide"):
        torch.fft_magic
    with pytest.raises(AttributeError, match=r"torch\.nn\.TransformerThing: minigrad does not provide"):
        torch.nn.TransformerThing
    with pytest.raises(ModuleNotFoundError, match=r"minigrad does not provide torch\.distributions"):
        import torch.distributions  # noqa: F401


def test_jit_decorators_are_no_ops(alias):
    import torch

    class M(torch.nn.Module):
        @torch.jit.unused
        def a(self, x):
            return x + 1

        @torch.jit.ignore(drop=True)
        def b(self, x):
            return x * 2

        @torch.jit.export
        def c(self, x):
            return x - 1

    m = torch.jit.script(M())
    assert isinstance(m, M) and m.a(1) == 2 and m.b(2) == 4 and m.c(1) == 0
    assert torch.jit.is_scripting() is False and torch.jit.annotate(list, [1]) == [1]


def test_checkpoint_gives_the_same_gradients(alias):
    import torch
    from torch.utils.checkpoint import checkpoint
    rng = np.random.default_rng(0)
    w = torch.tensor(rng.standard_normal((3, 3)), requires_grad=True)
    x = torch.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    f = lambda a: torch.tanh(a @ w).sum(1)
    checkpoint(f, x, use_reentrant=False).sum().backward()
    gx, gw = x.grad.numpy().copy(), w.grad.numpy().copy()
    x.grad = w.grad = None
    f(x).sum().backward()
    np.testing.assert_array_equal(gx, x.grad.numpy())
    np.testing.assert_array_equal(gw, w.grad.numpy())


def test_install_and_remove_restore_real_modules():
    sentinel = type(sys)("torch")
    before = sys.modules.get("torch")
    sys.modules["torch"] = sentinel
    try:
        torch = compat.install_torch_alias()
        assert compat.is_alias_installed() and sys.modules["torch"] is torch
        assert compat.install_torch_alias() is torch                  # twice is harmless
        compat.remove_torch_alias()
        assert not compat.is_alias_installed() and sys.modules["torch"] is sentinel
        assert "torch.nn" not in sys.modules or sys.modules["torch.nn"] is not torch.nn
    finally:
        compat.remove_torch_alias()
        if before is None:
            sys.modules.pop("torch", None)
        else:
            sys.modules["torch"] = before


def test_dataloader_accepts_pytorch_keywords(alias):
    from torch.utils.data import DataLoader
    X, Y = np.arange(10.0).reshape(5, 2), np.arange(5)
    loader = DataLoader((X, Y), batch_size=2, num_workers=4, pin_memory=True, persistent_workers=False)
    assert [len(b[0]) for b in loader] == [2, 2, 1]
    with pytest.raises(NotImplementedError, match="sampler"):
        DataLoader((X, Y), sampler=[0, 1])


def test_real_torch_state_dict_loads_by_key():
    torch = pytest.importorskip("torch")
    if compat.is_alias_installed():
        pytest.skip("alias installed")
    tm = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3), torch.nn.Flatten(),
                             torch.nn.Linear(3 * 2 * 2, 4))
    tm(torch.randn(5, 2, 4, 4))                           # moves the running statistics
    exported = {k: v.numpy() for k, v in tm.state_dict().items()}
    mm = mg.nn.Sequential(mg.nn.Conv2d(2, 3, 3), mg.nn.BatchNorm2d(3), mg.nn.Flatten(),
                          mg.nn.Linear(3 * 2 * 2, 4))
    assert mm.load_state_dict(exported) == ([], [])
    x = np.random.default_rng(0).standard_normal((2, 2, 4, 4)).astype(np.float32)
    tm.eval(), mm.eval()
    np.testing.assert_allclose(mm(mg.tensor(x)).numpy(), tm(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)
    assert int(mm.state_dict()["1.num_batches_tracked"].item()) == 1


def test_placeholders_load_but_refuse_to_build(alias):
    import torch.nn as nn
    assert nn.BatchNorm3d is nn.BatchNorm3d and issubclass(nn.BatchNorm3d, mg.nn.Module)
    assert not isinstance(mg.nn.BatchNorm2d(2), (nn.BatchNorm3d, nn.Conv3d))
    with pytest.raises(NotImplementedError, match=r"torch\.nn\.BatchNorm3d: minigrad does not provide"):
        nn.BatchNorm3d(4)
    assert nn.BatchNorm2d is mg.nn.BatchNorm2d        # minigrad's own layers come first


def test_checkpoint_recomputes_like_pytorch(alias):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    from torch.utils.checkpoint import checkpoint
    bn = nn.BatchNorm1d(3).double()
    x = torch.tensor(rng_values((4, 3)), requires_grad=True)
    out = checkpoint(lambda a: F.dropout(bn(a), 0.5, training=True), x, use_reentrant=False)
    assert int(bn.num_batches_tracked) == 1
    out.sum().backward()                               # the recomputation runs bn again,
    assert int(bn.num_batches_tracked) == 2            # as PyTorch's checkpoint does
    gx, gw = x.grad.numpy().copy(), bn.weight.grad.numpy().copy()
    mask = out.numpy() != 0
    # the same numbers as a plain call with the generator where the checkpoint found it
    x.grad = bn.weight.grad = None
    mg.manual_seed(3)
    out = checkpoint(lambda a: F.dropout(bn(a), 0.5, training=True), x, use_reentrant=False)
    mg.manual_seed(3)
    plain = F.dropout(bn(x), 0.5, training=True)
    np.testing.assert_array_equal(out.numpy(), plain.numpy())
    plain.sum().backward()
    pgx, pgw = x.grad.numpy().copy(), bn.weight.grad.numpy().copy()
    x.grad = bn.weight.grad = None
    out.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), pgx, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(bn.weight.grad.numpy(), pgw, rtol=1e-12, atol=1e-15)
    assert mask.any() and gx.shape == (4, 3) and gw.shape == (3,)
    with pytest.raises(TypeError, match="one Tensor"):
        checkpoint(lambda a: (a, a), x)
    const = torch.ones(2, 3)                          # nothing requires grad: a plain call
    assert checkpoint(lambda a: a * 2, const).tolist() == [[2, 2, 2]] * 2


def rng_values(shape):
    return np.random.default_rng(11).standard_normal(shape)


def test_save_load_allclose_as_the_pytorch_tutorial_writes_them(alias, tmp_path):
    import torch
    import torch.nn as nn
    net = nn.Linear(3, 2)
    path = str(tmp_path / "net.pth")
    torch.save(net.state_dict(), path)
    other = nn.Linear(3, 2)
    other.load_state_dict(torch.load(path, weights_only=True, map_location="cpu"))
    x = torch.randn(4, 3)
    assert torch.allclose(other(x), net(x)) and torch.equal(other(x), net(x))
    assert not torch.equal(x, x[:2]) and not torch.allclose(x, x + 1)
    _, predicted = torch.max(net(x).data, 1)                    # the tutorial's .data idiom
    assert predicted.shape == (4,)
    with pytest.raises(RuntimeError, match="CPU only"):
        torch.load(path, map_location="cuda:0")


def test_script_preamble_settings(alias):
    import torch
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True)
    assert torch.backends.mps.is_available() is False and torch.get_default_dtype() == np.float32
    torch.set_default_dtype(torch.float32)
    with pytest.raises(NotImplementedError, match="float32"):
        torch.set_default_dtype(torch.float64)
    torch.set_num_threads(torch.get_num_threads())
