"""The package's structure: no module imports another that imports it back,
counting imports inside functions too (a deferred import hides a cycle, it does
not remove it), except the cycles listed here with their reason."""
import ast
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PKG_DIR = os.path.join(ROOT, "driver", "ctrain")

#: cycles still in the package (each a set of modules), to be removed by their
#: owners; a new cycle, or one of these growing, fails the test
KNOWN_CYCLES = [
    # the registry (datasets) imports the readers; data.get_dataset looks names up in it
    {"ctrain.data", "ctrain.data_cifar", "ctrain.data_user", "ctrain.datasets"},
    # `ctrain sweep` reuses cli's train options; cli dispatches to sweep
    {"ctrain.cli", "ctrain.sweep"},
]


def _modules():
    """{dotted name: file} of every module of the package."""
    out = {}
    for folder, _, files in os.walk(PKG_DIR):
        for f in files:
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(folder, f), os.path.dirname(PKG_DIR))[:-3].split(os.sep)
                out[".".join(rel[:-1] if rel[-1] == "__init__" else rel)] = os.path.join(folder, f)
    return out


def import_graph():
    """{module: the package modules it imports anywhere in its source}."""
    mods = _modules()
    graph = {}
    for name, path in mods.items():
        package = name.split(".") if path.endswith("__init__.py") else name.split(".")[:-1]
        deps = set()
        with open(path) as f:
            tree = ast.parse(f.read(), path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
                for a in node.names:  # `from . import x` imports the module x
                    deps.add(f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base)
        graph[name] = {d for d in deps if d in mods and d != name}
    return graph


def cycles(graph):
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(comp)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_new_import_cycles():
    graph = import_graph()
    assert "ctrain.train" in graph and "ctrain.weights_in" in graph["ctrain.train"]
    new = [sorted(c) for c in cycles(graph) if c not in KNOWN_CYCLES]
    assert not new, f"import cycles: {new}"


def test_export_and_training_do_not_import_each_other():
    graph = import_graph()
    for m in ("ctrain.modelspec", "ctrain.model_file", "ctrain.onnx_export", "ctrain.weights_in"):
        assert "ctrain.train" not in graph[m] and "ctrain.export" not in graph[m], m
    assert "ctrain.export" not in graph["ctrain.train"]



def test_import_ctrain_is_light_and_the_api_resolves():
    """`import ctrain` loads no numpy or pynq (each API name is imported when
    first used), no API name but the board device's pulls in pynq, and every
    API name is the object its module defines."""
    code = ("import sys, ctrain\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'pynq') or m.startswith('ctrain.')))\n"
            "import importlib\n"
            "names = sorted(ctrain._API, key=lambda n: n == 'BoardDevice')\n"
            "for name in names:\n"
            "    if name == 'BoardDevice':\n"
            "        print('pynq' in sys.modules)\n"
            "    mod = ctrain._API[name]\n"
            "    assert getattr(ctrain, name) is getattr(importlib.import_module('ctrain.' + mod), name), name\n"
            "assert set(ctrain.__all__) <= set(dir(ctrain))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["[]", "False"]
