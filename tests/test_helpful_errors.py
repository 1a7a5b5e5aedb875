"""Error messages that say what to do (issue 16, item 5)."""
import re

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn
import minigrad.nn.functional as F
from minigrad.data import DataLoader


def test_conv2d_suggests_permute_for_a_channels_last_image():
    img = mg.zeros(2, 28, 28, 3)                       # NHWC, as PIL / matplotlib / TensorFlow hold it
    with pytest.raises(ValueError, match=re.escape("x.permute(0, 3, 1, 2)")) as e:
        nn.Conv2d(3, 6, 5)(img)
    assert "28 channels" in str(e.value) and "expects 3" in str(e.value)
    F.conv2d(img.permute(0, 3, 1, 2), mg.zeros(6, 3, 5, 5))              # and the advice works


def test_conv2d_suggests_permute_only_when_the_last_axis_fits():
    with pytest.raises(ValueError, match="expects 3") as e:
        F.conv2d(mg.zeros(1, 2, 5, 5), mg.zeros(4, 3, 3, 3))
    assert "permute" not in str(e.value)


def test_dataloader_with_two_arrays_names_the_fix_without_printing_them():
    X, Y = np.zeros((6000, 1, 4, 4), np.float32), np.arange(6000) % 10
    with pytest.raises(TypeError) as e:
        DataLoader(X, Y)
    msg = str(e.value)
    assert "batch_size" in msg and "ndarray of shape (6000,)" in msg and "DataLoader((X, Y)" in msg
    assert len(msg) < 300, msg


@pytest.mark.parametrize("kwargs, name", [({"seed": np.arange(1000)}, "seed"),
                                          ({"shuffle": np.ones(1000, bool)}, "shuffle"),
                                          ({"batch_size": list(range(1000))}, "batch_size")])
def test_dataloader_messages_stay_short(kwargs, name):
    with pytest.raises((TypeError, ValueError), match=name) as e:
        DataLoader((np.zeros(4),), **kwargs)
    assert len(str(e.value)) < 200, str(e.value)
