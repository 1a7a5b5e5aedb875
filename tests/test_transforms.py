"""minigrad.data.transforms: shapes, seeding, and crops/flips against plain NumPy loops."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import minigrad as mg
from minigrad.data import transforms as T


def _batch(n, c, h, w, seed=0):
    return np.random.default_rng(seed).standard_normal((n, c, h, w)).astype(np.float32)


@given(n=st.integers(1, 5), c=st.integers(1, 3), h=st.integers(1, 8), w=st.integers(1, 8),
       pad=st.integers(0, 3), data=st.data())
def test_random_crop_is_a_window_of_the_padded_image(n, c, h, w, pad, data):
    ch = data.draw(st.integers(1, h + 2 * pad))
    cw = data.draw(st.integers(1, w + 2 * pad))
    seed = data.draw(st.integers(0, 2**32 - 1))
    x = _batch(n, c, h, w, seed % 97)
    y = T.RandomCrop((ch, cw), padding=pad, fill=-7.0, generator=np.random.default_rng(seed))(x)
    assert y.shape == (n, c, ch, cw) and y.dtype == x.dtype and y.flags.c_contiguous
    # the same draws, replayed: the window of image k starts at (top[k], left[k])
    g = np.random.default_rng(seed)
    top = g.integers(0, h + 2 * pad - ch + 1, size=n)
    left = g.integers(0, w + 2 * pad - cw + 1, size=n)
    for k in range(n):
        padded = np.full((c, h + 2 * pad, w + 2 * pad), -7.0, np.float32)
        padded[:, pad:pad + h, pad:pad + w] = x[k]
        np.testing.assert_array_equal(y[k], padded[:, top[k]:top[k] + ch, left[k]:left[k] + cw])


def test_random_crop_covers_every_shift_and_keeps_the_input():
    x = np.arange(2 * 1 * 4 * 4, dtype=np.float64).reshape(2, 1, 4, 4)
    before = x.copy()
    crop = T.RandomCrop(4, padding=1, generator=np.random.default_rng(0))
    seen = set()
    for _ in range(200):
        y = crop(x)
        for k in range(2):
            # the position of x[k, 0, 0, 0] in the crop tells the shift (-1, 0 or 1 per axis)
            i, j = np.argwhere(y[k, 0] == x[k, 0, 1, 1])[0]
            seen.add((int(i) - 1, int(j) - 1))
    assert seen == {(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1)}
    np.testing.assert_array_equal(x, before)


@given(n=st.integers(1, 6), p=st.sampled_from([0.0, 0.3, 0.5, 1.0]), seed=st.integers(0, 2**32 - 1))
def test_horizontal_flip_matches_numpy(n, p, seed):
    x = _batch(n, 2, 3, 5, seed % 89)
    y = T.RandomHorizontalFlip(p, generator=np.random.default_rng(seed))(x)
    flip = np.random.default_rng(seed).random(n) < p
    for k in range(n):
        np.testing.assert_array_equal(y[k], x[k, :, :, ::-1] if flip[k] else x[k])
    if p == 0.0:
        np.testing.assert_array_equal(y, x)
    if p == 1.0:
        np.testing.assert_array_equal(y, x[..., ::-1])


def test_flip_probability_is_per_image():
    x = _batch(4000, 1, 1, 2)
    y = T.RandomHorizontalFlip(0.3, generator=np.random.default_rng(5))(x)
    flipped = (y[:, 0, 0, 0] != x[:, 0, 0, 0]).mean()
    assert 0.27 < flipped < 0.33


def test_single_image_in_single_image_out():
    x = _batch(1, 3, 6, 6)[0]
    for t in (T.RandomCrop(4, padding=1), T.RandomHorizontalFlip(), T.Normalize([0, 1, 2], [1, 2, 3])):
        assert t(x).shape[0] == 3 and t(x).ndim == 3


def test_normalize_per_channel():
    x = _batch(3, 2, 4, 4)
    y = T.Normalize([0.5, -1.0], [2.0, 0.25])(x)
    np.testing.assert_allclose(y[:, 0], (x[:, 0] - 0.5) / 2.0, rtol=1e-6)
    np.testing.assert_allclose(y[:, 1], (x[:, 1] + 1.0) / 0.25, rtol=1e-6)
    assert y.dtype == np.float32
    np.testing.assert_allclose(T.Normalize(0.5, 2.0)(x), (x - 0.5) / 2.0, rtol=1e-6)


def test_to_tensor_scales_uint8_and_adds_the_channel_axis():
    u = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)        # (1, 2, 2): one greyscale image
    y = T.ToTensor()(u)
    assert y.shape == (1, 1, 2, 2) and y.dtype == np.float32
    np.testing.assert_allclose(y[0, 0], [[0, 1], [0.2, 0.4]], rtol=1e-6)
    assert T.ToTensor()(u[0]).shape == (1, 2, 2)
    f = _batch(2, 1, 3, 3)
    np.testing.assert_array_equal(T.ToTensor()(f), f)


def test_compose_applies_in_order_and_seeding_reproduces():
    x = _batch(16, 1, 8, 8)
    tf = T.Compose([T.RandomCrop(8, padding=2), T.RandomHorizontalFlip(), T.Normalize(0.1, 0.5)])
    mg.manual_seed(3)
    a = tf(x)
    mg.manual_seed(3)
    b = tf(x)
    mg.manual_seed(4)
    c = tf(x)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # Compose = the transforms one after the other, with the same draws
    mg.manual_seed(3)
    manual = T.Normalize(0.1, 0.5)(T.RandomHorizontalFlip()(T.RandomCrop(8, padding=2)(x)))
    np.testing.assert_array_equal(a, manual)
    assert "RandomCrop" in repr(tf)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="RandomCrop"):
        T.RandomCrop(10)(np.zeros((1, 1, 4, 4), np.float32))
    with pytest.raises(ValueError, match="padding"):
        T.RandomCrop(4, padding=-1)
    with pytest.raises(TypeError, match="size"):
        T.RandomCrop("4")
    with pytest.raises(ValueError, match="shape"):
        T.RandomHorizontalFlip()(np.zeros((4, 4), np.float32))
    with pytest.raises(TypeError, match="uint8"):
        T.RandomHorizontalFlip()(np.zeros((1, 1, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="p must"):
        T.RandomHorizontalFlip(1.5)
    with pytest.raises(ValueError, match="std"):
        T.Normalize(0.0, 0.0)
    with pytest.raises(ValueError, match="3 values but the input has 2 channels"):
        T.Normalize([0, 0, 0], [1, 1, 1])(np.zeros((1, 2, 2, 2), np.float32))
    with pytest.raises(TypeError, match="generator"):
        T.RandomCrop(4, generator=3)
    with pytest.raises(TypeError, match="callable"):
        T.Compose([3])


def test_tensors_are_accepted():
    x = _batch(2, 1, 4, 4)
    np.testing.assert_array_equal(T.Normalize(0.0, 1.0)(mg.tensor(x)), x)
    assert T.RandomCrop(3)(mg.tensor(x)).shape == (2, 1, 3, 3)
