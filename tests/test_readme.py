"""README's autograd example runs as written and prints what its comment says."""
import pathlib
import re

import numpy as np

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def test_readme_autograd_example_runs(capsys):
    text = README.read_text()
    code = re.search(r"## Autograd in ten lines\n\n```python\n(.*?)```", text, re.S).group(1)
    assert len(code.strip().splitlines()) <= 12
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert abs(scope["loss"].item() - 0.125) < 1e-7
    np.testing.assert_allclose(scope["w"].numpy(), [[0.5 - 0.15], [-0.25 - 0.2]], rtol=1e-6)


def test_readme_cnn_example_runs(tmp_path, monkeypatch):
    text = README.read_text()
    code = re.search(r"## A CNN in minigrad\n\n```python\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert np.isfinite(scope["loss"].item()) and (tmp_path / "ckpt.npz").exists()
    assert all(p.grad is not None for p in scope["model"].parameters())


def test_readme_test_command_is_the_one_ci_runs():
    text = README.read_text()
    block = re.search(r"\*\*Install and run the whole test suite\*\*:\n\n```bash\n(.*?)\n```", text, re.S)
    ci = (README.parent / ".ci" / "run").read_text()
    assert block and block.group(1) in ci.splitlines()


def test_readme_lists_every_flag_of_the_training_script():
    source = (README.parent / "examples" / "lenet.py").read_text()
    flags = set(re.findall(r'add_argument\("(--[a-z-]+)"', source))
    hidden = set(re.findall(r'add_argument\("(--[a-z-]+)"[^\n]*help=argparse\.SUPPRESS', source))
    assert flags, "no flags found in examples/lenet.py"
    text = README.read_text()
    missing = sorted(f for f in flags - hidden if f"`{f}" not in text)
    assert not missing, f"README.md does not describe {missing}"


def test_readme_second_derivative_example_runs(capsys):
    text = README.read_text()
    code = re.search(r"again \(`backward\(create_graph=True\)`.*?```python\n(.*?)```", text, re.S).group(1)
    scope = {}
    exec(compile("import minigrad as mg\n" + code, "README.md", "exec"), scope)
    np.testing.assert_allclose(scope["g"].numpy(), [3.0, 12.0])
    np.testing.assert_allclose(scope["h"].numpy(), [6.0, 12.0])
    assert scope["g"].requires_grad and not scope["h"].requires_grad
    assert capsys.readouterr().out.strip() == "tensor([ 3., 12.], grad_fn=<MulBackward>) tensor([ 6., 12.])"
