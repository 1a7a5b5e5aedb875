"""minigrad.viz: the recorded graph as DOT text (checked without Graphviz) and as a picture
(when Graphviz's `dot` is installed)."""
import re
import shutil

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn
import minigrad.viz as viz


def parse(dot):
    """{node: label lines} and [(src, dst)] from our DOT text."""
    nodes = {m.group(1): m.group(2).split("\\n")
             for m in re.finditer(r'^\s+(n\d+) \[label="([^"]*)"', dot, re.M)}
    edges = re.findall(r"^\s+(n\d+) -> (n\d+);", dot, re.M)
    return nodes, edges


def test_nodes_carry_op_names_and_shapes_and_edges_follow_the_forward():
    x = mg.tensor(np.ones((2, 3)), requires_grad=True)
    w = mg.tensor(np.ones((3, 1)), requires_grad=True)
    h = x @ w
    y = (h * h).relu().sum()                       # h used twice: one node, two edges
    dot = viz.to_dot(y, params={"x": x, "w": w})
    assert dot.startswith("digraph minigrad {") and dot.rstrip().endswith("}")
    nodes, edges = parse(dot)
    by_label = {tuple(v): k for k, v in nodes.items()}
    assert sorted(nodes.values()) == sorted([["Sum", "()"], ["ReLU", "(2, 1)"], ["Mul", "(2, 1)"],
                                             ["MatMul", "(2, 1)"], ["x", "(2, 3)"], ["w", "(3, 1)"]])
    mm, mul = by_label[("MatMul", "(2, 1)")], by_label[("Mul", "(2, 1)")]
    assert edges.count((mm, mul)) == 2
    assert (by_label[("x", "(2, 3)")], mm) in edges and (by_label[("w", "(3, 1)")], mm) in edges
    assert len(edges) == 6
    assert re.search(r'label="Sum\\n\(\)".*peripheries=2', dot)      # the root is marked


def test_module_params_name_the_leaves_and_inputs_are_grey():
    mg.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    out = model(mg.randn(1, 1, 6, 6))
    nodes, edges = parse(viz.to_dot(out, params=model, rankdir="LR"))
    labels = list(nodes.values())
    for expected in (["0.weight", "(2, 1, 3, 3)"], ["0.bias", "(2,)"], ["3.weight", "(3, 32)"],
                     ["input", "(1, 1, 6, 6)"], ["Conv2d", "(1, 2, 4, 4)"], ["Linear", "(1, 3)"]):
        assert expected in labels
    assert 'fillcolor="#e6e6e6"' in viz.to_dot(out, params=model)          # the input


def test_freed_graph_and_bad_arguments():
    x = mg.tensor(np.ones(3), requires_grad=True)
    y = (x * 2).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="freed by backward"):
        viz.to_dot(y)
    with pytest.raises(TypeError, match=r"to_dot\(\): root must be a Tensor"):
        viz.to_dot(np.ones(3))
    with pytest.raises(ValueError, match="rankdir"):
        viz.to_dot(x, rankdir="BT")
    with pytest.raises(TypeError, match="params must be a Module or a dict"):
        viz.to_dot(x, params=[x])


def test_a_deep_graph_does_not_recurse():
    x = mg.tensor(np.ones(2), requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0
    nodes, edges = parse(viz.to_dot(y))
    assert len(nodes) == 5001 and len(edges) == 5000


def test_render_dot_text_without_graphviz(tmp_path, monkeypatch):
    x = mg.tensor(np.ones(3), requires_grad=True)
    y = (x * x).sum()
    path = viz.render(y, tmp_path / "g.dot")
    assert open(path).read() == viz.to_dot(y)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="apt-get install graphviz"):
        viz.render(y, tmp_path / "g.png")
    with pytest.raises(ValueError, match=r"\.png, \.svg, \.pdf or \.dot"):
        viz.render(y, tmp_path / "g.jpeg")
    assert viz.to_dot(y)._repr_svg_() is None


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz not installed")
def test_render_png_and_svg_with_graphviz(tmp_path):
    mg.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(32, 2))
    y = model(mg.randn(1, 1, 6, 6)).sum()
    png = viz.render(y, tmp_path / "g.png", params=model)
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    svg = open(viz.render(y, tmp_path / "g.svg", params=model)).read()
    assert "<svg" in svg and "0.weight" in svg and "Conv2d" in svg
