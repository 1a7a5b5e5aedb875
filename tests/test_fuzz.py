"""Fuzzing the kernels' front doors: random valid *and* invalid arguments, dtypes and memory
layouts for conv2d, conv_transpose2d, the poolings, matmul and the losses, forward and
backward, each call in a child process.

Every call must either
  - return the numbers the naive references in tests/reference.py give (forward, and the
    gradients of every input that requires grad for a random upstream gradient, which
    itself has a random layout), in the dtype PyTorch would give, without mutating any
    input; or
  - raise ValueError/TypeError whose message names the offending argument
and never kill the process with a signal (SIGSEGV, SIGBUS, SIGABRT, SIGFPE) or hang.

One long-lived worker process (restarted whenever it dies) runs the calls: the parent
pickles a case to its stdin and waits for the pickled outcome with a timeout. The worker
runs under an address-space limit, so a runaway allocation is a MemoryError (a test
failure) rather than the kernel's OOM killer. Layouts are built in the worker, since
pickling would make every array contiguous.

Bugs found here in code this suite's author does not own are listed in KNOWN_BUGS: the
fuzz tolerates *their* wrong error (never a signal or a hang), and a pinned copy of
each case below is xfail(strict=True), so a fix makes it XPASS and fail until the entry
is removed.
"""
import collections
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

sys.path.insert(0, os.path.dirname(__file__))
import reference as ref  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 20.0                        # seconds per call
MEMORY_LIMIT = 3 << 30                # address space of the worker (bytes)
# Under ASan (CI's sanitizer pass) an address-space limit kills the worker: ASan reserves
# terabytes of shadow address space. There, the worker's allocations are capped instead
# (ASan's max_allocation_size_mb: a larger malloc returns NULL, NumPy's MemoryError).
SANITIZED = os.environ.get("MINIGRAD_SANITIZED") == "1"
CLEAN_ERRORS = ("ValueError", "TypeError")


# ---- the worker ---------------------------------------------------------------------------------

WORKER = r'''
import faulthandler, os, pickle, resource, struct, sys, traceback
faulthandler.enable()
if %(limit)d:
    resource.setrlimit(resource.RLIMIT_AS, (%(limit)d, %(limit)d))
reply = os.fdopen(os.dup(1), "wb")
os.dup2(2, 1)                          # stray prints must not corrupt the replies
sys.path.insert(0, %(root)r)
import numpy as np
import minigrad as mg
import minigrad.nn.functional as F
from minigrad.tensor import Tensor


def matmul(a, b):
    return a @ b if isinstance(a, Tensor) else mg.matmul(a, b)


OPS = {"conv2d": F.conv2d, "conv_transpose2d": F.conv_transpose2d,
       "max_pool2d": F.max_pool2d, "avg_pool2d": F.avg_pool2d,
       "adaptive_avg_pool2d": F.adaptive_avg_pool2d, "matmul": matmul,
       "cross_entropy": F.cross_entropy, "mse_loss": F.mse_loss}


def layout(base, kind):
    """The same values as base, in the memory layout `kind`."""
    if kind == "C" or base.ndim == 0:
        return np.array(base, order="C")
    if kind == "F":
        return np.asfortranarray(base)
    if kind == "slice":                # every other element of a bigger array
        big = np.zeros(tuple(2 * n + 1 for n in base.shape), base.dtype)
        view = big[tuple(slice(1, None, 2) for _ in base.shape)]
        view[...] = base
        return view
    if kind == "neg":                  # negative strides on every axis
        flipped = np.ascontiguousarray(base[tuple(slice(None, None, -1) for _ in base.shape)])
        return flipped[tuple(slice(None, None, -1) for _ in base.shape)]
    if kind == "bcast":                # zero strides: base is constant along axis 0 and -1
        if base.size == 0:
            return np.array(base)
        first = (slice(0, 1),) if base.ndim == 1 else (slice(0, 1), Ellipsis, slice(0, 1))
        return np.broadcast_to(base[first], base.shape)
    raise ValueError(kind)


def build(spec, tensors, arrays, name):
    if isinstance(spec, tuple) and spec and spec[0] == "arr":
        _, base, kind, as_tensor, rg = spec
        a = layout(base, kind)
        arrays.append((name, a, a.copy()))
        if not as_tensor:
            return a
        t = Tensor._wrap(a, rg)        # keeps the layout (mg.tensor would copy)
        tensors[name] = t
        return t
    return spec


def run(case):
    tensors, arrays = {}, []
    args = [build(a, tensors, arrays, f"arg{i}") for i, a in enumerate(case["args"])]
    kwargs = {k: build(v, tensors, arrays, k) for k, v in case["kwargs"].items()}
    out = {"stage": "forward"}
    try:
        y = OPS[case["op"]](*args, **kwargs)
        out["y"] = np.array(y.data)
        if case["grad"] is not None and y.requires_grad:
            out["stage"] = "backward"
            y.backward(build(case["grad"], {}, [], "grad"))
            out["grads"] = {n: None if t.grad is None else np.array(t.grad.data)
                            for n, t in tensors.items() if t.requires_grad}
    except Exception as e:
        out["error"] = type(e).__name__
        out["msg"] = str(e)
        out["tb"] = traceback.format_exc(limit=-4)
    out["mutated"] = [n for n, a, before in arrays
                      if a.dtype.kind == "f" and not np.array_equal(a, before, equal_nan=True)]
    return out


def send(obj):
    b = pickle.dumps(obj)
    reply.write(struct.pack("<Q", len(b)) + b)
    reply.flush()


send("ready")
stdin = sys.stdin.buffer
while True:
    head = stdin.read(8)
    if len(head) < 8:
        break
    send(run(pickle.loads(stdin.read(struct.unpack("<Q", head)[0]))))
'''


class WorkerDied(Exception):
    pass


