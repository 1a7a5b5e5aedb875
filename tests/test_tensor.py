"""Tensor creation, dtype rules, the array protocol and the small API surface."""
import numpy as np
import pytest

import minigrad as mg


def test_python_floats_default_to_float32_and_arrays_keep_dtype():
    assert mg.tensor(1.5).dtype == np.float32
    assert mg.tensor([[1.0, 2.0]]).dtype == np.float32
    assert mg.tensor(np.ones(2, np.float64)).dtype == np.float64
    assert mg.tensor(np.ones(2, np.float32)).dtype == np.float32
    assert mg.tensor([1, 2]).dtype == np.int64
    assert mg.tensor([True]).dtype == bool
    assert mg.tensor([1, 2], dtype=np.float64).dtype == np.float64


def test_tensor_copies_its_data():
    a = np.ones(3)
    t = mg.tensor(a)
    a[0] = 5
    assert t.numpy()[0] == 1


def test_bad_data_is_a_type_error():
    with pytest.raises(TypeError, match="numeric"):
        mg.tensor(["a", "b"])
    with pytest.raises(TypeError, match="complex"):
        mg.tensor(np.ones(2, complex))
    with pytest.raises(TypeError):
        mg.tensor([object()])


def test_creation_functions():
    assert mg.zeros(2, 3).shape == (2, 3) and mg.zeros((2, 3)).numpy().sum() == 0
    assert mg.ones(4).numpy().sum() == 4 and mg.ones(4).dtype == np.float32
    assert mg.zeros_like(mg.ones(2, 2)).shape == (2, 2)
    assert mg.ones_like(np.zeros((3,), np.float64)).dtype == np.float64
    assert mg.arange(5).dtype == np.int64 and mg.arange(0, 1, 0.25).dtype == np.float32
    np.testing.assert_array_equal(mg.arange(1, 7, 2).numpy(), [1, 3, 5])
    assert mg.full((2,), 7.0).numpy().tolist() == [7.0, 7.0]
    assert mg.randn(3, 4, requires_grad=True).requires_grad
    with pytest.raises(ValueError, match="shape"):
        mg.zeros(-1)


def test_manual_seed_makes_random_reproducible():
    mg.manual_seed(0)
    a, b = mg.randn(5).numpy(), mg.rand(5).numpy()
    mg.manual_seed(0)
    np.testing.assert_array_equal(a, mg.randn(5).numpy())
    np.testing.assert_array_equal(b, mg.rand(5).numpy())
    assert np.all((b >= 0) & (b < 1))


def test_array_protocol_and_accessors():
    t = mg.tensor([[1.0, 2.0, 3.0]])
    assert np.asarray(t) is t.numpy()
    assert t.shape == (1, 3) and t.ndim == 2 and t.size == 3 and len(t) == 1
    assert t.size() == (1, 3) and t.size(1) == 3 and t.size(-2) == 1 and t.numel() == 3
    assert mg.tensor([2.5]).item() == 2.5
    with pytest.raises(ValueError, match="one-element"):
        t.item()
    with pytest.raises(TypeError):
        len(mg.tensor(1.0))
    assert t.numpy().dtype == np.float32


def test_numpy_is_allowed_on_tensors_that_require_grad():
    t = mg.tensor([1.0], requires_grad=True)
    assert isinstance((t * 2).numpy(), np.ndarray)


def test_repr_is_readable():
    t = mg.tensor([1.0, 2.0], requires_grad=True)
    assert repr(t) == "tensor([1., 2.], requires_grad=True)"
    assert "grad_fn=<MulBackward>" in repr(t * 2)
    assert "dtype=float64" in repr(mg.tensor(np.ones(1)))


def test_ndarray_on_the_left_defers_to_tensor():
    t = mg.tensor([1.0, 2.0], requires_grad=True)
    y = np.array([2.0, 3.0], np.float32) * t
    assert isinstance(y, mg.Tensor) and y.requires_grad


def test_integer_tensor_arithmetic_stays_integer():
    a = mg.tensor([1, 2, 3])
    assert (a + 1).dtype == np.int64 and (a * a).numpy().tolist() == [1, 4, 9]


def test_dtype_conversion_is_differentiable():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = x.double()
    assert y.dtype == np.float64
    (y * 2).sum().backward()
    assert x.grad.dtype == np.float32


def test_no_dangling_grad_fn_after_backward_of_leaf_ops():
    x = mg.tensor([1.0], requires_grad=True)
    y = x * 2
    assert y.grad_fn is not None and not y.is_leaf
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad = False


def test_missing_extensions_give_a_clear_message():
    """Without the compiled kernels, `import minigrad` says how to build them."""
    import subprocess
    import sys
    code = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.startswith('minigrad._ext.'):\n"
        "            raise ImportError('simulated: no compiled kernel ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import minigrad\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode != 0
    assert "pip install -e ." in out.stderr and "compiled kernels" in out.stderr
    assert "simulated: no compiled kernel" in out.stderr
