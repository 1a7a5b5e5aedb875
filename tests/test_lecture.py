"""examples/lecture/: every script runs, and its numbers are the notes' numbers or agree with
an independent NumPy computation (never only with themselves)."""
import importlib.util
import itertools
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
LECTURE = ROOT / "examples" / "lecture"
SCRIPTS = sorted(p.name for p in LECTURE.glob("*.py") if not p.name.startswith("_"))


def load(name):
    spec = importlib.util.spec_from_file_location(f"lecture_{name}", LECTURE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def correlate_valid(x, w, stride=1):
    """NumPy: y[i, j] = Σ_p Σ_q x[i·S + p, j·S + q] · w[p, q]."""
    F_ = w.shape[0]
    n = (x.shape[0] - F_) // stride + 1
    return np.array([[np.sum(x[i * stride:i * stride + F_, j * stride:j * stride + F_] * w)
                      for j in range(n)] for i in range(n)])


def test_every_topic_is_tested_here():
    tested = {"x_kernel.py", "correlation_vs_convolution.py", "output_sizes.py", "keras_tf_cells.py",
              "weight_gradient.py", "pooling.py", "stride2_backward.py", "module_backward.py",
              "animate_conv.py", "graph.py"}
    assert set(SCRIPTS) <= tested, set(SCRIPTS) - tested


@pytest.mark.parametrize("script", [s for s in SCRIPTS if s not in ("animate_conv.py", "graph.py")])
def test_script_runs_and_its_docstring_names_the_topic(script):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, str(LECTURE / script)], capture_output=True, text=True,
                       env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip()
    doc = load(script[:-3]).__doc__
    assert doc and "seed" not in doc.lower() and f"python examples/lecture/{script}" in doc


def test_x_kernel_gives_the_notes_result():
    m = load("x_kernel")
    r = m.main()
    np.testing.assert_array_equal(r["result"], [[4, 3, 4], [2, 4, 3], [2, 3, 4]])     # the notes
    np.testing.assert_array_equal(r["result"], correlate_valid(m.IMAGE, m.X_KERNEL))
    np.testing.assert_array_equal(r["three_channels"], [[12, 9, 12], [6, 12, 9], [6, 9, 12]])


def test_correlation_vs_convolution():
    m = load("correlation_vs_convolution")
    r = m.main()
    np.testing.assert_array_equal(r["corr1d"], [10 * 1 + 20 * 2, 10 * 2 + 20 * 3])
    padded = np.pad(m.F_MAGIC, 1)
    np.testing.assert_array_equal(r["correlation"], correlate_valid(padded, m.W_MAGIC))
    np.testing.assert_array_equal(r["convolution"], r["reference"])
    np.testing.assert_array_equal(r["convolution"], correlate_valid(padded, m.W_MAGIC[::-1, ::-1]))
    assert r["convolution"][2, 2] == 555
    assert not np.array_equal(r["correlation"], r["convolution"])


def test_output_sizes_are_the_notes():
    r = load("output_sizes").main()
    assert [s[3] for s in r["sizes"]] == [5, 3, 7, 9, 7, 9, 7, 32]          # the notes' numbers
    for oh, ow, by_formula, notes in r["sizes"]:
        assert oh == ow == by_formula == notes
    assert r["params_760"] == 760 and r["layer_out"] == (1, 10, 32, 32)
    assert r["instance_out"] == (2, 16, 28, 28)
    assert r["instance_weight"] == (16, 3, 3, 3) and r["instance_bias"] == (16,)


def test_keras_and_tf_cells_give_the_notes_shapes():
    r = load("keras_tf_cells").main()
    assert r[("Conv2D", 1, "valid")] == (1, 28, 28, 4)
    assert r[("Conv2D", 1, "same")] == (1, 32, 32, 4)
    assert r[("Conv2D", 2, "same")] == (1, 16, 16, 4)
    assert r["kernel"] == (5, 5, 3, 4) and r["bias"] == (4,)
    assert r[("tf.nn.conv2d", 1)] == (1, 28, 28, 4) and r["plus_bias"] == (1, 28, 28, 4)
    assert r[("tf.nn.conv2d", 2)] == (1, 14, 14, 4)
    assert r["max_difference"] == 0


@pytest.mark.parametrize("delta", [None, np.array([[0.0, 1.0], [0.0, 0.0]])])
def test_weight_gradient_term_by_term(delta):
    m = load("weight_gradient")
    δ = m.DELTA if delta is None else delta
    r = m.main(δ)
    np.testing.assert_allclose(r["dw"], r["dw_by_hand"], rtol=1e-12)
    np.testing.assert_allclose(r["dw"], correlate_valid(m.X, δ), rtol=1e-12)   # x ⋆ δ
    assert r["db"] == pytest.approx(δ.sum())
    full = np.zeros((3, 3))                        # ∂L/∂x scattered output by output
    for i, j in itertools.product(range(2), range(2)):
        full[i:i + 2, j:j + 2] += δ[i, j] * m.W
    np.testing.assert_allclose(r["dx"], full, rtol=1e-12)
    np.testing.assert_allclose(r["dx_by_hand"], full, rtol=1e-12)


