"""Whole training steps of the classic networks: minigrad vs PyTorch (and TensorFlow when
it is importable), issue 18's protocol.

    python benchmarks/networks.py [--nets resnet18 vgg11_bn ...] [--rounds 3] [--steps 10]
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/networks.py --results
    python benchmarks/networks.py --quick                 # 1 round, 3 steps, small nets
    python benchmarks/networks.py --interleave 8 --steps 3   # the libraries take turns, step by step
    python benchmarks/networks.py --profile [--nets ...] [--top 16]  # where minigrad's step goes

One step = forward, cross-entropy loss, zero_grad, backward, SGD step (lr 0.01, momentum
0.9); float32, 2 threads, training mode (BatchNorm with batch statistics, dropout on), a
fixed random batch. The networks (10 classes; the same architecture in every library):

  resnet18     ResNet-18, CIFAR stem     batch 32, 3×32×32   minigrad.models.resnet18 with
                                                              the stem adapted as below
  resnet20     ResNet-20 (option A)      batch 128, 1×28×28  minigrad.models.resnet20
  vgg11_bn     VGG-11 with BatchNorm     batch 32, 3×32×32   (7×7 adaptive pool, 4096-wide fc)
  googlenet    GoogLeNet, no aux heads   batch 16, 3×64×64
  densenet121  DenseNet-121              batch 8, 3×64×64
  mobilenet_v2 MobileNetV2               batch 32, 3×64×64
  lenet5-64, lenet5-256  LeNet-5         batch 64 / 256, 1×28×28

"CIFAR stem": minigrad.models.resnet18 is torchvision's ImageNet ResNet-18 (7×7/2 conv and a
3×3/2 max pool, which leave a 32×32 image 8×8 before the first stage); the CIFAR variant
the issue measures replaces conv1 by a 3×3/1 convolution (64 channels, padding 1, no bias)
and the max pool by the identity, in both libraries, so the stages see 32, 16, 8, 4 pixels.
PyTorch's models are torchvision 0.28's (ResNet-20 and LeNet-5 are written below);
TensorFlow's are Keras models in NHWC (DenseNet-121 and MobileNetV2 from keras.applications),
their step a `tf.function`.

Protocol (common.py): each (library, network) runs in a fresh process of its own that
imports only that library, builds the model, takes `--warmup` untimed steps, then times
`--steps` back-to-back (hot) steps and reports their median and its peak resident memory
(ru_maxrss: model, optimizer state, activations and the library itself). `--rounds` rounds
alternate the libraries (the order flips every round); the table shows the median over
rounds of each library's per-round median, and the median of the per-round ratios.

--interleave P (a host whose speed drifts by more than the differences measured: on the
machine of session 18 one network's step moved ±20 % between processes of the same code,
over minutes): one process per library stays up for the whole comparison of a network,
each builds its model and warms up once, and then they take turns, P turns each, the
order flipping every pair: a turn is one untimed step (the first after the other
library's turn ran ~2× slower) and `--steps` timed ones; a library that has finished its
turn sleeps 50 ms before handing over (its idle OpenMP threads stop spinning) and waits
on a pipe. Slow phases of the host then fall on both libraries of a pair; the ratio is
the median over pairs of (minigrad's turn median / the other's). Each library still runs
in a process of its own, importing only itself.

--bind exports OMP_PROC_BIND=true and OMP_PLACES=cores to every child: each OpenMP thread
(minigrad's and PyTorch's; TensorFlow's own thread pool does not read them) stays on a core
of its own. On the 2-vCPU Firecracker guest of session 26 (kernel 6.18), after a library's
idle 50 ms the guest's scheduler now and then put a process's main thread and its OpenMP
worker on one vCPU and left them there for up to ~100 ms; the spinning worker then takes
turns with the main thread, and LeNet-5's 2 ms step took 9–15 ms (seen with a sampler of
/proc/self/task/*/stat: both threads runnable on one CPU in every slow step, never in a fast
one). The cause (session 27; the guest boots with sched_vcpu_pack=15): in a perf trace of
the scheduler's events, each slow turn began with the main thread waking the worker for a
region and the wake-up moving the worker onto the main thread's vCPU; from there the two
took turns, one spin (~0.3 ms) per barrier. minigrad's kernels now move such a worker
off the main thread's CPU themselves (ext/omp/keep_apart.c); PyTorch's are still exposed.
With --bind, minigrad leaves the placement to libgomp.

--profile runs minigrad alone, in this process: every Function's forward and backward timed
(common.instrument_functions; each op its own time, the ops it runs inside counted to
them), grouped into convolution, BatchNorm, elementwise and
activations, pooling, linear, copies and shape ops, loss, reductions; the optimizer step
and zero_grad timed apart; the rest of the step is Python overhead (Module calls, Tensor
wrapping, the graph traversal). Also how many convolutions each kernel path ran
(minigrad.kernels.trace).
"""
import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
from common import (RESULTS_HELP, blas_info, child_json, fmt_ms, fmt_ratio, torch_train_step,  # noqa: E402
                    instrument_functions, peak_rss_mib, print_table, record_results, timeit,
                    torch_lenet5)