class Worker:
    """One child Python running WORKER; restarted after it dies or hangs."""

    def __init__(self):
        self.proc = None
        self.starts = 0
        self.log = tempfile.TemporaryFile()

    def start(self):
        self.log.seek(0)
        self.log.truncate()
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        if SANITIZED:
            env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":allocator_may_return_null=1"
                                   f":max_allocation_size_mb={MEMORY_LIMIT >> 20}")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER % {"limit": 0 if SANITIZED else MEMORY_LIMIT, "root": ROOT}],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, env=env, cwd=ROOT)
        self.starts += 1
        assert self._receive(60.0) == "ready"

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc is not None:
            self.proc.stdin.close()
            self.proc.stdout.close()
        self.proc = None

    def stderr_tail(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-3000:]

    def _read(self, n, deadline):
        buf = b""
        fd = self.proc.stdout.fileno()
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
            chunk = os.read(fd, n - len(buf))
            if not chunk:
                raise WorkerDied
            buf += chunk
        return buf

    def _receive(self, timeout):
        deadline = time.monotonic() + timeout
        n, = struct.unpack("<Q", self._read(8, deadline))
        return pickle.loads(self._read(n, deadline))

    def call(self, payload, timeout=TIMEOUT):
        """The worker's outcome dict, or raise AssertionError for a signal or a hang."""
        if self.proc is None or self.proc.poll() is not None:
            self.stop()
            self.start()
        data = pickle.dumps(payload)
        try:
            self.proc.stdin.write(struct.pack("<Q", len(data)) + data)
            self.proc.stdin.flush()
            return self._receive(timeout)
        except TimeoutError:
            self.stop()
            raise AssertionError(f"the call hung (no answer within {timeout} s)") from None
        except (WorkerDied, BrokenPipeError):
            rc = self.proc.wait()
            tail = self.stderr_tail()
            self.stop()
            what = (f"killed by signal {signal.Signals(-rc).name}" if rc < 0
                    else f"exited with status {rc}")
            raise AssertionError(f"the worker process {what}; its stderr:\n{tail}") from None


# ---- cases ----------------------------------------------------------------------------------------

class Case:
    """One call: op, args and kwargs (with ("arr", …) specs for arrays), the upstream gradient,
    and what must happen: expect = ("ok", reference) | ("error", names) | ("either", names,
    reference); tag names the mutation (None for a valid call)."""

    def __init__(self, op, args, kwargs, expect, tag=None, grad=None, desc=""):
        self.op, self.args, self.kwargs, self.expect = op, args, kwargs, expect
        self.tag, self.grad, self.desc = tag, grad, desc

    def payload(self):
        return {"op": self.op, "args": self.args, "kwargs": self.kwargs, "grad": self.grad}

    def __repr__(self):
        def show(v):
            if isinstance(v, tuple) and v and v[0] == "arr":
                _, base, kind, as_tensor, rg = v
                return (f"{'Tensor' if as_tensor else 'ndarray'}{base.shape} {base.dtype} {kind}"
                        + (" requires_grad" if rg else ""))
            return repr(v)
        args = ", ".join([show(a) for a in self.args]
                         + [f"{k}={show(v)}" for k, v in self.kwargs.items()])
        return f"{self.op}({args})  [{self.tag or 'valid'}] {self.desc}"


BAD_DTYPES = ("int64", "int32", "bool", "complex128", "object", "str")


def mixed_floats(*dtypes):
    """Two different float dtypes among `dtypes`: conv and matmul refuse them (PyTorch's rule)."""
    floats = {d for d in dtypes if d in ("float16", "float32", "float64")}
    return len(floats) > 1


def values(rng, shape, dtype, kind="C"):
    """Random values of `dtype` (a dtype name) for an array of `shape`; constant along axes
    0 and −1 when the layout is a broadcast view."""
    assert int(np.prod(shape, dtype=object)) <= 10**6, f"test bug: a huge array {shape} in the parent"
    a = np.asarray(rng.standard_normal(shape) * 2)
    if kind == "bcast" and a.size and a.ndim:
        a[...] = a[:1] if a.ndim == 1 else a[:1, ..., :1]
    if dtype in ("float16", "float32", "float64"):
        return a.astype(dtype)
    if dtype in ("int64", "int32", "uint8"):
        return np.abs(np.round(a * 2)).astype(dtype) if dtype == "uint8" else np.round(a * 2).astype(dtype)
    if dtype == "bool":
        return a > 0
    if dtype == "complex128":
        return a + 1j * a
    if dtype == "object":
        return a.astype(object)
    if dtype == "str":
        return a.astype(str)
    raise ValueError(dtype)


def arr(base, kind, as_tensor=True, requires_grad=False):
    rg = requires_grad and base.dtype.kind == "f"
    return ("arr", base, kind, as_tensor, rg)


layouts = st.sampled_from(["C", "C", "F", "slice", "neg", "bcast"])
seeds = st.integers(0, 2**32 - 1)


def pair_or_int(lo, hi):
    return st.one_of(st.integers(lo, hi), st.tuples(st.integers(lo, hi), st.integers(lo, hi)))


def as_pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def tensor_arg(draw, rng, shape, dtype, requires_grad=True, tensor=None):
    kind = draw(layouts)
    base = values(rng, shape, dtype, kind)
    tensor = draw(st.booleans()) if tensor is None else tensor
    if base.dtype.kind in "OUSc":      # mg.tensor refuses these: only an ndarray can carry them
        tensor = False
    return arr(base, kind, as_tensor=tensor,
               requires_grad=tensor and requires_grad and draw(st.booleans())), base


def upstream(draw, rng, shape, dtype):
    kind = draw(layouts)
    return arr(values(rng, shape, dtype, kind), kind, as_tensor=False)


# -- conv2d

