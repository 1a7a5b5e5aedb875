"""Do torchvision's own model definitions, run on minigrad, give PyTorch's numbers?

    python tools/torchvision_check.py                 # every model below
    python tools/torchvision_check.py resnet18 vgg11  # some of them
    python tools/torchvision_check.py --list

A development check (needs torch and torchvision; the test suite does not). For each model:

1. read the model's source file from the *installed* torchvision (never copied into this
   repository) and execute it with the torch alias installed (minigrad.compat), so
   `import torch`, `torch.nn`, `F`, `torch.utils.checkpoint`, `torch.jit` are minigrad;
   its imports of torchvision internals (`..transforms._presets`, `..utils`, `._api`,
   `._meta`, `._utils`, `..ops.misc`) are stand-ins: plain-Python helpers are taken from
   torchvision, `..ops.misc` is executed the same way as the model file;
2. build the model with torchvision's constructor on both sides, in float64, and copy
   torch's weights into minigrad's model with load_state_dict (same keys);
3. run forward and backward on a small input in training mode (batch statistics; dropout
   switched off on both sides because the random masks differ) and in evaluation mode,
   and compare the outputs, every parameter's gradient and the running statistics:
   max |minigrad − torch| / max |torch| must be ≤ 1e-7 (float64), per tensor (a
   gradient that is exactly 0 in theory is measured against 1e-8 × the largest gradient).

With --float32 the models are also run in float32 (training mode): minigrad's largest
relative error against PyTorch's float64 result, over every output and gradient, must be
within 4 × PyTorch's own largest float32 error (see check_float32). Prints one line per model and check; exits 1 if any failed.
"""
import argparse
import importlib.util
import os
import sys
import time
import traceback
import types

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

RTOL = 1e-7

# name -> (source file, constructor, keyword arguments, input shape)
MODELS = {
    "alexnet": ("alexnet", "alexnet", {"num_classes": 10}, (2, 3, 64, 64)),
    "vgg11": ("vgg", "vgg11", {"num_classes": 10}, (2, 3, 32, 32)),
    "vgg11_bn": ("vgg", "vgg11_bn", {"num_classes": 10}, (4, 3, 32, 32)),
    "vgg16": ("vgg", "vgg16", {"num_classes": 10}, (2, 3, 32, 32)),
    "vgg16_bn": ("vgg", "vgg16_bn", {"num_classes": 10}, (4, 3, 32, 32)),
    "googlenet": ("googlenet", "googlenet", {"num_classes": 10, "aux_logits": False,
                                             "init_weights": True}, (2, 3, 64, 64)),
    "googlenet_aux": ("googlenet", "googlenet", {"num_classes": 10, "aux_logits": True,
                                                 "init_weights": True}, (2, 3, 64, 64)),
    "resnet18": ("resnet", "resnet18", {"num_classes": 10}, (2, 3, 32, 32)),
    "resnet50": ("resnet", "resnet50", {"num_classes": 10}, (2, 3, 32, 32)),
    "densenet121": ("densenet", "densenet121", {"num_classes": 10}, (2, 3, 32, 32)),
    "densenet121_memory_efficient": ("densenet", "densenet121",
                                     {"num_classes": 10, "memory_efficient": True}, (2, 3, 32, 32)),
    "squeezenet1_0": ("squeezenet", "squeezenet1_0", {"num_classes": 10}, (2, 3, 64, 64)),
    "squeezenet1_1": ("squeezenet", "squeezenet1_1", {"num_classes": 10}, (2, 3, 64, 64)),
    "mobilenet_v2": ("mobilenetv2", "mobilenet_v2", {"num_classes": 10}, (4, 3, 64, 64)),
}


# ---- real torch and torchvision ---------------------------------------------------------------
def import_torchvision():
    """torch and torchvision (torchvision 0.28 needs torch.library.register_fake here)."""
    import torch
    import torch.library
    torch.library.register_fake = lambda *a, **k: (lambda f: f)
    import torchvision
    return torch, torchvision


# ---- executing torchvision's sources on minigrad -------------------------------------------------
PKG = "_tv_on_minigrad"