THREADS = 2

# name: (batch, input shape (C, H, W))
NETS = {
    "resnet18": (32, (3, 32, 32)),
    "resnet20": (128, (1, 28, 28)),
    "vgg11_bn": (32, (3, 32, 32)),
    "googlenet": (16, (3, 64, 64)),
    "densenet121": (8, (3, 64, 64)),
    "mobilenet_v2": (32, (3, 64, 64)),
    "lenet5-64": (64, (1, 28, 28)),
    "lenet5-256": (256, (1, 28, 28)),
}
QUICK = ["resnet20", "mobilenet_v2", "lenet5-64"]
LIBS = ("minigrad", "torch", "tf")


def batch(net):
    """The fixed batch of a network: float32 images (N, C, H, W) and int64 labels (N,)."""
    n, chw = NETS[net]
    rng = np.random.default_rng(0)
    return rng.standard_normal((n,) + chw).astype(np.float32), rng.integers(0, 10, n)


# ---- minigrad ----------------------------------------------------------------------------

def minigrad_model(net):
    import minigrad.models as models
    import minigrad.nn as nn
    if net == "resnet18":
        m = models.resnet18(num_classes=10)
        m.conv1 = nn.Conv2d(3, 64, 3, padding=1, bias=False)        # the CIFAR stem
        m.maxpool = nn.Identity()
        return m
    if net == "resnet20":
        return models.resnet20(num_classes=10, in_channels=1)
    if net == "googlenet":
        return models.googlenet(num_classes=10, aux_logits=False)
    if net.startswith("lenet5"):
        return models.lenet5(num_classes=10)
    return getattr(models, net)(num_classes=10)


