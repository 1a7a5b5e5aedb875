"""Learning-rate schedules (torch.optim.lr_scheduler's StepLR and CosineAnnealingLR).

A scheduler sets each param group's 'lr' at construction (epoch 0) and on every
step(); call optimizer.step() first, then scheduler.step(), once per epoch.
"""
import math
import numbers

from .optimizer import Optimizer


class LRScheduler:
    """Base class of the schedules: sets every param group's 'lr' to get_lr() at
    construction and on each step(). last_epoch=-1 starts a new schedule."""

    def __init__(self, optimizer, last_epoch=-1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}(): expected an Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        if last_epoch == -1:
            for g in optimizer.param_groups:
                g.setdefault("initial_lr", g["lr"])
        else:
            for i, g in enumerate(optimizer.param_groups):
                if "initial_lr" not in g:
                    raise KeyError(f"param 'initial_lr' is not specified in param_groups[{i}] "
                                   f"when resuming an optimizer")
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def get_lr(self):
        """The learning rates of step last_epoch, one per param group (subclasses define it)."""
        raise NotImplementedError

    def get_last_lr(self):
        """The learning rates set by the last step(), one per param group."""
        return list(self._last_lr)

    def step(self):
        """Advance the schedule by one and set the param groups' 'lr'."""
        self.last_epoch += 1
        lrs = self.get_lr()
        for g, lr in zip(self.optimizer.param_groups, lrs):
            g["lr"] = lr
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self):
        """Everything but the optimizer (numbers and lists: mg.save can write it)."""
        return {k: (list(v) if isinstance(v, (list, tuple)) else v)
                for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict):
        """Restore the schedule's position and settings saved by state_dict()."""
        unknown = set(state_dict) - set(self.__dict__)
        if unknown:
            raise ValueError(f"{type(self).__name__}.load_state_dict(): unknown keys {sorted(unknown)}")
        for k, v in state_dict.items():
            if hasattr(v, "item") and getattr(v, "ndim", 1) == 0:
                v = v.item()
            elif hasattr(v, "tolist"):
                v = v.tolist()
            self.__dict__[k] = list(v) if isinstance(v, tuple) else v


class StepLR(LRScheduler):
    """lr = base_lr · gamma^⌊epoch / step_size⌋ (applied as PyTorch does: multiply the
    current lr by gamma at every multiple of step_size)."""

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        if not isinstance(step_size, numbers.Integral) or isinstance(step_size, bool) or step_size < 1:
            raise ValueError(f"StepLR(): step_size must be a positive int, got {step_size!r}")
        if not isinstance(gamma, numbers.Real) or not gamma >= 0:
            raise ValueError(f"StepLR(): gamma must be a number ≥ 0, got {gamma!r}")
        self.step_size, self.gamma = int(step_size), float(gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        lrs = [g["lr"] for g in self.optimizer.param_groups]
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return lrs
        return [lr * self.gamma for lr in lrs]


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base_lr − eta_min) · (1 + cos(π · epoch / T_max)) / 2 (the closed form;
    past T_max it continues the cosine, as PyTorch's does)."""

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        if not isinstance(T_max, numbers.Integral) or isinstance(T_max, bool) or T_max < 1:
            raise ValueError(f"CosineAnnealingLR(): T_max must be a positive int, got {T_max!r}")
        if not isinstance(eta_min, numbers.Real) or not eta_min >= 0:
            raise ValueError(f"CosineAnnealingLR(): eta_min must be a number ≥ 0, got {eta_min!r}")
        self.T_max, self.eta_min = int(T_max), float(eta_min)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        c = (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
        return [self.eta_min + (base - self.eta_min) * c for base in self.base_lrs]
