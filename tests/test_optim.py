"""optim: SGD / Adam / AdamW replayed against PyTorch's update formulas, state dicts, schedulers."""
import math

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn
from minigrad.optim import SGD, Adam, AdamW
from minigrad.optim.lr_scheduler import CosineAnnealingLR, StepLR

STEPS = 5


def grads_sequence(shape, seed=0):
    r = np.random.default_rng(seed)
    return [r.standard_normal(shape) for _ in range(STEPS)]


def run(opt_cls, p0, grads, **kw):
    """Apply the optimizer for each gradient in turn; returns every parameter value."""
    p = mg.tensor(p0.copy(), requires_grad=True)
    opt = opt_cls([p], **kw)
    out = []
    for g in grads:
        p.grad = mg.tensor(g)
        opt.step()
        out.append(p.numpy().copy())
    return out


# ---- hand-written references (PyTorch's documented algorithms) --------------------------------
def ref_sgd(p, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    p, b, out = p.copy(), None, []
    for g in grads:
        d = g + weight_decay * p
        if momentum:
            b = d.copy() if b is None else momentum * b + (1 - dampening) * d
            d = d + momentum * b if nesterov else b
        p = p - lr * d
        out.append(p)
    return out


def ref_adam(p, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, decoupled=False):
    b1, b2 = betas
    p, m, v, vmax, out = p.copy(), 0 * p, 0 * p, 0 * p, []
    for t, g in enumerate(grads, start=1):
        if decoupled:
            p = p * (1 - lr * weight_decay)
        elif weight_decay:
            g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        vmax = np.maximum(vmax, v)
        vhat = (vmax if amsgrad else v) / (1 - b2 ** t)
        p = p - lr * (m / (1 - b1 ** t)) / (np.sqrt(vhat) + eps)
        out.append(p)
    return out


@pytest.mark.parametrize("kw", [
    dict(lr=0.1),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.05, momentum=0.8, dampening=0.3),
    dict(lr=0.1, momentum=0.9, nesterov=True),
    dict(lr=0.1, weight_decay=0.01),
    dict(lr=0.02, momentum=0.5, dampening=0.1, weight_decay=0.2),
    dict(lr=0.02, momentum=0.5, weight_decay=0.2, nesterov=True),
])
def test_sgd_matches_formulas(kw):
    p0 = np.random.default_rng(1).standard_normal((3, 4))
    grads = grads_sequence((3, 4))
    for got, want in zip(run(SGD, p0, grads, **kw), ref_sgd(p0, grads, **kw)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cls,kw", [
    (Adam, dict(lr=0.01)),
    (Adam, dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6)),
    (Adam, dict(lr=0.01, weight_decay=0.1)),
    (Adam, dict(lr=0.01, amsgrad=True)),
    (AdamW, dict(lr=0.01)),
    (AdamW, dict(lr=0.01, weight_decay=0.3, amsgrad=True)),
])
def test_adam_adamw_match_formulas(cls, kw):
    p0 = np.random.default_rng(2).standard_normal(6)
    grads = grads_sequence(6, seed=3)
    grads[3] = grads[3] * 0.01                     # v shrinks, so amsgrad's max matters
    ref_kw = dict(kw)
    if cls is AdamW:
        ref_kw.setdefault("weight_decay", 1e-2)    # AdamW's default
        ref_kw["decoupled"] = True
    for got, want in zip(run(cls, p0, grads, **kw), ref_adam(p0, grads, **ref_kw)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_amsgrad_differs_from_adam():
    p0 = np.ones(4)
    grads = [np.full(4, 1.0), np.full(4, 1.0), np.full(4, 0.01)]
    a = run(Adam, p0, grads, lr=0.1)[-1]
    b = run(Adam, p0, grads, lr=0.1, amsgrad=True)[-1]
    assert not np.allclose(a, b)


def test_float32_params_stay_float32_and_none_grads_are_skipped():
    lin = nn.Linear(3, 2)
    for cls in (SGD, Adam, AdamW):
        kw = dict(lr=0.1, momentum=0.9) if cls is SGD else dict(lr=0.1)
        opt = cls(lin.parameters(), **kw)
        lin.zero_grad()
        bias_before = lin.bias.numpy().copy()
        lin.weight.grad = mg.ones(2, 3)
        opt.step()
        assert lin.weight.dtype == np.float32 and lin.bias.dtype == np.float32
        np.testing.assert_array_equal(lin.bias.numpy(), bias_before)       # grad None: untouched
        assert lin.bias not in opt.state


def test_zero_grad():
    p = mg.tensor([1.0, 2.0], requires_grad=True)
    opt = SGD([p], lr=0.1)
    (p * p).sum().backward()
    assert p.grad is not None
    opt.zero_grad()
    assert p.grad is None


def test_param_groups_have_their_own_lr():
    a = mg.tensor([1.0], requires_grad=True)
    b = mg.tensor([1.0], requires_grad=True)
    opt = SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    a.grad, b.grad = mg.tensor([1.0]), mg.tensor([1.0])
    opt.step()
    assert a.item() == pytest.approx(0.9) and b.item() == pytest.approx(0.5)


@pytest.mark.parametrize("cls,kw", [(SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
                                    (Adam, dict(lr=0.01, amsgrad=True)), (AdamW, dict(lr=0.01))])
def test_state_dict_round_trip_gives_identical_next_step(cls, kw, tmp_path):
    r = np.random.default_rng(4)
    p0 = r.standard_normal(5).astype(np.float32)
    grads = [r.standard_normal(5).astype(np.float32) for _ in range(4)]

    p = mg.tensor(p0.copy(), requires_grad=True)
    opt = cls([p], **kw)
    for g in grads[:3]:
        p.grad = mg.tensor(g)
        opt.step()
    mg.save({"p": p.numpy(), "opt": opt.state_dict()}, tmp_path / "ck.npz")
    p.grad = mg.tensor(grads[3])
    opt.step()
    expected = p.numpy().copy()

    ck = mg.load(tmp_path / "ck.npz")
    q = mg.tensor(ck["p"], requires_grad=True)
    opt2 = cls([q], lr=123.0)                      # hyperparameters come from the state dict
    opt2.load_state_dict(ck["opt"])
    assert opt2.param_groups[0]["lr"] == kw["lr"]
    q.grad = mg.tensor(grads[3])
    opt2.step()
    np.testing.assert_array_equal(q.numpy(), expected)
    assert opt2.state_dict()["param_groups"] == opt.state_dict()["param_groups"]


def test_load_state_dict_validates():
    p = mg.tensor(np.zeros(3), requires_grad=True)
    opt = Adam([p])
    p.grad = mg.tensor(np.ones(3))
    opt.step()
    sd = opt.state_dict()
    other = Adam([mg.tensor(np.zeros(4), requires_grad=True)])
    with pytest.raises(ValueError, match=r"'exp_avg'.*\(3,\).*\(4,\)"):
        other.load_state_dict(sd)
    two = Adam([mg.tensor(np.zeros(3), requires_grad=True), mg.tensor(np.zeros(3), requires_grad=True)])
    with pytest.raises(ValueError, match="1 parameters in the state dict but 2"):
        two.load_state_dict(sd)
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        opt.load_state_dict({"state": {}})


def test_argument_validation():
    p = mg.tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match="empty parameter list"):
        SGD([], lr=0.1)
    with pytest.raises(TypeError, match=r"params\[1\] is a ndarray"):
        SGD([p, np.zeros(2)], lr=0.1)
    with pytest.raises(TypeError, match="single Tensor"):
        Adam(p)
    with pytest.raises(ValueError, match="learning rate"):
        SGD([p], lr=-1)
    with pytest.raises(ValueError, match="nesterov"):
        SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="momentum"):
        SGD([p], lr=0.1, momentum=-0.5)
    with pytest.raises(ValueError, match="beta parameter at index 1"):
        Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="beta parameter at index 0"):
        AdamW([p], betas=(-0.1, 0.9))
    with pytest.raises(ValueError, match="eps"):
        Adam([p], eps=-1e-8)
    with pytest.raises(ValueError, match="more than one place"):
        SGD([p, p], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        SGD([p * 2], lr=0.1)
    with pytest.raises(ValueError, match="unknown hyperparameters"):
        SGD([{"params": [p], "betas": (0.9, 0.99)}], lr=0.1)


# ---- schedulers -------------------------------------------------------------------------------
def lr_sequence(sched_cls, n, lr=0.1, **kw):
    opt = SGD([mg.tensor([1.0], requires_grad=True)], lr=lr)
    sched = sched_cls(opt, **kw)
    seq = [sched.get_last_lr()[0]]
    for _ in range(n):
        opt.step()
        sched.step()
        seq.append(sched.get_last_lr()[0])
        assert opt.param_groups[0]["lr"] == seq[-1]
    return seq


def test_step_lr_sequence():
    seq = lr_sequence(StepLR, 7, step_size=3, gamma=0.5)
    np.testing.assert_allclose(seq, [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025], rtol=1e-12)


def test_cosine_annealing_sequence():
    seq = lr_sequence(CosineAnnealingLR, 8, T_max=4, eta_min=0.01)
    want = [0.01 + 0.09 * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(9)]
    np.testing.assert_allclose(seq, want, rtol=1e-12)
    assert seq[4] == pytest.approx(0.01) and seq[8] == pytest.approx(0.1)


def test_scheduler_state_dict_resumes(tmp_path):
    opt = SGD([mg.tensor([1.0], requires_grad=True)], lr=0.1)
    sched = StepLR(opt, step_size=2, gamma=0.1)
    for _ in range(3):
        sched.step()
    mg.save({"opt": opt.state_dict(), "sched": sched.state_dict()}, tmp_path / "s.npz")
    sched.step()
    want = sched.get_last_lr()

    ck = mg.load(tmp_path / "s.npz")
    opt2 = SGD([mg.tensor([1.0], requires_grad=True)], lr=0.1)
    opt2.load_state_dict(ck["opt"])
    sched2 = StepLR(opt2, step_size=5)
    sched2.load_state_dict(ck["sched"])
    assert sched2.last_epoch == 3 and sched2.step_size == 2
    sched2.step()
    assert sched2.get_last_lr() == pytest.approx(want)


def test_scheduler_validation():
    opt = SGD([mg.tensor([1.0], requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="step_size"):
        StepLR(opt, 0)
    with pytest.raises(ValueError, match="T_max"):
        CosineAnnealingLR(opt, 0)
    with pytest.raises(TypeError, match="Optimizer"):
        StepLR("opt", 1)