def minigrad_step(net, timers=None):
    """(step function, model) of one minigrad training step on the network's fixed batch.
    timers: None, or a Counter that receives the seconds of the optimizer's step and zero_grad."""
    import minigrad as mg
    import minigrad.nn.functional as F
    mg.set_num_threads(THREADS)
    mg.manual_seed(0)
    model = minigrad_model(net)
    model.train()
    opt = mg.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = batch(net)
    xt, yt = mg.tensor(x), mg.tensor(y)

    def step():
        loss = F.cross_entropy(model(xt), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()

    def step_timed():
        loss = F.cross_entropy(model(xt), yt)
        t0 = time.perf_counter()
        opt.zero_grad()
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        timers["optimizer zero_grad"] += t1 - t0
        timers["optimizer step"] += t3 - t2
    return (step if timers is None else step_timed), model


# ---- PyTorch -----------------------------------------------------------------------------

def torch_resnet20(torch):
    """ResNet-20 (He et al. 2016, §4.2) with option-A shortcuts, as minigrad.models.resnet20."""
    nn, F = torch.nn, torch.nn.functional

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.stride, self.extra = stride, cout - cin

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            sc = x
            if self.stride != 1 or self.extra:                 # option A: subsample, zero channels
                sc = F.pad(x[:, :, ::self.stride, ::self.stride],
                           (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))
            return F.relu(out + sc)

    layers, cin = [nn.Conv2d(1, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()], 16
    for cout, stride in ((16, 1), (32, 2), (64, 2)):
        for i in range(3):
            layers.append(Block(cin, cout, stride if i == 0 else 1))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
    return nn.Sequential(*layers)


def torch_model(torch, net):
    if net == "resnet20":
        return torch_resnet20(torch)
    if net.startswith("lenet5"):
        return torch_lenet5(torch)
    import torch.library
    torch.library.register_fake = lambda *a, **k: (lambda f: f)   # torchvision 0.28 vs torch 2.13
    import torchvision.models as tvm
    if net == "resnet18":
        m = tvm.resnet18(num_classes=10)
        m.conv1 = torch.nn.Conv2d(3, 64, 3, padding=1, bias=False)  # the CIFAR stem
        m.maxpool = torch.nn.Identity()
        return m
    if net == "googlenet":
        return tvm.googlenet(num_classes=10, aux_logits=False, init_weights=True)
    return getattr(tvm, net)(num_classes=10)


def torch_step(net):
    import torch
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    model = torch_model(torch, net)
    model.train()
    return torch_train_step(torch, model, *batch(net))


# ---- TensorFlow (NHWC, Keras, tf.function) -------------------------------------------------

def tf_model(tf, net, input_shape):
    """The network in Keras, channels last; logits out (no softmax)."""
    L = tf.keras.layers
    inp = tf.keras.Input(input_shape)

    class ShortcutA(L.Layer):
        """ResNet-20's option-A shortcut: every stride-th pixel, zero channels on both sides
        (a Keras layer: Keras 3 refuses raw tf ops on its symbolic tensors)."""
        def __init__(self, stride, before, after):
            super().__init__()
            self.stride, self.pads = stride, [[0, 0], [0, 0], [0, 0], [before, after]]

        def call(self, x):
            return tf.pad(x[:, ::self.stride, ::self.stride, :], self.pads)

    def conv_bn(x, k, size, stride=1, relu=True, eps=1e-5):
        x = L.Conv2D(k, size, stride, padding="same", use_bias=False)(x)
        x = L.BatchNormalization(epsilon=eps, momentum=0.9)(x)
        return L.ReLU()(x) if relu else x

    def basic_block(x, k, stride, option_a):
        out = conv_bn(x, k, 3, stride)
        out = conv_bn(out, k, 3, relu=False)
        cin = x.shape[-1]
        if stride != 1 or cin != k:
            if option_a:                                   # subsample, pad the new channels
                x = ShortcutA(stride, (k - cin) // 2, k - cin - (k - cin) // 2)(x)
            else:                                          # option B: 1×1 projection
                x = conv_bn(x, k, 1, stride, relu=False)
        return L.ReLU()(L.Add()([out, x]))

    if net.startswith("lenet5"):
        x = L.Conv2D(6, 5, padding="same", activation="relu")(inp)
        x = L.MaxPool2D(2)(x)
        x = L.Conv2D(16, 5, activation="relu")(x)
        x = L.MaxPool2D(2)(x)
        x = L.Flatten()(x)
        x = L.Dense(120, activation="relu")(x)
        x = L.Dense(84, activation="relu")(x)
        out = L.Dense(10)(x)
    elif net in ("resnet18", "resnet20"):
        widths, blocks, option_a = (((64, 128, 256, 512), 2, False) if net == "resnet18"
                                    else ((16, 32, 64), 3, True))
        x = conv_bn(inp, widths[0], 3)
        for i, k in enumerate(widths):
            for b in range(blocks):
                x = basic_block(x, k, 2 if (i > 0 and b == 0) else 1, option_a)
        out = L.Dense(10)(L.GlobalAveragePooling2D()(x))
    elif net == "vgg11_bn":
        x = inp
        for v in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"):
            if v == "M":
                x = L.MaxPool2D(2)(x)
            else:
                x = L.ReLU()(L.BatchNormalization(epsilon=1e-5, momentum=0.9)(
                    L.Conv2D(v, 3, padding="same")(x)))
        # the 1×1 map repeated to 7×7, as the adaptive average pool does
        x = L.UpSampling2D(7)(x)
        x = L.Flatten()(x)
        for _ in range(2):
            x = L.Dropout(0.5)(L.Dense(4096, activation="relu")(x))
        out = L.Dense(10)(x)
    elif net == "googlenet":
        def inception(x, c1, c3r, c3, c5r, c5, pp):
            b1 = conv_bn(x, c1, 1, eps=1e-3)
            b2 = conv_bn(conv_bn(x, c3r, 1, eps=1e-3), c3, 3, eps=1e-3)
            b3 = conv_bn(conv_bn(x, c5r, 1, eps=1e-3), c5, 3, eps=1e-3)   # torchvision's 3×3
            b4 = conv_bn(L.MaxPool2D(3, 1, padding="same")(x), pp, 1, eps=1e-3)
            return L.Concatenate()([b1, b2, b3, b4])
        x = conv_bn(inp, 64, 7, 2, eps=1e-3)
        x = L.MaxPool2D(3, 2, padding="same")(x)
        x = conv_bn(conv_bn(x, 64, 1, eps=1e-3), 192, 3, eps=1e-3)
        x = L.MaxPool2D(3, 2, padding="same")(x)
        x = inception(x, 64, 96, 128, 16, 32, 32)
        x = inception(x, 128, 128, 192, 32, 96, 64)
        x = L.MaxPool2D(3, 2, padding="same")(x)
        for cfg in ((192, 96, 208, 16, 48, 64), (160, 112, 224, 24, 64, 64),
                    (128, 128, 256, 24, 64, 64), (112, 144, 288, 32, 64, 64),
                    (256, 160, 320, 32, 128, 128)):
            x = inception(x, *cfg)
        x = L.MaxPool2D(2, 2, padding="same")(x)
        x = inception(x, 256, 160, 320, 32, 128, 128)
        x = inception(x, 384, 192, 384, 48, 128, 128)
        x = L.Dropout(0.2)(L.GlobalAveragePooling2D()(x))
        out = L.Dense(10)(x)
    elif net == "densenet121":
        return tf.keras.applications.DenseNet121(weights=None, input_shape=input_shape,
                                                 classes=10, classifier_activation=None)
    elif net == "mobilenet_v2":
        return tf.keras.applications.MobileNetV2(weights=None, input_shape=input_shape,
                                                 classes=10, classifier_activation=None)
    else:
        raise ValueError(f"tf_model(): unknown network {net!r}")
    return tf.keras.Model(inp, out)


def tf_step(net):
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(THREADS)
    tf.config.threading.set_inter_op_parallelism_threads(THREADS)
    tf.random.set_seed(0)
    x, y = batch(net)
    x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))                 # NCHW -> NHWC
    model = tf_model(tf, net, x.shape[1:])
    opt = tf.keras.optimizers.SGD(learning_rate=0.01, momentum=0.9)
    loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    tx, ty = tf.constant(x), tf.constant(y)

    @tf.function
    def train_step():
        with tf.GradientTape() as tape:
            loss = loss_fn(ty, model(tx, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    def step():
        train_step().numpy()                           # waits for the step to finish
    return step


def tf_available():
    import importlib.util
    return importlib.util.find_spec("tensorflow") is not None


def torch_available():
    import importlib.util
    return importlib.util.find_spec("torch") is not None


# ---- the child process: one library, one network --------------------------------------------

def child(lib, net, steps, warmup):
    """Print {"times": [seconds per hot step], "rss": peak MiB} as JSON; imports only `lib`."""
    if lib == "minigrad":
        step, _ = minigrad_step(net)
    elif lib == "torch":
        step = torch_step(net)
    else:
        step = tf_step(net)
    for _ in range(warmup):
        step()
    times = timeit(step, steps)
    print(json.dumps({"times": times, "rss": peak_rss_mib()}))


def serve(lib, net, warmup):
    """--interleave's child: build, warm up, print "ready"; then for each line "run k" on
    stdin run one untimed step and k timed ones, sleep 50 ms, print {"times": [...]} as
    JSON; on "quit" print {"rss": peak MiB} and return."""
    step = {"minigrad": lambda: minigrad_step(net)[0], "torch": lambda: torch_step(net),
            "tf": lambda: tf_step(net)}[lib]()
    for _ in range(warmup):
        step()
    print("ready", flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if cmd[:1] == ["quit"]:
            break
        step()                                    # untimed: the first after the other's turn
        times = timeit(step, int(cmd[1]))
        time.sleep(0.05)                          # idle threads stop spinning before the other runs
        print(json.dumps({"times": times}), flush=True)
    print(json.dumps({"rss": peak_rss_mib()}), flush=True)


def _reply(proc, what):
    """The next line of proc's stdout that is `what` ("ready") or a JSON object with the key
    `what`, skipping anything else a library prints there."""
    for line in proc.stdout:
        line = line.strip()
        if line == what:
            return line
        if line.startswith("{"):
            out = json.loads(line)
            if what in out:
                return out[what]
    raise RuntimeError(f"networks.py --serve: the child exited before answering {what!r} "
                       f"(exit code {proc.wait()})")


def _turn(proc, steps):
    proc.stdin.write(f"run {steps}\n")
    proc.stdin.flush()
    return statistics.median(_reply(proc, "times"))


def compare_interleaved(nets, libs, pairs, steps, warmup):
    """--interleave: per network, one serving process per library, `pairs` turns each
    in alternating order; the table of `compare` (ms: median of the turns' medians; ratio:
    median over pairs of minigrad's turn / the other library's)."""
    script = os.path.abspath(__file__)
    rows = []
    for net in nets:
        procs = {}
        try:
            for lib in libs:                      # built one after the other, never together
                procs[lib] = subprocess.Popen(
                    [sys.executable, script, "--serve", lib, "--nets", net, "--warmup",
                     str(warmup)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                _reply(procs[lib], "ready")
            med = {lib: [] for lib in libs}
            for k in range(pairs):
                for lib in (libs if k % 2 == 0 else libs[::-1]):
                    med[lib].append(_turn(procs[lib], steps))
            rss = {}
            for lib, proc in procs.items():
                proc.stdin.write("quit\n")
                proc.stdin.flush()
                rss[lib] = _reply(proc, "rss")
                proc.wait()
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.kill()
        row = [net, NETS[net][0]] + [fmt_ms(statistics.median(med[lib])) for lib in libs]
        for lib in libs[1:]:                      # the median pair, and the range of pairs
            r = [a / b for a, b in zip(med["minigrad"], med[lib])]
            row.append(f"{fmt_ratio(statistics.median(r))} ({min(r):.2f}–{max(r):.2f})")
        row += [f"{rss[lib]:,.0f}" for lib in libs]
        rows.append(row)
    print_table(_headers(libs), rows)


def _headers(libs):
    """The comparison table's columns: ms per library, minigrad's ratio to each other one,
    peak MiB per library."""
    return (["network", "batch"] + [f"{lib} ms" for lib in libs] +
            [f"mg/{lib}" for lib in libs[1:]] + [f"{lib} MiB" for lib in libs])


def compare(nets, libs, rounds, steps, warmup):
    script = os.path.abspath(__file__)
    med = {(lib, net): [] for lib in libs for net in nets}
    rss = {(lib, net): [] for lib in libs for net in nets}
    for r in range(rounds):
        order = libs if r % 2 == 0 else libs[::-1]
        for net in nets:
            for lib in order:
                out = child_json(script, ["--child", lib, "--nets", net, "--steps", steps,
                                          "--warmup", warmup])
                med[lib, net].append(statistics.median(out["times"]))
                rss[lib, net].append(out["rss"])
    rows = []
    for net in nets:
        row = [net, NETS[net][0]]
        row += [fmt_ms(statistics.median(med[lib, net])) for lib in libs]
        for lib in libs[1:]:
            row.append(fmt_ratio(statistics.median(a / b for a, b in
                                                   zip(med["minigrad", net], med[lib, net]))))
        row += [f"{max(rss[lib, net]):,.0f}" for lib in libs]
        rows.append(row)
    print_table(_headers(libs), rows)


# ---- --profile: where minigrad's step goes ------------------------------------------------

# Function (op) class -> group; the rest by the module the op lives in
_GROUP_OF_OP = {"LinearFunction": "linear, matmul", "MatMul": "linear, matmul",
                "DropoutFunction": "elementwise, activations", "SoftmaxFunction": "loss",
                "LogSoftmaxFunction": "loss"}
_GROUP_OF_MODULE = {"conv": "convolution", "norm": "BatchNorm", "group_norm": "BatchNorm",
                    "sync_batchnorm": "BatchNorm", "elementwise": "elementwise, activations",
                    "activation": "elementwise, activations", "pool": "pooling",
                    "shape": "copies, shape ops", "loss": "loss", "reduce": "reductions",
                    "linalg": "linear, matmul",
                    "chain": "convolution + BatchNorm as one op (nn.conv_norm_chain)"}


def op_group(name):
    """The group of an instrumented op name 'Class.forward'."""
    import minigrad.autograd as autograd
    cls_name = name.split(".")[0]
    if cls_name in _GROUP_OF_OP:
        return _GROUP_OF_OP[cls_name]
    for cls in _op_classes(autograd.Function):
        if cls.__name__ == cls_name:
            return _GROUP_OF_MODULE.get(cls.__module__.rsplit(".", 1)[-1], "other ops")
    return "other ops"


def _op_classes(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _op_classes(sub)


def profile(nets, steps, warmup, top=8):
    import minigrad as mg
    import minigrad.kernels as kernels
    totals = collections.Counter()
    instrument_functions(totals)
    for net in nets:
        plain_step, _ = minigrad_step(net)
        for _ in range(warmup):
            plain_step()
        plain = statistics.median(timeit(plain_step, steps))
        timers = collections.Counter()
        step, _ = minigrad_step(net, timers)
        with kernels.trace() as calls:
            step()
        for _ in range(warmup):
            step()
        totals.clear()
        timers.clear()
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        whole = (time.perf_counter() - t0) / steps
        groups = collections.Counter()
        for name, t in totals.items():
            groups[op_group(name)] += t / steps
        for name, t in timers.items():
            groups[name] += t / steps
        rest = whole - sum(groups.values())
        print(f"\n{net}, batch {NETS[net][0]}, {mg.get_num_threads()} threads: step "
              f"{plain * 1e3:.1f} ms (median of {steps}; instrumented {whole * 1e3:.1f} ms)")
        rows = [(g, f"{t * 1e3:.2f}", f"{t / whole:.1%}") for g, t in groups.most_common()]
        rows.append(("Python overhead (Modules, Tensors, graph)", f"{rest * 1e3:.2f}", f"{rest / whole:.1%}"))
        print_table(["part of the step", "ms/step", "share"], rows)
        costliest = [(name, f"{t / steps * 1e3:.2f}", f"{t / steps / whole:.1%}")
                     for name, t in totals.most_common(top)]
        print("top ops:")
        print_table(["op", "ms/step", "share"], costliest)
        paths = collections.Counter((c.op, c.which, c.path) for c in calls if c.op.startswith("conv"))
        print("convolution kernels per step: " + ", ".join(
            f"{which} {path} ×{n}" for (op, which, path), n in sorted(paths.items())))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nets", nargs="+", choices=list(NETS), default=None,
                   help="networks (default: all; --quick: " + " ".join(QUICK) + ")")
    p.add_argument("--libs", nargs="+", choices=LIBS, default=None,
                   help="libraries (default: minigrad and whichever of torch, tf are installed)")
    p.add_argument("--rounds", type=int, default=3, help="rounds alternating the libraries")
    p.add_argument("--steps", type=int, default=10, help="timed hot steps per process")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument("--quick", action="store_true", help="1 round, 3 steps, 2 warm-up steps, three small networks")
    p.add_argument("--profile", action="store_true", help="minigrad only: where the step's time goes")
    p.add_argument("--top", type=int, default=8, help="--profile: how many of the costliest ops to list")
    p.add_argument("--interleave", type=int, default=0, metavar="P",
                   help="one process per library kept up, P turns each (see above)")
    p.add_argument("--bind", action="store_true",
                   help="children run with OMP_PROC_BIND=true, OMP_PLACES=cores (see above)")
    p.add_argument("--child", choices=LIBS, help=argparse.SUPPRESS)
    p.add_argument("--serve", choices=LIBS, help=argparse.SUPPRESS)
    p.add_argument("--results", action="store_true", help=RESULTS_HELP)
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.steps, args.warmup = 1, 3, 2
        args.nets = args.nets or QUICK
    nets = args.nets or list(NETS)
    if args.child:
        return child(args.child, nets[0], args.steps, args.warmup)
    if args.serve:
        return serve(args.serve, nets[0], args.warmup)
    if args.results:
        record_results("networks.py")
    if args.bind:                                 # inherited by every child process
        os.environ.update(OMP_PROC_BIND="true", OMP_PLACES="cores")
    print(blas_info())
    print("OpenMP threads bound to cores (--bind)" if args.bind else
          f"OpenMP binding: OMP_PROC_BIND={os.environ.get('OMP_PROC_BIND', 'unset')}")
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if args.profile:
        return profile(nets, args.steps, args.warmup, args.top)
    libs = args.libs or ["minigrad"] + (["torch"] if torch_available() else []) + \
        (["tf"] if tf_available() else [])
    if libs[0] != "minigrad":
        libs = ["minigrad"] + [lib for lib in libs if lib != "minigrad"]
    what = f"training steps (forward, loss, backward, SGD momentum), float32, {THREADS} threads; "
    if args.interleave:
        print(what + f"each library in a process of its own kept up per network, {args.warmup} "
              f"warm-up steps, then {args.interleave} turns each, alternating, a turn = 1 "
              f"untimed + {args.steps} timed steps; ms = median of the turns' medians, ratio = "
              f"median of per-pair ratios (their range), MiB = peak RSS of the process")
        compare_interleaved(nets, libs, args.interleave, args.steps, args.warmup)
    else:
        print(what + f"{args.rounds} rounds × {args.steps} hot steps after {args.warmup} "
              f"warm-up, each library and network in a process of its own; ms = median, "
              f"ratio = median of per-round ratios, MiB = peak RSS of the process")
        compare(nets, libs, args.rounds, args.steps, args.warmup)
    print(f"load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
