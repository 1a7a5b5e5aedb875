"""Train a model of the zoo (minigrad.models) on Fashion-MNIST, with augmentation.

    python examples/train.py --model resnet20                       # 15 epochs, SGD 0.1, cosine
    python examples/train.py --model resnet20 --epochs 30 --plots plots/resnet20 --save r20.npz
    python examples/train.py --model resnet20 --resume r20.npz --epochs 30
    python examples/train.py --model lenet5 --epochs 2 --no-augment
    mpiexec -n 2 python examples/train.py --model resnet20 --distributed   # data-parallel, 2 ranks (MPI)

Recipe (He et al. 2016 §4.2, shortened): SGD with momentum 0.9 (Nesterov), weight decay
5e-4, batch 128, learning rate 0.1 annealed to 0 by a cosine over all steps; each
training batch is shifted by up to ±2 pixels (RandomCrop(28, padding=2)) and mirrored
with probability ½ (RandomHorizontalFlip), then normalised with the training set's
mean and standard deviation. The test set is only normalised.

The augmentation of epoch e is drawn from a generator seeded by (seed, e), and the
batches' order from the DataLoader's (seed, e), so --resume continues exactly where a
run that never stopped would be. Under --distributed (as in examples/lenet.py) each rank
takes batch_size / N images of every global batch, BatchNorm becomes SyncBatchNorm (so the
statistics are those of the global batch), rank r draws its crops and flips from its own
generator, and rank 0 alone prints and writes files. The data comes from Debian's
dataset-fashion-mnist package (/usr/share/datasets/fashion-mnist).
"""
import argparse
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import minigrad as mg  # noqa: E402
import minigrad.models  # noqa: E402
from minigrad.data import load_fashion_mnist  # noqa: E402
from minigrad.data import transforms as T  # noqa: E402
from minigrad.distributed import training as dt  # noqa: E402
from lenet import (CLASSES, Progress, evaluate, make_schedule, resumed_schedule,  # noqa: E402
                   train_step)

# zoo models whose forward accepts a 28×28 image (the others need larger inputs)
MODELS_28 = ("resnet20", "lenet5", "resnet18", "resnet34", "resnet50")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet20", choices=MODELS_28,
                   help="a constructor of minigrad.models (default resnet20)")
    p.add_argument("--epochs", type=int, default=15, help="number of epochs (default 15)")
    p.add_argument("--batch-size", type=int, default=128, help="minibatch size (default 128)")
    p.add_argument("--lr", type=float, default=None,
                   help="peak learning rate (default 0.1 for sgd, 2e-3 for adam/adamw)")
    p.add_argument("--optimizer", choices=["sgd", "adam", "adamw"], default="sgd")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9, Nesterov)")
    p.add_argument("--weight-decay", type=float, default=5e-4, help="L2 penalty (default 5e-4)")
    p.add_argument("--schedule", choices=["cosine", "step", "none"], default="cosine",
                   help="learning-rate schedule over all steps (default cosine)")
    p.add_argument("--time-budget", type=float, default=None, metavar="MINUTES",
                   help="anneal the cosine over this much wall-clock time instead of over the "
                        "steps, and stop when it is spent (--epochs is then an upper bound)")
    p.add_argument("--no-augment", dest="augment", action="store_false",
                   help="train without random crops and flips")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist",
                   help="directory with the Fashion-MNIST IDX files")
    p.add_argument("--threads", type=int, default=None, help="kernel threads (default: all CPUs)")
    p.add_argument("--save", default=None, help="write a checkpoint (.npz) after every epoch")
    p.add_argument("--resume", default=None, help="continue from a checkpoint written by --save")
    p.add_argument("--plots", default=None, help="directory for the learning curves (needs matplotlib)")
    p.add_argument("--limit", type=int, default=None, help="train on the first N images only")
    p.add_argument("--test-limit", type=int, default=None, help="test on the first N images only")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--distributed", action="store_true",
                   help="data-parallel training under `mpiexec -n N` (--batch-size is the global "
                        "batch; rank 0 prints and writes files; needs minigrad[distributed])")
    args = p.parse_args(argv)
    if args.lr is None:
        args.lr = 0.1 if args.optimizer == "sgd" else 2e-3
    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def make_optimizer(args, params):
    if args.optimizer == "sgd":
        return mg.optim.SGD(params, lr=args.lr, momentum=args.momentum, nesterov=args.momentum > 0,
                            weight_decay=args.weight_decay)
    if args.optimizer == "adamw":
        return mg.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)
    return mg.optim.Adam(params, lr=args.lr, weight_decay=args.weight_decay)