def _package(name):
    mod = types.ModuleType(name)
    mod.__path__ = []
    mod.__package__ = name
    sys.modules[name] = mod
    return mod


def _stub(name, **attrs):
    mod = types.ModuleType(name)
    mod.__package__ = name.rpartition(".")[0]
    mod.__dict__.update(attrs)
    sys.modules[name] = mod
    return mod


def _exec_source(torchvision, relpath, name):
    """Execute torchvision's file `relpath` as module `name`, reading it from the installed
    torchvision (with the alias in effect, so its `import torch` gets minigrad)."""
    path = os.path.join(os.path.dirname(torchvision.__file__), relpath)
    with open(path) as f:
        source = f.read()
    mod = types.ModuleType(name)
    mod.__file__ = path
    mod.__package__ = name.rpartition(".")[0]
    sys.modules[name] = mod
    exec(compile(source, path, "exec"), mod.__dict__)
    return mod


def load_on_minigrad(torchvision, files):
    """{file: module} of torchvision's model files executed on minigrad."""
    from torchvision.models import _api, _meta, _utils
    from torchvision import utils as tv_utils
    from minigrad import compat

    class ImageClassification:        # only referenced by the weights' metadata
        def __init__(self, *args, **kwargs):
            pass

    def register_model(name=None):
        return lambda fn: fn

    for pkg in (PKG, f"{PKG}.models", f"{PKG}.ops", f"{PKG}.transforms"):
        _package(pkg)
    _stub(f"{PKG}.transforms._presets", ImageClassification=ImageClassification)
    _stub(f"{PKG}.utils", _log_api_usage_once=lambda obj: None, _make_ntuple=tv_utils._make_ntuple)
    _stub(f"{PKG}.models._api", register_model=register_model, Weights=_api.Weights,
          WeightsEnum=_api.WeightsEnum)
    _stub(f"{PKG}.models._meta", _IMAGENET_CATEGORIES=_meta._IMAGENET_CATEGORIES)
    _stub(f"{PKG}.models._utils", _ovewrite_named_param=_utils._ovewrite_named_param,
          handle_legacy_interface=_utils.handle_legacy_interface,
          _make_divisible=_utils._make_divisible)
    out = {}
    with compat.torch_alias():
        _exec_source(torchvision, os.path.join("ops", "misc.py"), f"{PKG}.ops.misc")
        for f in files:
            out[f] = _exec_source(torchvision, os.path.join("models", f + ".py"), f"{PKG}.models.{f}")
    return out


# ---- comparing -------------------------------------------------------------------------------------
def rel_err(got, want, floor=0.0):
    """max |got − want| / max |want|; `floor` is the smallest scale used (see check_model)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape:
        return np.inf
    scale = max(np.max(np.abs(want), initial=0.0), floor)
    diff = np.max(np.abs(got - want), initial=0.0)
    return diff / scale if scale > 0 else diff


def outputs_of(out):
    """A model's output(s) as a list (GoogLeNet in training returns a namedtuple)."""
    return list(out) if isinstance(out, tuple) else [out]


def no_dropout(model, dropout_types):
    """Training mode, but dropout (modules, and GoogLeNet's aux heads' functional dropout)
    in evaluation mode on both sides: their random masks cannot agree."""
    model.train()
    for m in model.modules():
        if isinstance(m, dropout_types) or type(m).__name__ == "InceptionAux":
            m.eval()


