"""PyTorch's Tensor and Module surface on minigrad (no torch needed): conversions and the
device, copies, in-place ops (refused or exact, never silently wrong), the dtype rule,
Module.to / hooks / named_modules / state_dict."""
import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn
import minigrad.nn.functional as F

rng = np.random.default_rng(0)


def t64(*shape, requires_grad=True):
    return mg.tensor(rng.standard_normal(shape), requires_grad=requires_grad)


# ---- conversions and the device --------------------------------------------------------
def test_to_accepts_pytorchs_forms_and_refuses_cuda():
    x = mg.ones(2, 3)
    assert x.to("cpu") is x and x.to(mg.device("cpu")) is x and x.cpu() is x
    assert x.device == "cpu" and str(x.device) == "cpu" and x.is_cuda is False
    assert x.to(mg.float64).dtype == np.float64 and x.to(dtype=mg.double).dtype == np.float64
    assert x.to("cpu", mg.float16).dtype == np.float16
    assert x.to(mg.zeros(1, dtype=np.float64)).dtype == np.float64      # another tensor's dtype
    assert x.to(device="cpu", dtype=mg.long, non_blocking=True).dtype == np.int64
    c = x.to(copy=True)
    assert c is not x and not np.shares_memory(c.data, x.data)
    for bad in (lambda: x.to("cuda"), lambda: x.to(mg.device("cuda", 0)), lambda: x.cuda(),
                lambda: x.to(device="mps")):
        with pytest.raises(RuntimeError, match="minigrad runs on the CPU only"):
            bad()
    with pytest.raises(TypeError, match="not a dtype"):
        x.to(object())
    assert mg.device("cpu:0").index == 0 and mg.device("cuda:1") != "cpu"


def test_dtype_methods():
    x = mg.tensor([1.7, -2.2, 0.0])
    assert x.long().dtype == np.int64 and x.long().tolist() == [1, -2, 0]
    assert x.int().dtype == np.int32 and x.half().dtype == np.float16
    assert x.double().dtype == np.float64 and x.double().float().dtype == np.float32
    assert x.bool().tolist() == [True, True, False]
    assert x.type_as(mg.zeros(1, dtype=np.float64)).dtype == np.float64
    assert x.type() == "torch.FloatTensor" and x.long().type() == "torch.LongTensor"
    assert x.type(mg.double).dtype == np.float64
    assert x.is_floating_point() and not x.long().is_floating_point()
    y = t64(3)
    y.float().sum().backward()                          # the cast is differentiable
    assert y.grad.dtype == np.float64 and y.grad.tolist() == [1, 1, 1]
    assert mg.float == np.float32 and mg.long == np.int64 and mg.half == np.float16
    assert mg.uint8 == np.uint8 and mg.bool == np.bool_ and mg.int == np.int32


def test_from_numpy_shares_memory():
    a = np.zeros(3)
    t = mg.from_numpy(a)
    assert t.dtype == np.float64
    a[0] = 5
    assert t[0].item() == 5
    with mg.no_grad():
        t.add_(1)
    assert a.tolist() == [6, 1, 1]
    with pytest.raises(TypeError, match="from_numpy"):
        mg.from_numpy([1, 2])


# ---- copies, views, index reductions ----------------------------------------------------
def test_clone_expand_repeat_setitem_gradcheck():
    x = t64(2, 1, 3)
    assert mg.gradcheck(lambda a: a.clone() * 2, [x])
    assert mg.gradcheck(lambda a: a.expand(4, 2, 5, 3) * 1.5, [x])
    assert mg.gradcheck(lambda a: a.expand(-1, 2, -1), [x])
    assert mg.gradcheck(lambda a: a.repeat(2, 3, 1, 2), [x])
    v = t64(3)
    def put(a, b):
        out = a.clone()
        out[0, 0] = b * 2
        out[1, :, 1:] = b[:2]
        return out
    assert mg.gradcheck(put, [x, v])
    np.testing.assert_array_equal(x.repeat(2, 3, 1, 2).numpy(), np.tile(x.numpy(), (2, 3, 1, 2)))
    with pytest.raises(ValueError, match="expand"):
        x.expand(2, 2, 4)
    with pytest.raises(ValueError, match="repeat"):
        x.repeat(2)


