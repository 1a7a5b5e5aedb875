"""examples/plots.py: it does something when run (a usage error without a checkpoint, the three
PNGs with one), and the feature-map figure uses its space (large thumbnails, no empty rows)."""
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import minigrad as mg

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = "/usr/share/datasets/fashion-mnist"
sys.path.insert(0, str(ROOT / "examples"))
import lenet  # noqa: E402

pytest.importorskip("matplotlib")
import plots  # noqa: E402


def test_without_a_checkpoint_it_says_how_to_call_it():
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "plots.py")], capture_output=True,
                       text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert r.returncode == 2
    assert "usage: plots.py" in r.stderr and "checkpoint" in r.stderr


def test_feature_map_figure_is_filled_with_large_thumbnails():
    mg.manual_seed(0)
    model = lenet.lenet5()
    x = np.random.default_rng(0).standard_normal((3, 1, 28, 28)).astype(np.float32)
    plt = plots._pyplot()
    fig = plots.feature_map_figure(plt, model, x, np.array([0, 1, 2]), 0.3, 0.35, lenet.CLASSES, index=1)
    try:
        fig.canvas.draw()
        W, H = fig.get_size_inches()
        images = [a for a in fig.get_axes() if a.get_images() and a.get_images()[0].get_array().ndim == 2
                  and a.get_images()[0].get_array().shape[0] > 1 and a.get_label() != "<colorbar>"]
        shapes = sorted({a.get_images()[0].get_array().shape for a in images})
        assert shapes == [(5, 5), (10, 10), (14, 14), (28, 28)]       # pool2, conv2, pool1, conv1 + input
        assert len(images) == 1 + 6 + 6 + 16 + 16
        boxes = [a.get_position() for a in images]                     # figure fractions
        widths_in = [b.width * W for b in boxes]
        assert min(widths_in) >= 1.1, min(widths_in)                   # each map at least 1.1 inch wide
        area = sum(b.width * b.height for b in boxes)
        assert area >= 0.45, area                                      # the maps cover ≥ 45 % of the page
        # no empty band: every tenth of the height and of the width holds part of some map
        for lo in np.arange(0.0, 0.9, 0.1):
            assert any(b.y0 < lo + 0.1 and b.y1 > lo for b in boxes), f"empty rows at {lo:.1f}"
            assert any(b.x0 < lo + 0.1 and b.x1 > lo for b in boxes), f"empty columns at {lo:.1f}"
    finally:
        plt.close(fig)


@pytest.mark.skipif(not os.path.isdir(DATA), reason="Fashion-MNIST not installed")
def test_plots_from_a_checkpoint(tmp_path):
    mg.manual_seed(0)
    model = lenet.lenet5()
    history = {"epoch": np.array([1, 2]), "train_loss": np.array([0.6, 0.4]),
               "train_acc": np.array([0.8, 0.85]), "test_loss": np.array([0.5, 0.45]),
               "test_acc": np.array([0.82, 0.84])}
    ckpt = tmp_path / "ck.npz"
    mg.save({"model": model.state_dict(), "history": history, "epoch": 2}, str(ckpt))
    written = plots.main([str(ckpt), "--out", str(tmp_path / "out"), "--data", DATA, "--image", "3"])
    assert [os.path.basename(p) for p in written] == ["curves.png", "filters.png", "feature_maps.png"]
    for p in written:
        assert open(p, "rb").read(4) == b"\x89PNG"
    with pytest.raises(SystemExit):
        plots.main([str(ckpt), "--data", DATA, "--image", "10000"])