def forward_backward(torch, tmodel, mmodel, x, projections, mode):
    """Both models in `mode` on input x: their outputs and parameter gradients (NumPy),
    the loss being Σ_outputs Σ output · projection (random directions, fixed by the caller)."""
    import minigrad as mg
    if mode == "train":
        no_dropout(tmodel, (torch.nn.Dropout,))
        no_dropout(mmodel, (mg.nn.Dropout,))
    else:
        tmodel.eval()
        mmodel.eval()
    tmodel.zero_grad()
    mmodel.zero_grad()
    tout = outputs_of(tmodel(torch.from_numpy(x)))
    mout = outputs_of(mmodel(mg.tensor(x)))
    if projections is None:
        rng = np.random.default_rng(1)
        projections = [rng.standard_normal(tuple(o.shape)) for o in tout]
    dtype = x.dtype
    sum((o * torch.from_numpy(r.astype(dtype))).sum() for o, r in zip(tout, projections)).backward()
    sum((o * mg.tensor(r.astype(dtype))).sum() for o, r in zip(mout, projections)).backward()
    tgrads = {n: None if p.grad is None else p.grad.numpy().copy() for n, p in tmodel.named_parameters()}
    mgrads = {n: None if p.grad is None else p.grad.numpy().copy() for n, p in mmodel.named_parameters()}
    return ([o.detach().numpy() for o in tout], [o.detach().numpy() for o in mout], tgrads, mgrads,
            projections)


def check_model(name, torch, torchvision, mg_mods, log, float32=False):
    import minigrad as mg
    file, ctor, kwargs, shape = MODELS[name]
    torch.manual_seed(0)
    t0 = time.perf_counter()
    tmodel = getattr(torchvision.models, ctor)(**kwargs).double()
    mmodel = getattr(mg_mods[file], ctor)(**kwargs).double()
    n_t = sum(p.numel() for p in tmodel.parameters())
    n_m = sum(p.numel() for p in mmodel.parameters())
    results = [("parameter count", 0.0 if n_t == n_m else np.inf, f"{n_m} vs torch {n_t}")]
    initial = {k: v.detach().numpy().copy() for k, v in tmodel.state_dict().items()}
    mmodel.load_state_dict(initial)               # strict: the keys must be torchvision's
    x = np.random.default_rng(0).standard_normal(shape)
    for mode in ("train", "eval"):
        tout, mout, tgrads, mgrads, proj = forward_backward(torch, tmodel, mmodel, x, None, mode)
        if len(tout) != len(mout):
            results.append((f"{mode} outputs", np.inf, f"{len(mout)} outputs vs torch {len(tout)}"))
            continue
        for i, (a, b) in enumerate(zip(mout, tout)):
            results.append((f"{mode} output {i}", rel_err(a, b), str(b.shape)))
        # A gradient that is 0 in exact arithmetic (the bias of a convolution followed by
        # batch norm) is rounding noise on both sides: it is measured on the scale of
        # 1e-8 × the model's largest gradient instead of its own.
        floor = 1e-8 * max(np.max(np.abs(g)) for g in tgrads.values() if g is not None)
        worst, worst_name = 0.0, ""
        for pname, g in mgrads.items():
            tg = tgrads[pname]
            err = np.inf if (g is None) != (tg is None) else (0.0 if tg is None else rel_err(g, tg, floor))
            if err >= worst:
                worst, worst_name = err, pname
        results.append((f"{mode} gradients ({len(tgrads)} parameters)", worst, f"worst: {worst_name}"))
        if mode == "train":
            tbuf = {k: v.detach().numpy() for k, v in tmodel.state_dict().items() if "running" in k}
            # a batch mean that is 0 in exact arithmetic (a bias-free 1×1 convolution of a
            # batch-normalised input, MobileNetV2's bottlenecks) is noise: same floor as above
            floor = 1e-8 * max((np.max(np.abs(v)) for v in tbuf.values()), default=0.0)
            worst = max((rel_err(v.numpy(), tbuf[k], floor) for k, v in mmodel.state_dict().items()
                         if k in tbuf), default=0.0)
            results.append(("running statistics", worst, ""))
    ok = all(err <= RTOL for _, err, _ in results)
    for what, err, note in results:
        log(f"  {'ok  ' if err <= RTOL else 'FAIL'} {what:<34} rel err {err:.2e}  {note}")
    if float32:
        ok = check_float32(torch, tmodel, mmodel, initial, x, log) and ok
    log(f"  {name}: {'PASS' if ok else 'FAIL'} ({time.perf_counter() - t0:.1f} s)")
    return ok