def test_contiguous_argmax_softmax_methods():
    x = t64(3, 4)
    p = x.permute(1, 0)
    assert not p.data.flags.c_contiguous and p.contiguous().data.flags.c_contiguous
    assert x.contiguous() is x
    a = x.numpy()
    assert x.argmax().item() == np.argmax(a) and x.argmin().item() == np.argmin(a)
    np.testing.assert_array_equal(x.argmax(1).numpy(), np.argmax(a, 1))
    np.testing.assert_array_equal(x.argmin(dim=0, keepdim=True).numpy(), np.argmin(a, 0)[None])
    assert x.argmax(1).dtype == np.int64 and not x.argmax(1).requires_grad
    np.testing.assert_array_equal(x.softmax(1).numpy(), F.softmax(x, 1).numpy())
    np.testing.assert_array_equal(x.log_softmax(-1).numpy(), F.log_softmax(x, -1).numpy())


# ---- in-place operations ------------------------------------------------------------------
def test_inplace_on_a_leaf_that_requires_grad_is_refused_unless_no_grad():
    w = t64(3)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        w.add_(1)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        w -= 1
    before = w.numpy().copy()
    (w * w).sum().backward()
    with mg.no_grad():                                 # the d2l step: p -= lr * p.grad
        w -= 0.1 * w.grad
        w.grad.zero_()
    np.testing.assert_allclose(w.numpy(), before - 0.2 * before)
    assert w.grad.tolist() == [0, 0, 0] and w.is_leaf and w.requires_grad


def test_inplace_inside_the_graph_gives_the_out_of_place_gradient():
    x, y = t64(2, 3), t64(2, 3)
    out = x * 2                                       # ResNet: out += identity; relu(out)
    out += y
    out *= y
    out.relu_()
    out.sum().backward()
    gx, gy = x.grad.numpy().copy(), y.grad.numpy().copy()
    x.grad = y.grad = None
    ((x * 2 + y) * y).relu().sum().backward()
    np.testing.assert_allclose(gx, x.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(gy, y.grad.numpy(), rtol=1e-12)
    buf = mg.zeros(2, 3, dtype=np.float64)            # a constant becomes part of the graph
    buf.add_(x)
    assert buf.requires_grad and buf.grad_fn is not None


def test_inplace_after_use_raises_at_backward():
    x = t64(3)
    y = x * 2
    z = y * y                                         # uses y's values
    y.add_(1)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        z.sum().backward()
    data = mg.tensor(rng.standard_normal(3))
    w = t64(3)
    loss = (w * data).sum()
    with mg.no_grad():
        data.zero_()                                  # w's gradient needed the old data
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        loss.backward()


def test_slices_write_back_like_views():
    t = mg.ones(3, 3)
    t[0].fill_(7)
    t[:, 2].zero_()
    t.view(-1)[4] = 5
    np.testing.assert_array_equal(t.numpy(), [[7, 7, 0], [1, 5, 0], [1, 1, 0]])
    x = t64(2, 3)
    y = x * 2
    with pytest.raises(RuntimeError, match="slice or view"):
        y[0].add_(1)
    base = mg.ones(2, 2)
    used = x[:, :2] * base                            # x's gradient needs base's values
    with mg.no_grad():
        base[0].mul_(3)                               # base's version moves with its slice
    assert base.tolist() == [[3, 3], [1, 1]]
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        used.sum().backward()


def test_inplace_fill_copy_and_shapes():
    t = mg.zeros(2, 3)
    t.copy_(mg.arange(3))
    assert t.tolist() == [[0, 1, 2], [0, 1, 2]] and t.dtype == np.float32
    t.copy_(np.full((2, 3), 4.0))
    assert t.tolist() == [[4] * 3] * 2
    with pytest.raises(RuntimeError, match="does not broadcast"):
        t.copy_(mg.ones(4))
    with pytest.raises(RuntimeError, match="shape"):
        t.add_(mg.ones(5, 2, 3))
    t.clamp_(max=1).mul_(2)
    assert t.tolist() == [[2] * 3] * 2
    mg.manual_seed(0)
    t.normal_(0, 1)
    mg.manual_seed(0)
    np.testing.assert_array_equal(t.numpy(), mg.random.generator().normal(0, 1, (2, 3)).astype(np.float32))


# ---- the dtype rule ----------------------------------------------------------------------------
MIXED = r"does not mix dtypes.*\.float\(\).*\.double\(\).*model\.to\(dtype\)"


@pytest.mark.parametrize("call", [
    lambda a, b: F.linear(a, b),
    lambda a, b: F.linear(b, a),
    lambda a, b: a @ b.T,
    lambda a, b: mg.matmul(b, a.T),
    lambda a, b: F.conv2d(a.reshape(1, 1, 2, 3), b.reshape(1, 1, 2, 3)),
    lambda a, b: F.conv_transpose2d(a.reshape(1, 1, 2, 3), b.reshape(1, 1, 2, 3)),
    lambda a, b: F.batch_norm(a, b[0], b[1], training=True),
    lambda a, b: F.batch_norm(a, mg.zeros(3), mg.ones(3), weight=b[0], training=True),
], ids=["linear-w", "linear-x", "matmul", "matmul-rev", "conv2d", "conv_t", "bn-stats", "bn-weight"])
def test_weighted_ops_refuse_mixed_dtypes_with_one_message(call):
    a = mg.ones(2, 3)
    b = mg.ones(2, 3, dtype=np.float64)
    with pytest.raises(TypeError, match=MIXED):
        call(a, b)


def test_arithmetic_promotes_as_pytorch():
    i, f32, f64 = mg.tensor([1, 2]), mg.tensor([1.0, 2.0]), mg.tensor(np.ones(2))
    assert (i + f32).dtype == np.float32 and (f32 * i).dtype == np.float32
    assert (i * 2.5).dtype == np.float32 and (2.5 - i).dtype == np.float32
    assert (i / 2).dtype == np.float32 and (i / i).dtype == np.float32 and (i * 2).dtype == np.int64
    assert (f32 + f64).dtype == np.float64 and mg.cat([f32, f64]).dtype == np.float64
    assert F.mse_loss(f32, f64).dtype == np.float64


def test_a_float64_batch_into_a_double_model():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2 * 2 * 2, 3))
    x = mg.tensor(rng.standard_normal((4, 1, 4, 4)))
    with pytest.raises(TypeError, match=MIXED):
        model(x)
    assert model.double() is model
    assert model(x).dtype == np.float64
    assert model.float()(x.float()).dtype == np.float32