@st.composite
def conv2d_cases(draw):
    rng = np.random.default_rng(draw(seeds))
    G, Cg, Kg = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    N = draw(st.integers(0, 3))
    stride, dilation = draw(pair_or_int(1, 3)), draw(pair_or_int(1, 3))
    padding = draw(st.one_of(st.sampled_from(["same", "valid"]), pair_or_int(0, 3)))
    S, D = as_pair(stride), as_pair(dilation)
    p = (0, 0) if isinstance(padding, str) else as_pair(padding)
    H = max(1, D[0] * (kh - 1) + 1 - 2 * p[0]) + draw(st.integers(0, 4))
    W = max(1, D[1] * (kw - 1) + 1 - 2 * p[1]) + draw(st.integers(0, 4))
    C, K = G * Cg, G * Kg
    dt = draw(st.sampled_from(["float32", "float32", "float64", "float16"]))
    wdt = draw(st.sampled_from([dt, dt, "float32", "float64"]))
    unbatched = draw(st.integers(0, 5)) == 0
    x_shape = (C, H, W) if unbatched else (N, C, H, W)
    w_shape, b_shape = (K, Cg, kh, kw), (K,)
    has_b = draw(st.booleans())
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=G)
    tag, names = None, ()

    mutation = draw(st.sampled_from([None] * 6 + [
        "x_dtype", "w_dtype", "b_dtype", "x_rank", "w_rank", "b_shape", "channels",
        "groups_divide", "groups_value", "stride_value", "stride_overflow", "stride_absurd",
        "dilation_value", "dilation_absurd", "padding_value", "padding_absurd", "kernel_big",
        "x_empty_dim", "w_empty_dim"]))
    xdt, bdt = dt, wdt
    if mutation == "x_dtype":
        xdt, names = draw(st.sampled_from(BAD_DTYPES)), ("input",)
    elif mutation == "w_dtype":
        wdt, names = draw(st.sampled_from(BAD_DTYPES)), ("weight",)
    elif mutation == "b_dtype":
        has_b, bdt, names = True, draw(st.sampled_from(BAD_DTYPES)), ("bias",)
    elif mutation == "x_rank":
        x_shape, names = draw(st.sampled_from([(C, H * W), (1, N, C, H, W), (H,)])), ("input",)
    elif mutation == "w_rank":
        w_shape, names = draw(st.sampled_from([(K, Cg, kh), (1, K, Cg, kh, kw)])), ("weight",)
    elif mutation == "b_shape":
        has_b, names = True, ("bias",)
        b_shape = draw(st.sampled_from([(K + 1,), (1, K), ()]))
    elif mutation == "channels":
        x_shape = x_shape[:-3] + (C + draw(st.sampled_from([-1, 1])) if C > 1 else C + 1, H, W)
        names = ("channels", "input", "weight")
    elif mutation == "groups_divide":
        kwargs["groups"] = draw(st.integers(2, 4).filter(lambda g: K % g or C % g))
        names = ("groups",)
    elif mutation == "groups_value":
        kwargs["groups"] = draw(st.sampled_from([0, -1, 1.5, True, "2", None]))
        names = ("groups",)
    elif mutation == "stride_value":
        kwargs["stride"] = draw(st.sampled_from([0, -1, (1, 0), 1.5, "1", (1, 2, 3), None]))
        names = ("stride",)
    elif mutation == "stride_overflow":         # beyond int64, yet one output position: either
        kwargs["stride"] = draw(st.sampled_from([2**64, (1, 2**70)]))
    elif mutation == "stride_absurd":           # valid: one output position
        kwargs["stride"] = (2**62, draw(st.sampled_from([1, 2**62])))
    elif mutation == "dilation_value":
        kwargs["dilation"] = draw(st.sampled_from([0, -2, (1, 0), 2.0]))
        names = ("dilation",)
    elif mutation == "dilation_absurd":
        kh = max(kh, 2)
        w_shape = (K, Cg, kh, kw)
        kwargs["dilation"], kwargs["padding"] = 2**62, draw(st.sampled_from([0, "valid"]))
        names = ("dilation",)
    elif mutation == "padding_value":
        kwargs["padding"] = draw(st.sampled_from([-1, (0, -2), "full", 1.5, (1, 1, 1)]))
        names = ("padding",)
    elif mutation == "padding_absurd":
        kwargs["padding"] = draw(st.sampled_from([10**12, (0, 10**12), 2**62]))
        names = ("padding",)
    elif mutation == "kernel_big":
        kwargs["padding"] = 0
        w_shape = (K, Cg, H + 1, kw)
        names = ("kernel", "weight")
    elif mutation == "x_empty_dim":
        i = draw(st.integers(0, 2))
        x_shape = x_shape[:-3] + tuple(0 if a == i else n for a, n in enumerate(x_shape[-3:]))
        names = ("input",)
    elif mutation == "w_empty_dim":
        w_shape, names = (K, Cg, 0, kw), ("weight",)
    tag = mutation
    either = ("stride",) if mutation == "stride_overflow" else ()
    if mixed_floats(xdt, wdt):                  # PyTorch's dtype rule: refused, naming the dtypes
        names += ("dtype",)

    x, xb = tensor_arg(draw, rng, x_shape, xdt)
    w, wb = tensor_arg(draw, rng, w_shape, wdt)
    b, bb = tensor_arg(draw, rng, b_shape, bdt) if has_b else (None, None)
    expect = ("error", names)
    grad = None
    if not names:
        S, D = as_pair(kwargs["stride"]), as_pair(kwargs["dilation"])
        P4 = ref.conv_padding4(kwargs["padding"], H, W, kh, kw, S, D)
        xx = xb[None] if unbatched else xb

        def forward():
            y = ref.conv2d(xx, wb, bb, S, P4, D, G)
            return y[0] if unbatched else y

        def vjp(g):
            dx, dw, db = ref.conv2d_vjp(xx, wb, g[None] if unbatched else g, S, P4, D, G)
            return {"arg0": dx[0] if unbatched else dx, "arg1": dw, "bias": db}

        out_shape = ((K,) if unbatched else (N, K)) + (ref.conv_out_size(H, kh, S[0], P4[0], P4[1], D[0]),
                                                     ref.conv_out_size(W, kw, S[1], P4[2], P4[3], D[1]))
        out_dtype = np.result_type(xb, wb, *([] if bb is None else [bb]))
        grad = upstream(draw, rng, out_shape, str(out_dtype))
        expect = ("either", either, Reference(forward, vjp, out_dtype)) if either else \
            ("ok", Reference(forward, vjp, out_dtype))
    kw_ = dict(kwargs, bias=b) if has_b else kwargs
    return Case("conv2d", [x, w], kw_, expect, tag, grad)


class Reference:
    def __init__(self, forward, vjp, dtype):
        self.forward, self.vjp, self.dtype = forward, vjp, np.dtype(dtype)


# -- conv_transpose2d