def test_pooling_of_the_4x4_slice():
    m = load("pooling")
    r = m.main()
    blocks = m.SLICE.reshape(2, 2, 2, 2).transpose(0, 2, 1, 3).reshape(2, 2, 4)
    np.testing.assert_array_equal(r["max"], blocks.max(-1))
    np.testing.assert_array_equal(r["max"], [[6, 8], [3, 4]])
    np.testing.assert_array_equal(r["avg"], blocks.mean(-1))
    # the notes print 4.25 5.25 / 2 2: three of the four windows agree
    assert r["avg"][0, 1] == m.NOTES_AVG[0][1] and list(r["avg"][1]) == m.NOTES_AVG[1]
    assert r["avg"][0, 0] == 3.25
    up = np.zeros((4, 4))
    for i, j in itertools.product(range(2), range(2)):
        win = m.SLICE[2 * i:2 * i + 2, 2 * j:2 * j + 2]
        p, q = np.unravel_index(win.argmax(), (2, 2))
        up[2 * i + p, 2 * j + q] = r["delta"][i, j]
    np.testing.assert_array_equal(r["max_grad"], up)
    np.testing.assert_array_equal(r["avg_grad"], np.kron(r["delta"], np.ones((2, 2))) / 4)


def test_stride2_backward_steps_equal_backward():
    m = load("stride2_backward")
    for steps, dx in m.main():
        np.testing.assert_allclose(steps["dx"], dx, rtol=1e-12, atol=1e-12)
    s, _ = m.main()[0]
    assert s["dilated"].shape == (3, 3) and s["padded"].shape == (7, 7)   # 2×2 δ, 5×5 input


@pytest.mark.parametrize("n, F_, S, P, D", [
    (n, F_, S, P, D) for n, F_, S, P, D in itertools.product((5, 6, 7), (2, 3), (1, 2, 3), (0, 1, 2, 3), (1, 2))
    if n + 2 * P >= D * (F_ - 1) + 1])
def test_stride_steps_for_other_strides_paddings_dilations(n, F_, S, P, D):
    m = load("stride2_backward")
    rng = np.random.default_rng(n * 1000 + F_ * 100 + S * 10 + P + D)
    x, w = rng.standard_normal((n, n)), rng.standard_normal((F_, F_))
    OH = (n + 2 * P - D * (F_ - 1) - 1) // S + 1
    steps, dx = m.run_case(x, w, rng.standard_normal((OH, OH)), S, P, D, verbose=False)
    np.testing.assert_allclose(steps["dx"], dx, rtol=1e-10, atol=1e-12)


def test_module_backward_matches_autograd():
    r = load("module_backward").main()
    for name, g in r["by_hand"].items():
        np.testing.assert_allclose(g, r["autograd"][name], rtol=1e-5, atol=1e-7, err_msg=name)
    np.testing.assert_allclose(r["dx_by_hand"], r["dx_autograd"], rtol=1e-5, atol=1e-7)


def test_graph_script_draws_lenets_ops_with_their_shapes(tmp_path):
    m = load("graph")
    assert "seed" not in m.__doc__.lower()
    out, dot = m.main(["--out", str(tmp_path / "g.dot")])
    assert open(out).read() == dot
    for label in ("Conv2d\\n(1, 6, 28, 28)", "MaxPool2d\\n(1, 6, 14, 14)", "Conv2d\\n(1, 16, 10, 10)",
                  "MaxPool2d\\n(1, 16, 5, 5)", "Reshape\\n(1, 400)", "Linear\\n(1, 10)",
                  "0.weight\\n(6, 1, 5, 5)", "input\\n(1, 1, 28, 28)"):
        assert label in dot, label
    if shutil.which("dot"):
        png, _ = m.main(["--out", str(tmp_path / "g.png")])
        assert open(png, "rb").read(4) == b"\x89PNG"


def test_animation_frames_show_minigrads_numbers(tmp_path):
    pytest.importorskip("matplotlib")
    PIL = pytest.importorskip("PIL.Image")
    m = load("animate_conv")
    assert "seed" not in m.__doc__.lower()
    r = m.main(["--out", str(tmp_path), "--png-frames", "1", "--ms", "50"])
    n_fwd, n_bwd = r["n_frames"]
    assert (n_fwd, n_bwd) == (9, 25)                 # 5×5 padded by 1, stride 2 -> 3×3; ∂L/∂x 5×5
    for i, j, numpy_sum, ours in r["forward"] + r["backward"]:
        assert numpy_sum == pytest.approx(ours, abs=1e-12), (i, j)
    xp = np.pad(load("x_kernel").IMAGE, 1)
    np.testing.assert_array_equal(r["y"], correlate_valid(xp, load("x_kernel").X_KERNEL, stride=2))
    with PIL.open(tmp_path / "conv_forward.gif") as g:
        assert g.n_frames == 9
    with PIL.open(tmp_path / "conv_backward.gif") as g:
        assert g.n_frames == 25
    assert (tmp_path / "conv_backward_frame12.png").exists()


def test_animation_frame_checks_for_stride_and_dilation():
    pytest.importorskip("matplotlib")
    m = load("animate_conv")
    plt = m._pyplot()
    x = np.arange(16.0).reshape(4, 4)
    w = np.array([[1.0, -2.0], [0.5, 3.0]])
    for S, P, D in ((2, 1, 1), (1, 0, 2), (3, 2, 2)):
        frames, y, checks = m.forward_frames(plt, x, w, S, P, D)
        assert len(frames) == y.size
        δ = np.arange(1.0, y.size + 1).reshape(y.shape)
        frames, dx, bchecks = m.backward_frames(plt, x, w, δ, S, P, D)
        assert len(frames) == 16 and dx.shape == (4, 4)
        for *_, numpy_sum, ours in checks + bchecks:
            assert numpy_sum == pytest.approx(ours, abs=1e-12)
