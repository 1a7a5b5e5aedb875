"""The global random generator behind mg.randn/rand, nn.init and dropout."""
import numpy as np

_rng = np.random.default_rng()


def manual_seed(seed):
    """Seed minigrad's global generator (like torch.manual_seed). Returns the generator."""
    global _rng
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"manual_seed(): seed must be an int, got {type(seed).__name__}")
    _rng = np.random.default_rng(int(seed))
    return _rng


def generator():
    """minigrad's global NumPy Generator (what randn, init and Dropout draw from)."""
    return _rng
