"""The package's structure: no module imports another that imports it back,
counting imports inside functions too (a deferred import hides a cycle, it does
not remove it), except the cycles listed here with their reason; the layers
know only what docs/architecture.md says they know (the compiler the model,
the runtime the program, the device memory and registers, the engine DDR bytes
and instruction words); tooling is never reached from the runtime's modules."""
import ast
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PKG_DIR = os.path.join(ROOT, "driver", "ctrain")



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


def test_no_import_cycles():
    graph = import_graph()
    assert "ctrain.train" in graph and "ctrain.weights_in" in graph["ctrain.train"]
    found = [sorted(c) for c in cycles(graph)]
    assert not found, f"import cycles: {found}"


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


def reach(graph, start):
    """Every module `start` imports, directly or through others."""
    seen, todo = set(), list(graph[start])
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(graph[m])
    return seen


def _in(module, *prefixes):
    return any(module == p or module.startswith(p + ".") for p in prefixes)


#: layer -> (its modules, the layers and front ends it must not reach): the
#: data flows model -> compiler -> runtime -> device -> engine, and each knows
#: only its input (docs/architecture.md "Data flow")
#: The cycle model is the compiler's cost model (compiler.choose_execution
#: picks each pruned layer's dense or sparse form by it): the compiler reaches
#: it, it reaches neither the compiler nor anything the program flows into.
COST_MODEL = ("ctrain.perfmodel", "ctrain.hls_source", "ctrain.counters")
LAYERS = {
    "model": (("ctrain.model", "ctrain.modelspec"),
              ("ctrain.compiler", "ctrain.runtime", "ctrain.device", "ctrain.engine", "ctrain.train")),
    "compiler": (("ctrain.compiler",), ("ctrain.runtime", "ctrain.device", "ctrain.engine", "ctrain.train")),
    "cost model": (COST_MODEL, ("ctrain.compiler", "ctrain.runtime", "ctrain.device", "ctrain.engine",
                                "ctrain.train")),
    "runtime": (("ctrain.runtime",), ("ctrain.compiler", "ctrain.train", "ctrain.cli", "ctrain.perfmodel")),
    "device": (("ctrain.device",), ("ctrain.model", "ctrain.compiler", "ctrain.runtime", "ctrain.train",
                                    "ctrain.perfmodel")),
    "engine": (("ctrain.engine",),
               ("ctrain.model", "ctrain.compiler", "ctrain.runtime", "ctrain.device", "ctrain.train",
                "ctrain.perfmodel")),
}
#: tooling (ctrain.tools): test and measurement harnesses, the performance
#: report and the resource estimate; only the front ends (CLI, sweeps) and
#: tooling reach it.  The cycle model (ctrain.perfmodel) and its reading of the
#: HLS sources (ctrain.hls_source) are not tooling: the compiler's cost model.
TOOLING = ("ctrain.tools",)
FRONT_ENDS = ("ctrain.cli", "ctrain.__main__", "ctrain.sweep")


def test_layers_know_only_their_input():
    graph = import_graph()
    for layer, (members, forbidden) in LAYERS.items():
        modules = [m for m in graph if _in(m, *members)]
        assert modules, layer
        for m in modules:
            bad = sorted(d for d in reach(graph, m) if _in(d, *forbidden))
            assert not bad, f"{m} ({layer}) reaches {bad}"


def test_tooling_is_not_reached_from_the_runtime():
    graph = import_graph()
    assert all(any(_in(m, t) for m in graph) for t in TOOLING)
    for m in graph:
        if _in(m, *TOOLING) or _in(m, *FRONT_ENDS):
            continue
        bad = sorted(d for d in reach(graph, m) if _in(d, *TOOLING))
        assert not bad, f"{m} reaches tooling {bad}"


def test_the_layer_rules_can_fail():
    """The checks above on a graph that breaks them."""
    graph = {"ctrain.engine.x": {"ctrain.isa"}, "ctrain.isa": {"ctrain.device.y"},
             "ctrain.device.y": set()}
    assert reach(graph, "ctrain.engine.x") == {"ctrain.isa", "ctrain.device.y"}
    assert _in("ctrain.device.y", *LAYERS["engine"][1]) and not _in("ctrain.devices", "ctrain.device")


# ------------------------------------------------------------- complexity

#: The most decision points a Python function may have (issue 12).
MAX_COMPLEXITY = 20
#: Functions allowed above it, each with the reason it stays one function.
COMPLEX_BY_DESIGN = {}
#: Where the complexity rule applies: the package and the overlay's tools.
COMPLEXITY_ROOTS = (PKG_DIR, os.path.join(ROOT, "overlay", "tools"))


def complexity(fn):
    """Cyclomatic complexity as radon counts it: 1, plus 1 per if/elif,
    loop, except handler, conditional expression, match case and
    comprehension clause (for and each if), plus one per extra operand of
    each `and`/`or`. Nested functions count toward the one that holds them."""
    n = 1
    for node in ast.walk(fn):
        if isinstance(node, (ast.If, ast.For, ast.AsyncFor, ast.While, ast.ExceptHandler, ast.IfExp,
                             ast.match_case)):
            n += 1
        elif isinstance(node, ast.BoolOp):
            n += len(node.values) - 1
        elif isinstance(node, ast.comprehension):
            n += 1 + len(node.ifs)
    return n


def functions_over(limit, roots=COMPLEXITY_ROOTS):
    """{"path:qualified name": complexity} of every function above `limit`."""
    out = {}
    for root in roots:
        for folder, _, files in os.walk(root):
            for f in sorted(files):
                if not f.endswith(".py"):
                    continue
                path = os.path.join(folder, f)
                tree = ast.parse(open(path).read(), path)

                def visit(node, prefix):
                    for child in ast.iter_child_nodes(node):
                        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                            cc = complexity(child)
                            if cc > limit:
                                out[f"{os.path.relpath(path, ROOT)}:{prefix}{child.name}"] = cc
                            visit(child, f"{prefix}{child.name}.")
                        elif isinstance(child, ast.ClassDef):
                            visit(child, f"{prefix}{child.name}.")
                visit(tree, "")
    return out


def test_no_function_is_more_complex_than_the_limit_without_a_reason():
    over = functions_over(MAX_COMPLEXITY)
    unexplained = {k: v for k, v in over.items() if k not in COMPLEX_BY_DESIGN}
    assert not unexplained, f"above complexity {MAX_COMPLEXITY}: {unexplained}"
    stale = sorted(set(COMPLEX_BY_DESIGN) - set(over))
    assert not stale, f"COMPLEX_BY_DESIGN names functions that are now simple enough: {stale}"


def test_complexity_counts_what_it_says():
    tree = ast.parse("def f(a, b):\n"
                     "    if a and b or a:\n        return [x for x in a if x if b]\n"
                     "    for _ in a:\n        pass\n"
                     "    try:\n        pass\n    except ValueError:\n        pass\n"
                     "    return 1 if a else 2\n")
    # 1 + if + (and: 1, or: 1) + comprehension (for + 2 ifs) + for + except + if-expression
    assert complexity(tree.body[0]) == 1 + 1 + 2 + 3 + 1 + 1 + 1
