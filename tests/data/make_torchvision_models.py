"""Write tests/data/torchvision_models.json: for each torchvision model that minigrad.models
mirrors, its parameter count and its state_dict keys with their shapes, in order.

    python tests/data/make_torchvision_models.py      # needs torch and torchvision

tests/test_models.py compares minigrad's models against this file without importing torch.
Models are built with torchvision's defaults (1000 classes, RGB), without weights.
"""
import json
import os

import torch
import torch.library

torch.library.register_fake = lambda *a, **k: (lambda f: f)   # torchvision 0.28 with torch 2.13
import torchvision  # noqa: E402
from torchvision import models as tvm  # noqa: E402

BUILDERS = {
    "alexnet": lambda: tvm.alexnet(),
    "vgg11": lambda: tvm.vgg11(),
    "vgg16": lambda: tvm.vgg16(),
    "vgg11_bn": lambda: tvm.vgg11_bn(),
    "vgg16_bn": lambda: tvm.vgg16_bn(),
    "googlenet": lambda: tvm.googlenet(aux_logits=True, init_weights=False),
    "googlenet_noaux": lambda: tvm.googlenet(aux_logits=False, init_weights=False),
    "resnet18": lambda: tvm.resnet18(),
    "resnet34": lambda: tvm.resnet34(),
    "resnet50": lambda: tvm.resnet50(),
    "densenet121": lambda: tvm.densenet121(),
    "mobilenet_v2": lambda: tvm.mobilenet_v2(),
}


def describe(model):
    sd = model.state_dict()
    return {
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "state_dict": [[k, list(v.shape)] for k, v in sd.items()],
    }


def dumps(out):
    """JSON with one state_dict entry per line, so that diffs of the file stay readable."""
    models = []
    for name, m in out["models"].items():
        entries = ",\n    ".join(json.dumps(e) for e in m["state_dict"])
        models.append(f'  {json.dumps(name)}: {{"num_parameters": {m["num_parameters"]}, '
                      f'"state_dict": [\n    {entries}\n  ]}}')
    return (f'{{"torchvision": {json.dumps(out["torchvision"])}, "torch": {json.dumps(out["torch"])},\n'
            f' "models": {{\n' + ",\n".join(models) + "\n}}")


def main():
    out = {"torchvision": torchvision.__version__, "torch": torch.__version__, "models": {}}
    for name, build in BUILDERS.items():
        out["models"][name] = describe(build())
        print(f"{name}: {out['models'][name]['num_parameters']:,} parameters, "
              f"{len(out['models'][name]['state_dict'])} state_dict entries")
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torchvision_models.json")
    with open(path, "w") as f:
        f.write(dumps(out) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