# ---- Module surface -------------------------------------------------------------------------------
def test_module_to_converts_float_state_in_place():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    params = list(model.parameters())
    model(mg.ones(4, 2)).sum().backward()
    assert model.to(mg.float64) is model
    assert [p is q for p, q in zip(params, model.parameters())] == [True] * 4
    assert all(p.dtype == np.float64 and p.grad.dtype == np.float64 for p in params)
    sd = model.state_dict()
    assert sd["1.running_mean"].dtype == np.float64 and sd["1.num_batches_tracked"].dtype == np.int64
    assert model.to("cpu") is model and model.cpu() is model
    assert model.to(mg.zeros(1)).state_dict()["0.weight"].dtype == np.float32
    assert model.half()[0].weight.dtype == np.float16
    with pytest.raises(RuntimeError, match="CPU only"):
        model.cuda()
    with pytest.raises(RuntimeError, match="CPU only"):
        model.to("cuda:0")
    with pytest.raises(TypeError, match="floating point"):
        model.to(mg.long)


def test_forward_hooks_and_handles():
    lin = nn.Linear(2, 2)
    seen = []
    h1 = lin.register_forward_pre_hook(lambda m, args: (args[0] * 0,))
    h2 = lin.register_forward_hook(lambda m, args, out: seen.append((m, args[0].tolist(), out.shape)))
    h3 = lin.register_forward_hook(lambda m, args, out: out * 0 + 1)
    y = lin(mg.ones(1, 2))
    assert y.tolist() == [[1, 1]] and seen == [(lin, [[0, 0]], (1, 2))]
    h1.remove(), h3.remove(), h3.remove()
    y = lin(mg.ones(1, 2))
    assert y.tolist() != [[1, 1]] and seen[-1][1] == [[1, 1]]
    with h2:
        pass
    lin(mg.ones(1, 2))
    assert len(seen) == 2
    with pytest.raises(TypeError, match="callable"):
        lin.register_forward_hook(3)