def plot_history(out_dir, history, title):
    """out_dir/curves.png: loss, accuracy (train and test) and minutes per epoch. Returns the path."""
    from plots import _pyplot                        # matplotlib with the Agg backend
    plt = _pyplot()
    os.makedirs(out_dir, exist_ok=True)
    epochs = history["epoch"]
    panels = (("cross-entropy", ("train_loss", "test_loss")),
              ("accuracy", ("train_acc", "test_acc")),
              ("minutes per epoch", ("time",)))
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for ax, (ylabel, keys) in zip(axes, panels):
        for key in keys:
            values = np.asarray(history[key], dtype=float) / (60 if key == "time" else 1)
            ax.plot(epochs, values, "o-", label=key.split("_")[0])
        if ylabel == "accuracy" and history["test_acc"]:
            best = max(history["test_acc"])
            ax.axhline(best, color="grey", lw=0.8, ls="--")
            ax.set_title(f"best test accuracy {best:.4f}", fontsize=10)
        ax.set(xlabel="epoch", ylabel=ylabel, xticks=epochs)
        ax.grid(alpha=0.3)
        if len(keys) > 1:
            ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    path = os.path.join(out_dir, "curves.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


class CosineOverTime(mg.optim.lr_scheduler.LRScheduler):
    """lr = base_lr · (1 + cos(π · t / budget)) / 2, with t the wall-clock seconds spent since
    training started (summed over resumed runs), and `finished` once t ≥ budget.

    The cosine of --schedule cosine, but over a time budget instead of a number of steps
    (as in Li, Yumer, Ramanan, "Budgeted Training", ICLR 2020): on a machine shared with
    other jobs the number of steps that fit is not known in advance, and a step-based
    cosine cut short would stop at a high learning rate. Not reproducible across machines
    (the schedule depends on speed); the step-based cosine is. Under minigrad.distributed
    every rank takes rank 0's clock, so that all agree on the lr and on when to stop (a rank
    that stopped alone would leave the others waiting in a collective)."""

    def __init__(self, optimizer, budget_seconds):
        if not budget_seconds > 0:
            raise ValueError(f"CosineOverTime(): the budget must be positive, got {budget_seconds}")
        self.budget, self.elapsed, self._t = float(budget_seconds), 0.0, None
        super().__init__(optimizer)

    @property
    def finished(self):
        return self.elapsed >= self.budget

    def get_lr(self):
        now = time.perf_counter()
        if self._t is not None:
            self.elapsed += now - self._t
        self._t = now
        self.elapsed = dt.broadcast_value(self.elapsed)      # rank 0's clock on every rank
        f = min(self.elapsed / self.budget, 1.0)
        return [base * (1 + math.cos(math.pi * f)) / 2 for base in self.base_lrs]

    def state_dict(self):
        return {k: v for k, v in super().state_dict().items() if k != "_t"}


def train(args):
    rank, world = dt.setup(args.distributed, threads=args.threads)
    mg.manual_seed(args.seed)

    x_train, y_train = load_fashion_mnist(args.data, train=True)
    x_test, y_test = load_fashion_mnist(args.data, train=False)
    if args.limit:
        x_train, y_train = x_train[:args.limit], y_train[:args.limit]
    if args.test_limit:
        x_test, y_test = x_test[:args.test_limit], y_test[:args.test_limit]
    mean, std = float(x_train.mean()), float(x_train.std())     # the training set's statistics
    normalize = T.Normalize(mean, std)
    steps = [T.RandomCrop(28, padding=2), T.RandomHorizontalFlip()] if args.augment else []
    train_tf = T.Compose(steps + [normalize])
    x_test = normalize(x_test)

    model = getattr(minigrad.models, args.model)(num_classes=10, in_channels=1)
    opt = make_optimizer(args, model.parameters())
    loader = dt.data_loader((x_train, y_train), args.batch_size, shuffle=True, drop_last=True,
                            seed=args.seed)     # this rank's batch_size / N of each global batch
    if args.time_budget:
        sched = CosineOverTime(opt, args.time_budget * 60)
    else:
        sched = make_schedule(args.schedule, opt, args.epochs * len(loader))
    history = {"epoch": [], "train_loss": [], "train_acc": [], "test_loss": [], "test_acc": [],
               "time": []}
    start_epoch = 0
    if args.resume:
        ckpt = dt.load_checkpoint(args.resume)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        history = {k: list(v) for k, v in ckpt["history"].items()}
        start_epoch = int(ckpt["epoch"])
        if args.time_budget:                  # the time already spent is in the checkpoint
            if "scheduler" in ckpt:
                sched.load_state_dict(ckpt["scheduler"])
        else:                                 # this run's schedule from the step reached
            sched = resumed_schedule(opt, args.schedule, args.lr, args.epochs * len(loader),
                                     start_epoch * len(loader))
        dt.print0(f"resumed from {args.resume} after epoch {start_epoch}")
    net = dt.wrap_model(model, sync_batchnorm=True)    # DistributedDataParallel under --distributed

    if not args.quiet:
        dt.print0(model)
    dt.print0(f"{args.model}: {sum(p.size for p in model.parameters()):,} parameters; "
          f"{len(x_train):,} training images, {len(x_test):,} test images; {args.optimizer} "
          f"lr={args.lr} momentum={args.momentum} weight_decay={args.weight_decay} "
          f"schedule={args.schedule if not args.time_budget else f'cosine over {args.time_budget} min'} batch={args.batch_size} augment={args.augment}; "
          f"train transform {train_tf!r}; {mg.get_num_threads()} threads"
          + (f" × {world} ranks" if args.distributed else ""))

    t_start, images_seen, train_time = time.perf_counter(), 0, 0.0
    for epoch in range(start_epoch, args.epochs):
        if getattr(sched, "finished", False):
            break
        loader.set_epoch(epoch)
        mg.manual_seed(args.seed * 1_000_003 + epoch + rank * 100_003)   # this epoch's (and rank's) crops and flips
        model.train()
        bar = Progress(len(loader), f"epoch {epoch + 1}/{args.epochs}", args.quiet or rank != 0)
        t0, cpu0, seen, correct, loss_sum = time.perf_counter(), time.process_time(), 0, 0, 0.0
        for x, y in loader:
            x = mg.tensor(train_tf(x.numpy()))
            batch_loss, batch_correct, n = train_step(net, opt, sched, x, y)
            seen += n
            loss_sum += batch_loss
            correct += batch_correct
            bar.update(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.4f}",
                       img_s=f"{seen / (time.perf_counter() - t0):.0f}")
            if getattr(sched, "finished", False):
                dt.print0(f"time budget spent after {seen * world} images of epoch {epoch + 1}")
                break
        bar.close()
        epoch_time, epoch_cpu = time.perf_counter() - t0, time.process_time() - cpu0
        loss_sum, correct, seen = dt.reduce_sum(loss_sum, correct, seen)   # over the ranks
        train_time += epoch_time
        images_seen += seen
        test_acc, test_loss = evaluate(model, x_test, y_test)
        for k, v in (("epoch", epoch + 1), ("train_loss", loss_sum / seen), ("train_acc", correct / seen),
                     ("test_loss", test_loss), ("test_acc", test_acc), ("time", epoch_time)):
            history[k].append(v)
        dt.print0(f"epoch {epoch + 1}: train loss {loss_sum / seen:.4f} acc {correct / seen:.4f} | "
              f"test loss {test_loss:.4f} acc {test_acc:.4f} | {epoch_time:.1f} s ({epoch_cpu:.0f} s CPU), "
              f"{seen / epoch_time:.0f} images/s | lr {opt.param_groups[0]['lr']:.4g} | elapsed {time.perf_counter() - t_start:.0f} s")
        if args.save:
            ckpt = {"model": model.state_dict(), "optimizer": opt.state_dict(),
                    "history": {k: np.asarray(v) for k, v in history.items()}, "epoch": epoch + 1}
            if sched is not None:
                ckpt["scheduler"] = sched.state_dict()
            dt.save_checkpoint(ckpt, args.save)

    wall = time.perf_counter() - t_start
    if history["test_acc"]:
        best = int(np.argmax(history["test_acc"]))
        dt.print0(f"final test accuracy {history['test_acc'][-1]:.4f}; best {history['test_acc'][best]:.4f} "
              f"(epoch {history['epoch'][best]}); wall time {wall:.1f} s; training "
              f"{images_seen / max(train_time, 1e-9):.0f} images/s")
    if args.plots and rank == 0:
        path = plot_history(args.plots, history, f"{args.model} on Fashion-MNIST")
        print(f"learning curves written to {path}")
    return model, history


if __name__ == "__main__":
    train(parse_args())
