"""Regenerate tests/data/torch_golden.npz: run each PyTorch-style script of
tests/torch_scripts/ with real PyTorch and store its results, keyed "script/name".

    python tests/data/make_torch_golden.py

tests/test_compat.py runs the same scripts on minigrad (through `python -m minigrad.run`)
and compares. Needs torch (a development check; the tests themselves do not)."""
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.join(os.path.dirname(HERE), "torch_scripts")
OUT = os.path.join(HERE, "torch_golden.npz")


def main():
    import torch                                  # fail early and clearly without it
    results = {"__torch_version__": np.array(torch.__version__)}
    names = sorted(f for f in os.listdir(SCRIPTS) if f.endswith(".py"))
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            out = os.path.join(tmp, name + ".npz")
            env = dict(os.environ, PYTHONPATH="")          # real torch, no minigrad on the path
            subprocess.run([sys.executable, os.path.join(SCRIPTS, name), out], check=True, env=env)
            with np.load(out) as f:
                for k in f.files:
                    results[f"{name[:-3]}/{k}"] = f[k]
    np.savez_compressed(OUT, **results)
    print(f"wrote {OUT}: {len(results) - 1} arrays from {len(names)} scripts, "
          f"{os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()