def test_named_modules_memo_prefix_duplicates():
    shared = nn.ReLU()
    net = nn.Sequential(nn.Linear(2, 2), shared, nn.Sequential(shared, nn.Linear(2, 1)))
    assert [n for n, _ in net.named_modules()] == ["", "0", "1", "2", "2.1"]
    assert [n for n, _ in net.named_modules(remove_duplicate=False)] == ["", "0", "1", "2", "2.0", "2.1"]
    assert [n for n, _ in net.named_modules(prefix="net")][:2] == ["net", "net.0"]
    memo = {net[0]}
    assert [n for n, _ in net.named_modules(memo)] == ["", "1", "2", "2.1"] and shared in memo


def test_state_dict_values_behave_like_pytorchs(tmp_path):
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    sd = model.state_dict()
    w = sd["0.weight"]
    assert isinstance(w, mg.Tensor) and not w.requires_grad
    assert w.shape == (3, 2) and w.dtype == np.float32 and isinstance(w.numpy(), np.ndarray)
    snap = {k: v.clone() for k, v in sd.items()}
    w.copy_(mg.ones(3, 2))                                 # writes into the model
    assert model[0].weight.tolist() == [[1, 1]] * 3
    assert model.state_dict(keep_vars=True)["0.weight"] is model[0].weight
    mg.save(model.state_dict(), tmp_path / "m.npz")
    back = mg.load(tmp_path / "m.npz")
    assert isinstance(back["0.weight"], mg.Tensor)
    model.load_state_dict(snap)                            # copied into the same arrays
    np.testing.assert_array_equal(w.numpy(), snap["0.weight"].numpy())
    model.load_state_dict(back)
    assert w.tolist() == [[1, 1]] * 3


def test_load_state_dict_from_exported_numpy_arrays():
    exported = {"0.weight": np.full((3, 2), 0.5), "0.bias": np.zeros(3), "1.weight": np.ones(3),
                "1.bias": np.zeros(3), "1.running_mean": np.arange(3.0), "1.running_var": np.ones(3) * 4,
                "1.num_batches_tracked": np.array(12)}
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    result = model.load_state_dict(exported)
    assert result == ([], []) and result.missing_keys == [] and result.unexpected_keys == []
    assert model[0].weight.dtype == np.float32 and model[0].weight.tolist() == [[0.5, 0.5]] * 3
    assert int(model[1].num_batches_tracked) == 12
    model.eval()
    y = model(mg.ones(1, 2))
    np.testing.assert_allclose(y.numpy(), [(1 - np.arange(3)) / np.sqrt(4 + 1e-5)], rtol=1e-6)


def test_new_tensors_and_operator_methods():
    x = mg.ones(2, 3, dtype=np.float64)
    assert x.new_zeros(2, 2).dtype == np.float64 and x.new_zeros((2, 2)).tolist() == [[0, 0], [0, 0]]
    assert x.new_ones(3).tolist() == [1, 1, 1] and x.new_full((2,), 3.5).tolist() == [3.5, 3.5]
    assert x.new_tensor([1, 2]).dtype == np.float64 and x.new_tensor([1, 2], dtype=mg.long).dtype == np.int64
    with pytest.raises(RuntimeError, match="CPU only"):
        x.new_zeros(2, device="cuda")
    assert x.t().shape == (3, 2) and x.add(1).mul(2).sub(1).div(3).tolist() == [[1] * 3] * 2
    assert x.eq(1).sum().item() == 6 and x.ne(1).sum().item() == 0
    assert x.pow(2).neg().sum().item() == -6 and x.gt(0).sum().item() == 6 and x.lt(0).sum().item() == 0


def test_mask_assignment_in_and_out_of_the_graph():
    x = mg.tensor([-1.0, 2.0, -3.0])
    x[x < 0] = 0
    assert x.tolist() == [0, 2, 0]
    w = mg.tensor([-1.0, 2.0, -3.0], requires_grad=True)
    y = w * 2
    y[y < 0] = 0                                      # the masked entries no longer depend on w
    (y * mg.tensor([1.0, 3.0, 5.0])).sum().backward()
    assert w.grad.tolist() == [0, 6, 0]
