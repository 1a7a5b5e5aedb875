"""The shape of the code a reader relies on: modules import in layers without cycles, the
ops never import tensor.py, and every Tensor method is defined where go-to-definition
finds it (tensor.py or a base class), not installed at run time."""
import ast
import inspect
import pathlib

import minigrad as mg
from minigrad.tensor import Tensor
from minigrad.tensor_base import TensorBase

ROOT = pathlib.Path(mg.__file__).resolve().parent


def _module_name(path):
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name):
    rel = ROOT.parent / name.replace(".", "/")
    return rel.with_suffix(".py").exists() or (rel / "__init__.py").exists()


def import_graph():
    """{module: the minigrad modules it imports at module level}."""
    graph = {}
    for path in ROOT.rglob("*.py"):
        name = _module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[:len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if target.split(".")[0] == "minigrad":
                    for alias in node.names:
                        sub = f"{target}.{alias.name}"
                        deps.add(sub if _is_module(sub) else target)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.split(".")[0] == "minigrad")
        graph[name] = deps
    return graph


def cycles(graph):
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles_at_module_level():
    graph = import_graph()
    assert "minigrad.ops.conv" in graph and "minigrad.tensor" in graph["minigrad"]
    assert cycles(graph) == []


def test_cycle_finder_can_fail():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_layers_tensor_base_autograd_ops_tensor():
    graph = import_graph()
    assert not {d for d in graph["minigrad.tensor_base"]}            # imports no minigrad module
    assert graph["minigrad.autograd"] <= {"minigrad.hooks", "minigrad.tensor_base"}
    for name, deps in graph.items():
        if name.startswith("minigrad.ops"):
            assert "minigrad.tensor" not in deps, f"{name} imports minigrad.tensor"
    assert {"minigrad.ops.elementwise", "minigrad.ops.reduce", "minigrad.ops.shape"} <= graph["minigrad.tensor"]


def test_no_function_imports_tensor_py_lazily():
    for path in ROOT.rglob("*.py"):
        if path.parent.name != "ops" and path.name not in ("autograd.py", "tensor_base.py", "hooks.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("tensor") \
                    and node.level:
                raise AssertionError(f"{path.name} imports tensor.py (line {node.lineno})")


def test_every_tensor_method_is_defined_in_a_class_body():
    """Nothing is attached to Tensor at run time: each public attribute is in the __dict__
    of Tensor or a base class, and its source is that class's module."""
    for name in dir(Tensor):
        if name.startswith("__") and name not in ("__add__", "__getitem__", "__eq__", "__matmul__"):
            continue
        owner = next(c for c in Tensor.__mro__ if name in c.__dict__)
        attr = owner.__dict__[name]
        fn = attr.fget if isinstance(attr, property) else getattr(attr, "__func__", attr)
        if not callable(fn) or not hasattr(fn, "__code__"):
            continue
        assert fn.__qualname__.startswith(owner.__name__ + "."), (name, fn.__qualname__)
        assert inspect.getsourcefile(fn) == inspect.getsourcefile(owner), name
    assert issubclass(Tensor, TensorBase)
    assert "sum" in Tensor.__dict__ and "__add__" in Tensor.__dict__


def test_ops_return_tensors_with_methods():
    x = mg.tensor([1.0, -2.0], requires_grad=True)
    y = mg.relu(x) + 1
    assert type(y) is Tensor and y.grad_fn.name == "Add"
    y.sum().backward()
    assert type(x.grad) is Tensor
