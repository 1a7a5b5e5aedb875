"""The recorded graph of a computation as a picture (Graphviz's DOT language).

Every op that ran on a tensor requiring grad left a node behind (`t.grad_fn`, with the
tensors it read in `grad_fn.inputs`); backward() walks exactly these nodes. `to_dot`
writes them down:

    import minigrad as mg, minigrad.nn as nn, minigrad.viz as viz
    model = nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 24 * 24, 10))
    loss = model(mg.randn(1, 1, 28, 28)).sum()
    dot = viz.to_dot(loss, params=model)      # DOT text; a str
    dot.render("graph.png")                   # needs Graphviz's `dot` (apt-get install graphviz)

In the picture, an ellipse is a tensor nobody computed (a leaf): a parameter (blue,
with its name when `params` names it) or an input (grey). A box is an op, labelled with
its name and the shape of what it produced; arrows run the way the forward went, from
what an op read to the op. The doubly outlined box is the tensor the graph was drawn
from. Draw before calling backward(): backward frees the graph (unless retain_graph=True).
"""
import os
import shutil
import subprocess

from .tensor import Tensor


class Dot(str):
    """DOT text (a str) that can render itself: `.render(path)`; in Jupyter it shows as SVG
    when Graphviz is installed."""

    def render(self, path):
        """Write the picture to `path`; its suffix picks the format: .png, .svg, .pdf (these
        run Graphviz's `dot`), or .dot / .gv (the text itself). Returns the path."""
        path = os.fspath(path)
        fmt = os.path.splitext(path)[1].lower().lstrip(".")
        if fmt in ("dot", "gv"):
            with open(path, "w", encoding="utf-8") as f:
                f.write(str(self))
            return path
        if fmt not in ("png", "svg", "pdf"):
            raise ValueError(f"viz.render(): cannot tell the format from {path!r}; "
                             f"end the path in .png, .svg, .pdf or .dot")
        data = _run_dot(str(self), fmt)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def _repr_svg_(self):
        if shutil.which("dot") is None:
            return None
        return _run_dot(str(self), "svg").decode("utf-8")


def _run_dot(text, fmt):
    exe = shutil.which("dot")
    if exe is None:
        raise RuntimeError("viz.render(): Graphviz's `dot` program is not installed "
                           "(apt-get install graphviz, or brew install graphviz); "
                           "viz.to_dot() gives the DOT text without it")
    r = subprocess.run([exe, f"-T{fmt}"], input=text.encode("utf-8"), capture_output=True,
                       timeout=120)
    if r.returncode != 0:
        raise RuntimeError(f"viz.render(): dot -T{fmt} failed: {r.stderr.decode(errors='replace')}")
    return r.stdout


def _quote(*lines):
    """A DOT string literal holding the lines (quotes and backslashes escaped)."""
    return '"' + "\\n".join(str(s).replace("\\", "\\\\").replace('"', '\\"') for s in lines) + '"'


def _shape(t):
    return str(tuple(t.shape))


def _param_names(params):
    if params is None:
        return {}
    if hasattr(params, "named_parameters"):
        params = dict(params.named_parameters())
    if not hasattr(params, "items"):
        raise TypeError(f"viz.to_dot(): params must be a Module or a dict of name -> Tensor, "
                        f"got {type(params).__name__}")
    return {id(t): name for name, t in params.items()}


def to_dot(root, params=None, rankdir="TB"):
    """The graph that produced `root` as DOT text (a `Dot`, i.e. a str with `.render`).

    Parameters
    ----------
    root : Tensor
        The result to draw from (a loss, a layer's output).
    params : Module or dict name -> Tensor, optional
        Names for the leaves (model.named_parameters() when a Module is given).
    rankdir : 'TB' (top to bottom, the default) or 'LR' (left to right).

    Nodes: one per op, labelled `name\\nshape of its output`, and one per leaf tensor,
    labelled with its parameter name (or 'input') and shape. Edges: input -> op.
    Raises RuntimeError when a backward() already freed part of the graph.
    """
    if not isinstance(root, Tensor):
        raise TypeError(f"viz.to_dot(): root must be a Tensor, got {type(root).__name__}")
    if rankdir not in ("TB", "LR"):
        raise ValueError(f"viz.to_dot(): rankdir must be 'TB' or 'LR', got {rankdir!r}")
    names = _param_names(params)
    ids = {}                          # id(tensor) -> node name, in the order first seen
    lines, edges = [], []

    def node(t):
        key = id(t)
        if key in ids:
            return ids[key], False
        ids[key] = f"n{len(ids)}"
        ctx = t._ctx
        outline = ", peripheries=2" if t is root else ""
        if ctx is not None:
            if ctx.freed:
                raise RuntimeError(
                    f"viz.to_dot(): the graph below {ctx.name} was freed by backward(); draw "
                    f"before backward(), or call backward(retain_graph=True)")
            lines.append(f"  {ids[key]} [label={_quote(ctx.name, _shape(t))}, shape=box, style=filled, "
                         f"fillcolor=\"#fff3c4\"{outline}];")
        else:
            name = names.get(key, "input" if not t.requires_grad else "tensor")
            fill = "#cfe3ff" if t.requires_grad else "#e6e6e6"
            lines.append(f"  {ids[key]} [label={_quote(name, _shape(t))}, shape=ellipse, style=filled, "
                         f"fillcolor=\"{fill}\"{outline}];")
        return ids[key], True

    node(root)
    stack = [root]                     # iterative: graphs can be very deep
    while stack:
        t = stack.pop()
        ctx = t._ctx
        if ctx is None:
            continue
        for inp in ctx.inputs:
            if not isinstance(inp, Tensor):
                continue               # strides, paddings, ...: arguments, not tensors
            name, new = node(inp)
            edges.append(f"  {name} -> {ids[id(t)]};")
            if new:
                stack.append(inp)
    body = "\n".join(lines + edges)
    return Dot(f"digraph minigrad {{\n  rankdir={rankdir};\n"
               f"  node [fontname=\"Helvetica\", fontsize=11];\n{body}\n}}\n")


def render(root, path, params=None, rankdir="TB"):
    """to_dot(root, params, rankdir).render(path): write the graph as .png/.svg/.pdf (with
    Graphviz) or .dot; returns the path."""
    return to_dot(root, params, rankdir).render(path)