def check_float32(torch, tmodel, mmodel, initial, x, log):
    """float32, training mode, on a batch of 4 images twice the float64 check's size, against
    PyTorch's float64 result on the same input: minigrad's largest relative
    error over all outputs and gradients (each array's max |error| / its max |value|) must
    be at most 4 × PyTorch's own largest float32 error (plus 1e-6).

    The comparison is model-wide, not per array: through many batch norms over few
    values, rounding errors are amplified chaotically, and which array a float32 run gets
    worst differs between any two runs (PyTorch's own included), while the size of the
    worst error is stable."""
    # a larger batch and image than the float64 check: with batch norms over 2 values
    # (1×1 maps at batch 2) float32 gradients are noise for PyTorch as for minigrad
    n, c, h, w = x.shape
    x = np.random.default_rng(2).standard_normal((max(n, 4), c, 2 * h, 2 * w))
    for model in (tmodel, mmodel):
        model.double()
    tmodel.load_state_dict({k: torch.from_numpy(v) for k, v in initial.items()})
    t64_out, _, t64_grads, _, proj = forward_backward(torch, tmodel, mmodel, x, None, "train")
    tmodel.load_state_dict({k: torch.from_numpy(v) for k, v in initial.items()})
    mmodel.load_state_dict(initial)
    tmodel.float()
    mmodel.float()
    tout, mout, tgrads, mgrads, _ = forward_backward(torch, tmodel, mmodel, x.astype(np.float32),
                                                     proj, "train")
    pairs = [(f"output {i}", m, t, r) for i, (m, t, r) in enumerate(zip(mout, tout, t64_out))]
    pairs += [(n, mgrads[n], tgrads[n], t64_grads[n]) for n in t64_grads if t64_grads[n] is not None]
    # a gradient that is 0 in exact arithmetic (float64 gives ~1e-16 of the largest) is
    # float32 noise on both sides, with no scale of its own: left out, and counted
    largest = max(np.max(np.abs(r)) for _, _, _, r in pairs)
    zero = [p for p in pairs if np.max(np.abs(p[3])) <= 1e-10 * largest]
    pairs = [p for p in pairs if np.max(np.abs(p[3])) > 1e-10 * largest]
    worst_mg = worst_t = (0.0, "")
    for what, m, t, r in pairs:
        scale = np.max(np.abs(r))
        worst_mg = max(worst_mg, (np.max(np.abs(m.astype(np.float64) - r)) / scale, what))
        worst_t = max(worst_t, (np.max(np.abs(t.astype(np.float64) - r)) / scale, what))
    ok = worst_mg[0] <= 4 * worst_t[0] + 1e-6
    log(f"  {'ok  ' if ok else 'FAIL'} float32 vs float64 ({len(pairs)} arrays, {len(zero)} zero in "
        f"theory left out)   minigrad's worst "
        f"rel err {worst_mg[0]:.2e} ({worst_mg[1]}), PyTorch's {worst_t[0]:.2e} ({worst_t[1]})")
    return ok


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", help="models to check (default: all)")
    parser.add_argument("--list", action="store_true", help="list the models and exit")
    parser.add_argument("--float32", action="store_true",
                        help="also compare float32 runs against PyTorch's float64 result")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(MODELS))
        return 0
    names = args.models or list(MODELS)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {list(MODELS)}")
    torch, torchvision = import_torchvision()
    torch.set_num_threads(1)
    files = sorted({MODELS[n][0] for n in names})
    try:
        mg_mods = load_on_minigrad(torchvision, files)
    except Exception:
        print("executing torchvision's sources on minigrad failed:")
        traceback.print_exc()
        return 1
    summary = {}
    for name in names:
        print(f"{name}:", flush=True)
        try:
            summary[name] = check_model(name, torch, torchvision, mg_mods,
                                        lambda s: print(s, flush=True), args.float32)
        except Exception as e:
            print(f"  {name}: ERROR {type(e).__name__}: {e}")
            traceback.print_exc(limit=-3)
            summary[name] = False
    print("\nsummary: " + ", ".join(f"{n} {'PASS' if ok else 'FAIL'}" for n, ok in summary.items()))
    return 0 if all(summary.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
