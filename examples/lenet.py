"""Train LeNet-5 on Fashion-MNIST with minigrad (the project's main job).

    python examples/lenet.py                       # 10 epochs, Adam 2e-3 with a cosine schedule
    python examples/lenet.py --epochs 1 --plots plots --save lenet.npz
    python examples/lenet.py --resume lenet.npz --epochs 12   # 11 more epochs on a 12-epoch schedule
    python examples/lenet.py --save lenet.npz --save-every 100   # also every 100 steps
    mpiexec -n 2 python examples/lenet.py --distributed     # data-parallel on 2 ranks (MPI)

A run resumed from any checkpoint (end of an epoch or mid-epoch) with the same --epochs
continues bitwise like the run that was never interrupted: the checkpoint holds the model,
optimizer and schedule state, the history, and where in which epoch's (seeded) batch order
it stopped. With other --epochs, the learning rate follows the new run's schedule from the
step reached.

The data comes from Debian's dataset-fashion-mnist package (/usr/share/datasets/fashion-mnist):
    apt-get install -y dataset-fashion-mnist
"""
import argparse
import itertools
import os
import sys
import time

import numpy as np

import minigrad as mg
import minigrad.nn as nn
import minigrad.nn.functional as F
from minigrad.data import load_fashion_mnist
from minigrad.distributed import training as dt

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def lenet5(activation="relu"):
    """LeNet-5 as in the notes: conv 6@5×5 pad 2 → act → pool 2 → conv 16@5×5 → act → pool 2
    → 120 → 84 → 10. Shapes for one 1×28×28 image: 6×28×28 → 6×14×14 → 16×10×10 → 16×5×5."""
    act = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}[activation]
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), act(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), act(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), act(),
        nn.Linear(120, 84), act(),
        nn.Linear(84, 10),
    )


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=10, help="number of epochs (default 10)")
    p.add_argument("--batch-size", type=int, default=64, help="minibatch size (default 64)")
    p.add_argument("--lr", type=float, default=None,
                   help="peak learning rate (default 2e-3 for adam/adamw, 0.05 for sgd)")
    p.add_argument("--optimizer", choices=["adam", "adamw", "sgd"], default="adam")
    p.add_argument("--schedule", choices=["cosine", "step", "none"], default="cosine",
                   help="learning-rate schedule over all steps (default cosine)")
    p.add_argument("--activation", choices=["relu", "tanh", "sigmoid"], default="relu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist",
                   help="directory with the Fashion-MNIST IDX files")
    p.add_argument("--threads", type=int, default=None, help="kernel threads (default: all CPUs)")
    p.add_argument("--save", default=None, help="write a checkpoint (.npz) after every epoch")
    p.add_argument("--save-every", type=int, default=None, metavar="N",
                   help="also write the --save checkpoint every N training steps (mid-epoch)")
    p.add_argument("--resume", default=None, help="continue from a checkpoint written by --save")
    p.add_argument("--max-steps", type=int, default=None, help=argparse.SUPPRESS)  # stop early (tests)
    p.add_argument("--plots", default=None, help="directory for PNG plots (needs matplotlib)")
    p.add_argument("--limit", type=int, default=None, help=argparse.SUPPRESS)  # train on the first N images (tests)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--distributed", action="store_true",
                   help="data-parallel training under `mpiexec -n N` (--batch-size is the global "
                        "batch; rank 0 prints and writes files; needs minigrad[distributed])")
    args = p.parse_args(argv)
    if args.lr is None:
        args.lr = 0.05 if args.optimizer == "sgd" else 2e-3
    for name in ("epochs", "batch_size", "save_every"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.save_every and not args.save:
        p.error("--save-every needs --save PATH (the checkpoint to write)")
    return args


def make_optimizer(name, params, lr):
    if name == "sgd":
        return mg.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    if name == "adamw":
        return mg.optim.AdamW(params, lr=lr)
    return mg.optim.Adam(params, lr=lr)


def make_schedule(name, opt, total_steps):
    if name == "cosine":
        return mg.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)
    if name == "step":
        return mg.optim.lr_scheduler.StepLR(opt, step_size=max(1, total_steps // 3), gamma=0.1)
    return None


def evaluate(model, images, labels, batch_size=1000):
    """Accuracy and mean loss on (images, labels), in eval mode, without a graph
    (under --distributed each rank evaluates every N-th image and the sums are combined)."""
    rank, world = dt.rank_and_world_size()
    images, labels = images[rank::world], labels[rank::world]
    model.eval()
    correct, total_loss = 0, 0.0
    with mg.no_grad():
        for i in range(0, len(images), batch_size):
            x, y = mg.tensor(images[i:i + batch_size]), mg.tensor(labels[i:i + batch_size])
            logits = model(x)
            total_loss += F.cross_entropy(logits, y, reduction="sum").item()
            correct += int((logits.numpy().argmax(1) == y.numpy()).sum())
    model.train()
    correct, total_loss, count = dt.reduce_sum(correct, total_loss, len(images))
    return correct / count, total_loss / count


class Progress:
    """A tqdm bar when tqdm is installed, else a line every few hundred steps."""

    def __init__(self, total, desc, quiet, initial=0):
        self.bar = None
        self.quiet = quiet
        if not quiet:
            try:
                from tqdm import tqdm
                self.bar = tqdm(total=total, desc=desc, leave=True, file=sys.stdout, dynamic_ncols=True,
                                initial=initial)
            except ImportError:
                pass
        self.desc, self.n, self.total = desc, initial, total

    def update(self, **stats):
        self.n += 1
        if self.bar is not None:
            self.bar.set_postfix(stats, refresh=False)
            self.bar.update(1)
        elif not self.quiet and (self.n % 200 == 0 or self.n == self.total):
            print(f"{self.desc} {self.n}/{self.total} " + " ".join(f"{k}={v}" for k, v in stats.items()),
                  flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def train_step(net, opt, sched, x, y):
    """One training step on the batch (x, y): forward, cross-entropy, backward, then the
    optimizer's and the schedule's steps. Returns (loss · batch size, how many the logits
    got right, batch size), the terms of an epoch's running sums."""
    logits = net(x)
    loss = F.cross_entropy(logits, y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    if sched is not None:
        sched.step()
    n = len(y)
    return loss.item() * n, int((logits.numpy().argmax(1) == y.numpy()).sum()), n


def resumed_schedule(opt, schedule, lr, total_steps, steps_done):
    """The learning-rate schedule of THIS run (its --schedule over its total_steps, peak
    lr), advanced to the step a checkpoint reached, rather than the checkpoint's own: a
    cosine over a shorter run would pass its end and climb back up. The schedule is
    restarted and the steps already taken are replayed, so the lrs equal an uninterrupted
    run's."""
    for g in opt.param_groups:
        g["lr"] = g["initial_lr"] = lr
    sched = make_schedule(schedule, opt, total_steps)
    for _ in range(steps_done if sched is not None else 0):
        sched.step()
    return sched


def train(args):
    rank, world = dt.setup(args.distributed, threads=args.threads)
    mg.manual_seed(args.seed)

    x_train, y_train = load_fashion_mnist(args.data, train=True)
    x_test, y_test = load_fashion_mnist(args.data, train=False)
    if args.limit:
        x_train, y_train = x_train[:args.limit], y_train[:args.limit]
    # standardise with the training set's statistics (pixels are in [0, 1])
    mean, std = float(x_train.mean()), float(x_train.std())
    x_train = (x_train - mean) / std
    x_test = (x_test - mean) / std

    model = lenet5(args.activation)
    opt = make_optimizer(args.optimizer, model.parameters(), args.lr)
    loader = dt.data_loader((x_train, y_train), args.batch_size, shuffle=True, drop_last=True,
                            seed=args.seed)
    sched = make_schedule(args.schedule, opt, args.epochs * len(loader))
    history = {"epoch": [], "train_loss": [], "train_acc": [], "test_loss": [], "test_acc": []}
    # where training stands: `epoch` epochs done, then `step` batches of the next one
    # (with their running sums); a checkpoint records exactly this
    start_epoch, start_step, sums = 0, 0, (0, 0, 0.0)
    if args.resume:
        ckpt = dt.load_checkpoint(args.resume)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        history = {k: list(v) for k, v in ckpt["history"].items()}
        start_epoch, start_step = int(ckpt["epoch"]), int(ckpt.get("step", 0))
        if start_step and rank == 0:          # the epoch's running sums (over all ranks)
            sums = (int(ckpt["seen"]), int(ckpt["correct"]), float(ckpt["loss_sum"]))
        sched = resumed_schedule(opt, args.schedule, args.lr, args.epochs * len(loader),
                                 start_epoch * len(loader) + start_step)
        dt.print0(f"resumed from {args.resume} after epoch {start_epoch}"
                  + (f" and {start_step} steps of epoch {start_epoch + 1}" if start_step else ""))
    net = dt.wrap_model(model)          # DistributedDataParallel under --distributed

    def checkpoint(epoch, step, seen=0, correct=0, loss_sum=0.0):
        """Save the state after `epoch` whole epochs and `step` batches of the next."""
        if step and world > 1:              # mid-epoch under --distributed: sums over the ranks
            s, c, loss_sum = dt.reduce_sum(seen, correct, loss_sum)
            seen, correct = int(s), int(c)
        ckpt = {"model": model.state_dict(), "optimizer": opt.state_dict(),
                "history": {k: np.asarray(v) for k, v in history.items()}, "epoch": epoch,
                "step": step, "seen": seen, "correct": correct, "loss_sum": loss_sum}
        if sched is not None:
            ckpt["scheduler"] = sched.state_dict()
        dt.save_checkpoint(ckpt, args.save)

    dt.print0(model)
    dt.print0(f"{sum(p.size for p in model.parameters()):,} parameters; {len(x_train):,} training "
          f"images, {len(x_test):,} test images; {args.optimizer} lr={args.lr} "
          f"schedule={args.schedule} batch={args.batch_size}; {mg.get_num_threads()} threads"
          + (f" × {world} ranks" if args.distributed else ""))

    t_start, images_seen, train_time = time.perf_counter(), 0, 0.0
    for epoch in range(start_epoch, args.epochs):
        loader.set_epoch(epoch)
        first = start_step if epoch == start_epoch else 0
        bar = Progress(len(loader), f"epoch {epoch + 1}/{args.epochs}", args.quiet or rank != 0,
                       initial=first)
        seen, correct, loss_sum = sums if first else (0, 0, 0.0)
        t0, seen0 = time.perf_counter(), seen
        for step, (x, y) in enumerate(itertools.islice(loader, first, None), start=first + 1):
            if args.max_steps is not None and epoch * len(loader) + step > args.max_steps:
                return model, history                    # (tests: an interrupted run)
            batch_loss, batch_correct, n = train_step(net, opt, sched, x, y)
            seen += n
            loss_sum += batch_loss
            correct += batch_correct
            bar.update(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.4f}",
                       img_s=f"{(seen - seen0) / (time.perf_counter() - t0):.0f}")
            if args.save_every and (epoch * len(loader) + step) % args.save_every == 0 and step < len(loader):
                checkpoint(epoch, step, seen, correct, loss_sum)     # mid-epoch (the last step saves below)
        bar.close()
        epoch_time = time.perf_counter() - t0
        loss_sum, correct, seen = dt.reduce_sum(loss_sum, correct, seen)   # over the ranks
        train_time += epoch_time
        images_seen += seen - seen0
        test_acc, test_loss = evaluate(model, x_test, y_test)
        for k, v in (("epoch", epoch + 1), ("train_loss", loss_sum / seen), ("train_acc", correct / seen),
                     ("test_loss", test_loss), ("test_acc", test_acc)):
            history[k].append(v)
        dt.print0(f"epoch {epoch + 1}: train loss {loss_sum / seen:.4f} acc {correct / seen:.4f} | "
              f"test loss {test_loss:.4f} acc {test_acc:.4f} | {epoch_time:.1f} s, "
              f"{(seen - seen0) / epoch_time:.0f} images/s")
        if args.save:
            checkpoint(epoch + 1, 0)

    wall = time.perf_counter() - t_start
    if history["test_acc"]:
        best = int(np.argmax(history["test_acc"]))
        dt.print0(f"best test accuracy {history['test_acc'][best]:.4f} (epoch {history['epoch'][best]}); "
              f"wall time {wall:.1f} s; training {images_seen / max(train_time, 1e-9):.0f} images/s")
    if args.plots and rank == 0:
        from plots import write_plots
        write_plots(args.plots, model, history, x_test, y_test, mean, std, CLASSES)
        print(f"plots written to {args.plots}/")
    return model, history


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    train(parse_args())
