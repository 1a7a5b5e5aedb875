"""Flatten parameters into one vector and back (torch.nn.utils.parameters_to_vector and
vector_to_parameters)."""
import numpy as np

from ...tensor import Tensor


def parameters_to_vector(parameters):
    """One 1-d Tensor holding every parameter's values, in order (a copy, no graph)."""
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    if not params:
        raise ValueError("parameters_to_vector(): got no parameters")
    return Tensor(np.concatenate([np.asarray(p.data).reshape(-1) for p in params]))


def vector_to_parameters(vec, parameters):
    """Copy consecutive slices of the 1-d `vec` into the parameters, in order (in place)."""
    v = np.asarray(vec.data if isinstance(vec, Tensor) else vec)
    if v.ndim != 1:
        raise ValueError(f"vector_to_parameters(): vec must be 1-d, got shape {v.shape}")
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    total = sum(p.data.size for p in params)
    if total != v.size:
        raise ValueError(f"vector_to_parameters(): vec has {v.size} values but the parameters "
                         f"hold {total}")
    i = 0
    for p in params:
        n = p.data.size
        p.data[...] = v[i:i + n].reshape(p.data.shape)
        i += n