@st.composite
def conv_transpose2d_cases(draw):
    rng = np.random.default_rng(draw(seeds))
    G, Cig, Cog = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    N, H, W = draw(st.integers(0, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
    S, D = as_pair(draw(pair_or_int(1, 3))), as_pair(draw(pair_or_int(1, 2)))
    OP = tuple(draw(st.integers(0, max(S[a], D[a]) - 1)) for a in (0, 1))
    # padding may eat the output down to one row: (H−1)S + D(k−1) + OP + 1 − 2P ≥ 1
    P = tuple(draw(st.integers(0, max(0, ((n - 1) * S[a] + D[a] * (k - 1) + OP[a]) // 2)))
              for a, (n, k) in enumerate(((H, kh), (W, kw))))
    Cin, Cout = G * Cig, G * Cog
    dt = draw(st.sampled_from(["float32", "float32", "float64"]))
    wdt = draw(st.sampled_from([dt, dt, "float64"]))
    x_shape, w_shape, b_shape = (N, Cin, H, W), (Cin, Cog, kh, kw), (Cout,)
    has_b = draw(st.booleans())
    kwargs = dict(stride=S, padding=P, output_padding=OP, groups=G, dilation=D)
    names = ()
    mutation = draw(st.sampled_from([None] * 5 + [
        "x_dtype", "w_dtype", "x_rank", "b_shape", "channels", "groups_divide",
        "stride_value", "stride_overflow", "stride_absurd", "dilation_absurd",
        "padding_value", "padding_absurd", "output_padding_value"]))
    xdt = dt
    if mutation == "x_dtype":
        xdt, names = draw(st.sampled_from(BAD_DTYPES)), ("input",)
    elif mutation == "w_dtype":
        wdt, names = draw(st.sampled_from(BAD_DTYPES)), ("weight",)
    elif mutation == "x_rank":
        x_shape, names = (Cin, H * W), ("input",)
    elif mutation == "b_shape":
        has_b, b_shape, names = True, (Cout + 1,), ("bias",)
    elif mutation == "channels":
        x_shape, names = (N, Cin + 1, H, W), ("channels", "input", "weight")
    elif mutation == "groups_divide":
        kwargs["groups"] = draw(st.integers(2, 4).filter(lambda g: Cin % g))
        names = ("groups",)
    elif mutation == "stride_value":
        kwargs["stride"] = draw(st.sampled_from([0, -1, 2.5, (1,)]))
        names = ("stride",)
    elif mutation == "stride_overflow":         # the output would have ~2^64 rows
        kwargs["stride"], kwargs["output_padding"] = 2**64, 0
        x_shape = (N, Cin, max(H, 2), W)
        names = ("stride",)
    elif mutation == "stride_absurd":           # the output would have ~2^62 rows
        kwargs["stride"], kwargs["output_padding"] = (2**62, 1), 0
        x_shape = (N, Cin, max(H, 2), W)
        names = ("stride",)
    elif mutation == "dilation_absurd":
        kwargs["dilation"], kwargs["output_padding"] = 2**62, 0
        w_shape = (Cin, Cog, max(kh, 2), kw)
        names = ("dilation",)
    elif mutation == "padding_value":
        kwargs["padding"] = draw(st.sampled_from([-1, "same", 1.5]))
        names = ("padding",)
    elif mutation == "padding_absurd":
        kwargs["padding"] = 10**12
        names = ("padding",)
    elif mutation == "output_padding_value":
        kwargs["output_padding"] = (max(S[0], D[0]), 0)
        names = ("output_padding",)
    if mixed_floats(xdt, wdt):                  # PyTorch's dtype rule: refused, naming the dtypes
        names += ("dtype",)
    x, xb = tensor_arg(draw, rng, x_shape, xdt)
    w, wb = tensor_arg(draw, rng, w_shape, wdt)
    b, bb = tensor_arg(draw, rng, b_shape, wdt) if has_b else (None, None)
    grad, expect = None, ("error", names)
    if not names:
        out_shape = (N, Cout) + tuple(ref.conv_transpose2d_out_size(n, k, S[a], P[a], OP[a], D[a])
                                      for a, (n, k) in enumerate(((H, kh), (W, kw))))
        out_dtype = np.result_type(xb, wb, *([] if bb is None else [bb]))
        grad = upstream(draw, rng, out_shape, str(out_dtype))
        expect = ("ok", Reference(
            lambda: ref.conv_transpose2d(xb, wb, bb, S, P, OP, G, D),
            lambda g: dict(zip(("arg0", "arg1", "bias"),
                               ref.conv_transpose2d_vjp(xb, wb, g, S, P, OP, G, D))),
            out_dtype))
    return Case("conv_transpose2d", [x, w], dict(kwargs, bias=b) if has_b else kwargs, expect,
                mutation, grad)


# -- pooling

@st.composite
def pool_cases(draw, op):
    rng = np.random.default_rng(draw(seeds))
    N, C = draw(st.integers(0, 3)), draw(st.integers(1, 3))
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = draw(st.one_of(st.none(), pair_or_int(1, 3)))
    S = k if s is None else as_pair(s)
    d = draw(pair_or_int(1, 2)) if op == "max_pool2d" else 1
    D = as_pair(d)
    p = draw(st.one_of(st.sampled_from(["same", "valid"]),
                       st.tuples(st.integers(0, k[0] // 2), st.integers(0, k[1] // 2))))
    pp = (0, 0) if isinstance(p, str) else p
    H = max(1, D[0] * (k[0] - 1) + 1 - 2 * pp[0]) + draw(st.integers(0, 5))
    W = max(1, D[1] * (k[1] - 1) + 1 - 2 * pp[1]) + draw(st.integers(0, 5))
    ceil_mode = draw(st.booleans())
    dt = draw(st.sampled_from(["float32", "float32", "float64", "float16"]))
    x_shape = (C, H, W) if draw(st.integers(0, 5)) == 0 else (N, C, H, W)
    kwargs = dict(kernel_size=k, stride=s, padding=p, ceil_mode=ceil_mode)
    if op == "max_pool2d":
        kwargs["dilation"] = d
    else:
        kwargs["count_include_pad"] = draw(st.booleans())
        kwargs["divisor_override"] = draw(st.one_of(st.none(), st.integers(1, 5)))
    names = ()
    mutations = ["x_dtype", "x_rank", "x_empty_dim", "kernel_value", "kernel_big", "stride_value",
                 "stride_absurd", "padding_value", "padding_absurd", "ceil_mode_value"]
    mutations += ["dilation_value"] if op == "max_pool2d" else ["divisor_value", "count_include_pad_value"]
    mutation = draw(st.sampled_from([None] * 6 + mutations))
    either = dt == "float16"                 # float16 may be computed, or refused with a TypeError
    if mutation == "x_dtype":
        dt, names, either = draw(st.sampled_from(BAD_DTYPES)), ("input",), False
    elif mutation == "x_rank":
        x_shape, names = draw(st.sampled_from([(H, W), (1, N, C, H, W)])), ("input",)
    elif mutation == "x_empty_dim":
        i = draw(st.integers(1, 3))
        x_shape, names = tuple(0 if a == i else n for a, n in enumerate((N, C, H, W))), ("input",)
    elif mutation == "kernel_value":
        kwargs["kernel_size"] = draw(st.sampled_from([0, -1, (2, 0), 2**62, 2.0, (1, 2, 3), None]))
        names = ("kernel_size",)
    elif mutation == "kernel_big":
        kwargs.update(kernel_size=(H + 1, k[1]), padding=0, stride=1)
        names = ("kernel",)
    elif mutation == "stride_value":
        kwargs["stride"] = draw(st.sampled_from([0, -3, (1, 0), 1.5, "2"]))
        names = ("stride",)
    elif mutation == "stride_absurd":      # one window per axis, or refused
        kwargs["stride"] = 2**62
        names, either = ("stride",), True
    elif mutation == "padding_value":
        kwargs["padding"] = draw(st.sampled_from([-1, (0, -1), (k[0] // 2 + 1, 0), "full", 0.5]))
        names = ("padding",)
    elif mutation == "padding_absurd":
        kwargs["padding"] = 10**12
        names = ("padding",)
    elif mutation == "ceil_mode_value":
        kwargs["ceil_mode"] = draw(st.sampled_from(["yes", None, 2]))
        names = ("ceil_mode",)
    elif mutation == "dilation_value":
        kwargs["dilation"] = draw(st.sampled_from([0, -1, (1, 0), 1.5]))
        names = ("dilation",)
    elif mutation == "divisor_value":
        kwargs["divisor_override"] = draw(st.sampled_from([0, 1.5, "2", 2**40]))
        names = ("divisor_override",)
    elif mutation == "count_include_pad_value":
        kwargs["count_include_pad"] = "no"
        names = ("count_include_pad",)
    if dt == "float16":                      # may be refused first
        names += ("input",)
        either = mutation in (None, "stride_absurd")
    x, xb = tensor_arg(draw, rng, x_shape, dt)
    return _pool_case(draw, rng, op, x, xb, kwargs, names, either, mutation)


def _pool_case(draw, rng, op, x, xb, kwargs, names, either, mutation):
    grad, expect = None, ("error", names)
    if either or not names:
        if op == "adaptive_avg_pool2d":
            osz = kwargs["output_size"]
            osz = (osz, osz) if not isinstance(osz, tuple) else osz
            out = tuple(xb.shape[-2 + a] if o is None else o for a, o in enumerate(osz))
            forward = lambda: ref.adaptive_avg_pool2d(xb, out)  # noqa: E731
            vjp = lambda g: {"arg0": ref.adaptive_avg_pool2d_vjp(g, xb.shape, out)}  # noqa: E731
            out_shape = xb.shape[:-2] + out
        else:
            k, p = as_pair(kwargs["kernel_size"]), kwargs["padding"]
            S = k if kwargs["stride"] is None else as_pair(kwargs["stride"])
            P = p if isinstance(p, str) else as_pair(p)
            if op == "max_pool2d":
                D = as_pair(kwargs["dilation"])
                forward = lambda: ref.max_pool2d(xb, k, S, P, D, kwargs["ceil_mode"])[0]  # noqa: E731
                vjp = lambda g: {"arg0": ref.max_pool2d_vjp(  # noqa: E731
                    g, ref.max_pool2d(xb, k, S, P, D, kwargs["ceil_mode"])[1], xb.shape)}
            else:
                D = (1, 1)
                a = (k, S, P, kwargs["ceil_mode"], kwargs["count_include_pad"], kwargs["divisor_override"])
                forward = lambda: ref.avg_pool2d(xb, *a)  # noqa: E731
                vjp = lambda g: {"arg0": ref.avg_pool2d_vjp(g, xb.shape, *a)}  # noqa: E731
            out_shape = ref.pool_out_shape(xb.shape, k, S, P, D, kwargs["ceil_mode"])
        grad = upstream(draw, rng, out_shape, str(xb.dtype))
        r = Reference(forward, vjp, xb.dtype)
        expect = ("either", names, r) if either else ("ok", r)
    return Case(op, [x], kwargs, expect, mutation, grad)


@st.composite
def adaptive_cases(draw):
    rng = np.random.default_rng(draw(seeds))
    N, C, H, W = draw(st.integers(0, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 8)), draw(st.integers(1, 8))
    dt = draw(st.sampled_from(["float32", "float32", "float64", "float16"]))
    out = draw(st.one_of(st.integers(1, 9),
                         st.tuples(st.one_of(st.none(), st.integers(1, 9)),
                                   st.one_of(st.none(), st.integers(1, 9)))))
    x_shape = (N, C, H, W)
    names, either = (), dt == "float16"
    mutation = draw(st.sampled_from([None] * 4 + ["x_dtype", "x_rank", "output_size_value",
                                                  "output_size_huge"]))
    if mutation == "x_dtype":
        dt, names, either = draw(st.sampled_from(BAD_DTYPES)), ("input",), False
    elif mutation == "x_rank":
        x_shape, names = (H, W), ("input",)
    elif mutation == "output_size_value":
        out, names = draw(st.sampled_from([0, -1, (2, 0), 2.0, (1, 2, 3), "2"])), ("output_size",)
    elif mutation == "output_size_huge":
        out, names = draw(st.sampled_from([2**30, (1, 2**40), 2**62])), ("output_size",)
    if dt == "float16":
        names += ("input",)
        either = mutation is None
    x, xb = tensor_arg(draw, rng, x_shape, dt)
    return _pool_case(draw, rng, "adaptive_avg_pool2d", x, xb, {"output_size": out}, names, either,
                      mutation)


# -- matmul

@st.composite
def matmul_cases(draw):
    rng = np.random.default_rng(draw(seeds))
    m, k, n = draw(st.integers(0, 4)), draw(st.integers(0, 4)), draw(st.integers(0, 4))
    batch = draw(st.lists(st.integers(1, 3), max_size=2))
    ba = tuple(b if draw(st.booleans()) else 1 for b in batch)
    bb = tuple(b if draw(st.booleans()) else 1 for b in batch)
    ba, bb = ba[draw(st.integers(0, len(ba))):], bb[draw(st.integers(0, len(bb))):]
    a_shape = draw(st.sampled_from([ba + (m, k), (k,)]))
    b_shape = draw(st.sampled_from([bb + (k, n), (k,)]))
    adt = draw(st.sampled_from(["float32", "float64", "float64", "int64", "int32"]))
    bdt = draw(st.sampled_from([adt, adt, "float32", "float64", "int64"]))
    names = ()
    mutation = draw(st.sampled_from([None] * 5 + ["a_dtype", "b_dtype", "inner", "batch", "scalar"]))
    a_tensor = True
    bad = ("bool", "complex128", "object", "str")       # integers multiply exactly
    if mutation == "a_dtype":
        adt, names, a_tensor = draw(st.sampled_from(bad)), ("matmul",), False
    elif mutation == "b_dtype":
        bdt, names = draw(st.sampled_from(bad)), ("matmul",)
    elif mutation == "inner":
        b_shape = b_shape[:-2] + (k + 1, n) if len(b_shape) > 1 else (k + 1,)
        names = ("matmul",)
    elif mutation == "batch":
        a_shape, b_shape, names = (2, m, k), (3, k, n), ("matmul",)
    elif mutation == "scalar":
        a_shape, names = (), ("matmul",)
    a, av = tensor_arg(draw, rng, a_shape, adt, tensor=a_tensor)
    b, bv = tensor_arg(draw, rng, b_shape, bdt, tensor=mutation != "b_dtype")
    if not a_tensor:                # a bad operand is an ndarray (a Tensor cannot hold it)
        a = ("arr", av, a[2], False, False)
    if mutation == "b_dtype":
        b = ("arr", bv, b[2], False, False)
    if adt != bdt and not names:                # PyTorch's dtype rule: matmul never mixes dtypes
        names = ("dtype",)
    grad, expect = None, ("error", names)
    if not names:
        out_dtype = np.result_type(av, bv)
        out_shape = ref.matmul(av, bv).shape
        grad = upstream(draw, rng, out_shape, str(out_dtype))
        expect = ("ok", Reference(lambda: ref.matmul(av, bv),
                                  lambda g: dict(zip(("arg0", "arg1"), ref.matmul_vjp(av, bv, g))),
                                  out_dtype))
    return Case("matmul", [a, b], {}, expect, mutation, grad)


# -- losses

@st.composite
def cross_entropy_cases(draw):
    rng = np.random.default_rng(draw(seeds))
    N, C = draw(st.integers(0, 5)), draw(st.integers(1, 5))
    dt = draw(st.sampled_from(["float32", "float64"]))
    tdt = draw(st.sampled_from(["int64", "int32", "uint8"]))
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    smoothing = draw(st.sampled_from([0.0, 0.0, 0.1, 1.0]))
    has_w = draw(st.booleans())
    z_shape, t_shape, w_shape = (N, C), (N,), (C,)
    labels = rng.integers(0, C, N)
    wdt = draw(st.sampled_from(["float32", "float64"]))
    names = ()
    mutation = draw(st.sampled_from([None] * 5 + [
        "input_dtype", "input_rank", "no_classes", "target_dtype", "target_shape",
        "target_range", "weight_shape", "weight_dtype", "reduction_value", "smoothing_value"]))
    if mutation == "input_dtype":
        dt, names = draw(st.sampled_from(BAD_DTYPES)), ("input",)
    elif mutation == "input_rank":
        z_shape, names = draw(st.sampled_from([(C,), (N, C, 2)])), ("input",)
    elif mutation == "no_classes":
        z_shape, w_shape, has_w, names = (N, 0), (0,), False, ("input", "classes")
    elif mutation == "target_dtype":
        tdt, names = draw(st.sampled_from(["float32", "float64", "bool", "complex128", "object", "str"])), ("target",)
    elif mutation == "target_shape":
        t_shape, names = draw(st.sampled_from([(N + 1,), (N, 1), ()])), ("target",)
    elif mutation == "target_range":
        N = max(N, 1)
        z_shape, t_shape = (N, C), (N,)
        labels = rng.integers(0, C, N)
        labels[rng.integers(0, N)] = draw(st.sampled_from([C, -1, 2**40]))
        tdt, names = "int64", ("target",)
    elif mutation == "weight_shape":
        has_w, w_shape, names = True, (C + 1,), ("weight",)
    elif mutation == "weight_dtype":
        has_w, wdt, names = True, draw(st.sampled_from(["str", "complex128", "object"])), ("weight",)
    elif mutation == "reduction_value":
        reduction, names = draw(st.sampled_from(["avg", None, "MEAN"])), ("reduction",)
    elif mutation == "smoothing_value":
        smoothing, names = draw(st.sampled_from([-0.1, 1.5, float("nan"), "0.1"])), ("label_smoothing",)
    z, zb = tensor_arg(draw, rng, z_shape, dt, tensor=True)
    if t_shape == (N,) and mutation != "target_dtype":
        tb = labels.astype(tdt) if tdt != "uint8" or (labels >= 0).all() else labels
    else:
        tb = values(rng, t_shape, tdt)
    if mutation == "target_range":
        tb = labels.astype("int64")
    tkind = draw(layouts) if tb.ndim and tb.size else "C"
    if tkind == "bcast":
        tkind = "C"
    target = ("arr", tb, tkind, draw(st.booleans()), False)
    wb = None
    kwargs = dict(reduction=reduction, label_smoothing=smoothing)
    if has_w:
        wb = np.abs(values(rng, w_shape, wdt)) + 0.5 if wdt.startswith("float") else values(rng, w_shape, wdt)
        kwargs["weight"] = ("arr", wb, "C", draw(st.booleans()), False)
    grad, expect = None, ("error", names)
    if not names:
        y = tb.astype(np.int64)
        out_shape = (N,) if reduction == "none" else ()
        grad = upstream(draw, rng, out_shape, dt)
        expect = ("ok", Reference(
            lambda: ref.cross_entropy(zb, y, wb, reduction, smoothing),
            lambda g: {"arg0": ref.cross_entropy_vjp(zb, y, g, wb, reduction, smoothing)},
            zb.dtype))
    return Case("cross_entropy", [z, target], kwargs, expect, mutation, grad)


@st.composite
def mse_cases(draw):
    rng = np.random.default_rng(draw(seeds))
    shape = tuple(draw(st.lists(st.integers(0, 4), max_size=3)))
    dt = draw(st.sampled_from(["float32", "float64"]))
    tdt = draw(st.sampled_from([dt, dt, "float32", "float64"]))
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    t_shape, names = shape, ()
    mutation = draw(st.sampled_from([None] * 4 + ["input_dtype", "target_dtype", "shape", "reduction_value"]))
    if mutation == "input_dtype":
        dt, names = draw(st.sampled_from(BAD_DTYPES)), ("input",)
    elif mutation == "target_dtype":
        tdt, names = draw(st.sampled_from(BAD_DTYPES)), ("target",)
    elif mutation == "shape":
        t_shape, names = shape + (2,), ("shape",)
    elif mutation == "reduction_value":
        reduction, names = draw(st.sampled_from(["avg", None])), ("reduction",)
    x, xb = tensor_arg(draw, rng, shape, dt, tensor=True)
    # float32 with a float64 Tensor promotes to float64 (PyTorch's rule for the losses);
    # a constant ndarray target follows the input's dtype
    t, tb = tensor_arg(draw, rng, t_shape, tdt)
    grad, expect = None, ("error", names)
    if not names:
        out_shape = shape if reduction == "none" else ()
        out_dtype = np.result_type(xb, tb) if t[3] else xb.dtype
        grad = upstream(draw, rng, out_shape, str(out_dtype))
        expect = ("ok", Reference(
            lambda: ref.mse_loss(xb, tb, reduction),
            lambda g: {"arg0": ref.mse_loss_vjp(xb, tb, g, reduction),
                       "arg1": -ref.mse_loss_vjp(xb, tb, g, reduction)},
            out_dtype))
    return Case("mse_loss", [x, t], dict(reduction=reduction), expect, mutation, grad)


# ---- checking an outcome --------------------------------------------------------------------------

# (op, mutation tag) -> what is wrong. The fuzz tolerates these cases' wrong *error* (never a
# signal, a hang or a wrong number); the pinned copies below are xfail(strict=True).
# Open bugs: (op, tag) -> what goes wrong. Empty now: every case the fuzz found (absurd
# padding/stride/dilation/output_size that must be named ValueErrors, a huge conv2d stride
# that is valid, and the direct input-gradient kernel that looped over all S_h×S_w phases)
# was fixed and stays pinned in test_pinned_case as a regression.
KNOWN_BUGS = {}

TOL = {np.dtype("float16"): 1e-3, np.dtype("float32"): 1e-5, np.dtype("float64"): 1e-10}


def assert_close(actual, expected, dtype, what, case):
    expected = np.asarray(expected)
    assert actual is not None, f"{what}: no gradient computed\n{case}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, expected {expected.shape}\n{case}"
    if dtype.kind in "iu":
        np.testing.assert_array_equal(actual, expected, err_msg=f"{what}\n{case}")
        return
    tol = TOL[np.dtype(dtype)]
    scale = max(1.0, float(np.max(np.abs(expected[np.isfinite(expected)]), initial=0.0)))
    np.testing.assert_allclose(actual.astype(np.float64), expected, rtol=tol, atol=tol * scale,
                               err_msg=f"{what}\n{case}")


COUNTS = collections.Counter()


def check(worker, case, tolerate_known=True, timeout=TIMEOUT):
    """Run one case in the worker and assert the contract; returns the outcome's kind."""
    COUNTS[case.op] += 1
    COUNTS["total"] += 1
    out = worker.call(case.payload(), timeout)  # AssertionError on a signal or a hang
    kind, names = case.expect[0], case.expect[1] if case.expect[0] != "ok" else ()
    known = KNOWN_BUGS.get((case.op, case.tag)) if tolerate_known else None
    assert not out["mutated"], f"the call changed its inputs {out['mutated']}\n{case}"
    if "error" in out:
        clean = (out["error"] in CLEAN_ERRORS and kind != "ok"
                 and any(n in out["msg"] for n in names))
        if not clean and known:
            COUNTS["known bug"] += 1
            return "known"
        assert kind != "ok", (f"a valid call raised in {out['stage']}: {out['error']}: {out['msg']}"
                              f"\n{case}\n{out['tb']}")
        assert out["error"] in CLEAN_ERRORS, (
            f"expected ValueError/TypeError naming {names}, got {out['error']}: {out['msg']}"
            f"\n{case}\n{out['tb']}")
        assert any(n in out["msg"] for n in names), (
            f"the message does not name any of {names}: {out['error']}: {out['msg']}\n{case}")
        COUNTS["clean error"] += 1
        return "error"
    if kind == "error":
        if known:
            COUNTS["known bug"] += 1
            return "known"
        raise AssertionError(f"an invalid call ({case.tag}) returned a result of shape "
                             f"{out['y'].shape} instead of raising\n{case}")
    r = case.expect[-1]
    assert out["y"].dtype == r.dtype, f"output dtype {out['y'].dtype}, expected {r.dtype}\n{case}"
    assert_close(out["y"], r.forward(), r.dtype, "forward", case)
    if "grads" in out:
        g = case.grad[1]
        expected = r.vjp(g)
        for name, got in out["grads"].items():
            assert_close(got, expected[name], r.dtype if got is None else got.dtype,
                         f"gradient of {name}", case)
        COUNTS["backward checked"] += 1
    COUNTS["result checked"] += 1
    return "ok"


# ---- the tests ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def worker(request):
    w = Worker()
    w.start()
    started = time.monotonic()
    yield w
    w.stop()
    line = (f"fuzz: {COUNTS['total']} cases tried in {time.monotonic() - started:.1f} s "
            f"({COUNTS['result checked']} results checked against the references, "
            f"{COUNTS['backward checked']} with gradients; {COUNTS['clean error']} clean errors; "
            f"{COUNTS['known bug']} known-bug cases; worker started {w.starts}×) — per op: "
            + ", ".join(f"{op} {COUNTS[op]}" for op in OPS))
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capman = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capman is not None:
        with capman.global_and_fixture_disabled():      # shown without -s too
            reporter.write_line("\n" + line)
    else:
        print("\n" + line)
    report = os.environ.get("MINIGRAD_FUZZ_REPORT")
    if report:
        with open(report, "w") as f:
            f.write(line + "\n")


OPS = ["conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "matmul",
       "cross_entropy", "mse_loss"]


def fuzz_settings(factor=1.0):
    return settings(max_examples=max(10, int(8 * settings.default.max_examples * factor)), deadline=None)


@fuzz_settings(1.5)
@given(case=conv2d_cases())
def test_fuzz_conv2d(worker, case):
    check(worker, case)


@fuzz_settings(1.2)
@given(case=conv_transpose2d_cases())
def test_fuzz_conv_transpose2d(worker, case):
    check(worker, case)


@fuzz_settings()
@given(case=pool_cases("max_pool2d"))
def test_fuzz_max_pool2d(worker, case):
    check(worker, case)


@fuzz_settings()
@given(case=pool_cases("avg_pool2d"))
def test_fuzz_avg_pool2d(worker, case):
    check(worker, case)


@fuzz_settings(0.7)
@given(case=adaptive_cases())
def test_fuzz_adaptive_avg_pool2d(worker, case):
    check(worker, case)


@fuzz_settings()
@given(case=matmul_cases())
def test_fuzz_matmul(worker, case):
    check(worker, case)


@fuzz_settings()
@given(case=cross_entropy_cases())
def test_fuzz_cross_entropy(worker, case):
    check(worker, case)


@fuzz_settings(0.7)
@given(case=mse_cases())
def test_fuzz_mse_loss(worker, case):
    check(worker, case)


# ---- the harness itself can fail ----------------------------------------------------------------

class _Segfault:
    """Unpickling this in the worker reads address 0 (pickle calls what __reduce__ names)."""

    def __reduce__(self):
        import ctypes
        return (ctypes.string_at, (0,))


class _Sleep:
    def __reduce__(self):
        return (time.sleep, (30,))


@pytest.mark.skipif(SANITIZED, reason="under ASan the deliberate SIGSEGV is caught by ASan's handler, "
                    "reported and turned into exit(1), not death by the signal this test expects")
def test_harness_reports_a_signal_and_a_hang_then_recovers(worker):
    with pytest.raises(AssertionError, match="killed by signal SIGSEGV"):
        worker.call(_Segfault())
    with pytest.raises(AssertionError, match="hung"):
        worker.call(_Sleep(), timeout=1.0)
    eye = Case("matmul", [arr(np.eye(2), "C"), arr(np.arange(4.0).reshape(2, 2), "F")], {},
               ("ok", Reference(lambda: np.arange(4.0).reshape(2, 2), None, np.float64)))
    assert check(worker, eye) == "ok"                    # a fresh worker took over


def test_harness_rejects_wrong_numbers_and_unclean_errors(worker):
    wrong = Case("matmul", [arr(np.eye(2), "C"), arr(np.ones((2, 2)), "C")], {},
                 ("ok", Reference(lambda: 2 * np.ones((2, 2)), None, np.float64)))
    with pytest.raises(AssertionError, match="forward"):
        check(worker, wrong)
    mismatch = Case("matmul", [arr(np.eye(2), "C"), arr(np.ones((3, 2)), "C")], {},
                    ("error", ("no such name",)))
    with pytest.raises(AssertionError, match="does not name"):
        check(worker, mismatch)
    valid_but_raises = Case("matmul", [arr(np.eye(2), "C"), arr(np.ones((3, 2)), "C")], {},
                            ("ok", Reference(lambda: None, None, np.float64)))
    with pytest.raises(AssertionError, match="a valid call raised"):
        check(worker, valid_but_raises)


# ---- the known bugs, pinned ----------------------------------------------------------------------

def _pinned():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1, 2, 3, 3)).astype(np.float32)
    w = rng.standard_normal((2, 1, 2, 2)).astype(np.float32)
    wt = rng.standard_normal((2, 1, 2, 1)).astype(np.float32)
    x2 = rng.standard_normal((1, 2, 2, 1)).astype(np.float32)
    w1 = rng.standard_normal((3, 2, 1, 1)).astype(np.float32)

    def conv_ref(x, w, S, G):
        return Reference(lambda: ref.conv2d(x, w, None, S, (0, 0, 0, 0), (1, 1), G),
                         lambda g: dict(zip(("arg0", "arg1"),
                                            ref.conv2d_vjp(x, w, g, S, (0, 0, 0, 0), (1, 1), G))),
                         np.float32)

    grad = arr(np.ones((1, 2, 1, 2), np.float32), "C", as_tensor=False)
    return {
        ("conv2d", "padding_absurd"): Case(
            "conv2d", [arr(x, "C"), arr(w[:, :1].repeat(2, 1), "C")], {"padding": 10**12},
            ("error", ("padding",)), "padding_absurd"),
        ("conv2d", "stride_overflow"): Case(
            "conv2d", [arr(x, "C"), arr(w1, "C")], {"stride": 2**64},
            ("either", ("stride",), conv_ref(x, w1, (2**64, 2**64), 1)), "stride_overflow"),
        ("conv_transpose2d", "stride_absurd"): Case(
            "conv_transpose2d", [arr(x2, "C"), arr(wt, "C")], {"stride": (2**62, 1)},
            ("error", ("stride",)), "stride_absurd"),
        ("conv_transpose2d", "stride_overflow"): Case(
            "conv_transpose2d", [arr(x2, "C"), arr(wt, "C")], {"stride": 2**64},
            ("error", ("stride",)), "stride_overflow"),
        ("conv_transpose2d", "dilation_absurd"): Case(
            "conv_transpose2d", [arr(x2, "C"), arr(wt, "C")], {"dilation": 2**62},
            ("error", ("dilation",)), "dilation_absurd"),
        ("conv2d", "direct_backward_huge_stride"): Case(
            "conv2d", [arr(x, "C", requires_grad=True), arr(w, "C", requires_grad=True)],
            {"stride": (2**62, 1), "groups": 2},
            ("ok", conv_ref(x, w, (2**62, 1), 2)), "direct_backward_huge_stride", grad=grad),
        ("adaptive_avg_pool2d", "output_size_huge"): Case(
            "adaptive_avg_pool2d", [arr(x, "C")], {"output_size": 2**30},
            ("error", ("output_size",)), "output_size_huge"),
    }


PINNED = _pinned()


@pytest.mark.parametrize("key", [
    pytest.param(key, id=f"{key[0]}-{key[1]}",
                 marks=[pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[key])] if key in KNOWN_BUGS else [])
    for key in PINNED])
def test_pinned_case(worker, key):
    """Every bug the fuzz ever found stays here as a regression case (xfail while open)."""
    check(worker, PINNED[key], tolerate_known=False, timeout=5.0)


def test_every_known_bug_is_pinned():
    assert set(KNOWN_BUGS) <= set(PINNED)


def test_huge_stride_backward_on_the_gemm_path(worker):
    """The same call as the known direct-path hang, with groups=1: answers at once."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((1, 2, 3, 3)).astype(np.float32)
    w = rng.standard_normal((2, 2, 2, 2)).astype(np.float32)
    S = (2**62, 1)
    case = Case("conv2d", [arr(x, "C", requires_grad=True), arr(w, "slice", requires_grad=True)],
                {"stride": S},
                ("ok", Reference(lambda: ref.conv2d(x, w, None, S, (0, 0, 0, 0), (1, 1), 1),
                                 lambda g: dict(zip(("arg0", "arg1"), ref.conv2d_vjp(
                                     x, w, g, S, (0, 0, 0, 0), (1, 1), 1))), np.float32)),
                grad=arr(np.ones((1, 2, 1, 2), np.float32), "neg", as_tensor=False))
    assert check(worker, case, tolerate_known=False, timeout=5.0) == "ok"
