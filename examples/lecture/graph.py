"""The graph autograd records, drawn as a picture: every op of a LeNet-5 forward pass on
one image, with the shape each op produced, and the parameters feeding in.

    python examples/lecture/graph.py                 # writes plots/lecture/lenet_graph.png
    python examples/lecture/graph.py --out graph.svg

The boxes are ops (Conv2d, ReLU, MaxPool2d, Reshape, Linear, CrossEntropy) in the order
the forward ran them; the blue ellipses the learned parameters (named as in
model.state_dict()); the grey one the input image. backward() walks this picture from
the bottom (the loss) to the top, and the notes' two rules of the convolution lecture —
∂L/∂w = x ⋆ δ and ∂L/∂x = pad(dilate(δ)) ⋆ flip(w) — are what each Conv2d box does on
the way. Rendering needs Graphviz's `dot` (apt-get install graphviz); without it the
DOT text is written instead (a .dot file any Graphviz viewer opens).
"""
import argparse
import os
import shutil
import sys

import minigrad as mg
import minigrad.nn.functional as F
import minigrad.viz as viz

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "examples"))
from lenet import lenet5  # noqa: E402  (the main job's LeNet-5)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.path.join(ROOT, "plots", "lecture", "lenet_graph.png"),
                   help="picture to write (.png, .svg, .pdf, or .dot for the text)")
    args = p.parse_args(argv)
    mg.manual_seed(0)
    model = lenet5()
    loss = F.cross_entropy(model(mg.randn(1, 1, 28, 28)), mg.tensor([3]))
    dot = viz.to_dot(loss, params=model)
    out = args.out
    if shutil.which("dot") is None and not out.endswith((".dot", ".gv")):
        out = os.path.splitext(out)[0] + ".dot"
        print("Graphviz is not installed (apt-get install graphviz): writing the DOT text instead",
              file=sys.stderr)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    dot.render(out)
    print(f"{dot.count('shape=box')} ops, {dot.count('shape=ellipse')} leaves -> {out}")
    return out, dot


if __name__ == "__main__":
    main()
