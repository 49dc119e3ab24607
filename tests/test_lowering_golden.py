"""Lowering, compiling and ONNX export give exactly what they gave before
their restructuring into tables (issue 12): the SHA-256 of every built-in
model's stages, program (instruction bytes, memory plan, table slots, per
instruction the slot it observes and its stage) and ONNX graph, dense and
sparse, trained and frozen, against digests the pre-refactor code (main
d3fc8fa) produced. A deliberate change of the output regenerates them:
`python tests/test_lowering_golden.py` prints the table to paste below."""
import hashlib
import json

import numpy as np
import pytest

from ctrain.compiler import compile_model
from ctrain.model import (MODELS, AvgPool2d, BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d, ReLU,
                          Residual, Sequential, build_model, weight_shape)
from ctrain.modelspec import bn_stage_spec, model_spec, param_stage_spec

#: the built-in models at their data sets' shapes
SHAPES = {"lenet5": (1, 28, 28), "lenet5-bn": (1, 28, 28), "digits-cnn": (1, 8, 8), "mlp": (1, 28, 28),
          "cnv": (3, 32, 32), "vgg-small": (3, 32, 32), "resnet20": (3, 32, 32)}


def kitchen_sink():
    """What the built-in models leave out: Conv->MaxPool->ReLU reordered, a
    ReLU that cannot fuse, AvgPool2d, a fork of three consumers (running sums),
    a masked fork, a Linear tiled over its map."""
    inner = Residual([Conv2d(8, 8, 3, padding=1), ReLU()])
    return Sequential(Conv2d(1, 8, 3, padding=1), MaxPool2d(2), ReLU(), BatchNorm2d(8), ReLU(),
                      Residual([inner, ReLU()]), ReLU(), AvgPool2d(2), ReLU(),
                      Residual([Conv2d(8, 8, 1, bias=False), BatchNorm2d(8)], [Conv2d(8, 8, 1)]),
                      Flatten(), Linear(8 * 4 * 4, 10), input_shape=(1, 16, 16))


def model_of(name):
    return kitchen_sink() if name == "kitchen-sink" else build_model(name, SHAPES[name], 10)


def masks_of(model, seed=0):
    """70% of each layer's weights pruned (a layer keeps at least one)."""
    rng = np.random.default_rng(seed)
    out = []
    for st in model.param_stages:
        m = rng.random(weight_shape(st)) >= 0.7
        m.reshape(-1)[0] = True
        out.append(m)
    return out


def _h(obj):
    return hashlib.sha256(obj if isinstance(obj, bytes) else
                          json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def stages_digest(model):
    return _h([[st.kind, st.relu, list(st.in_shape), list(st.out_shape), st.index, st.param_index,
                st.bn_index, st.names, list(st.inputs), list(st.geom)] for st in model.stages])


def program_digest(prog):
    """The program's digest without the dense tilings (tile_*: chosen by the
    cycle model, which changes on its own; tests/test_tiling.py checks them)."""
    insns = prog.insns.copy()
    for name in ("tile_g", "tile_br", "tile_rb"):
        insns[name] = 0
    h = hashlib.sha256(insns.tobytes())
    h.update(_h([[r.name, r.offset, list(r.shape), str(r.dtype)] for r in prog.plan.regions.values()]
                + [prog.plan.size, prog.table_len, prog.slot_names, prog.act_slots, prog.err_slots,
                   prog.observe, prog.insn_stage, prog.segments, prog.par_slot, prog.bn_slots,
                   prog.const_slots, prog.part_slots, prog.freeze, prog.batch]).encode())
    for L in prog.layers:
        h.update(_h([L.n_w, L.n_b, list(L.w_shape), L.slot_w8, L.slot_w8_next, L.slot_m, L.slot_g,
                     L.frozen, L.sparse]).encode())
        if L.sparse:
            h.update(L.index.tobytes() + np.packbits(L.mask).tobytes())
    return h.hexdigest()[:16]


def synthetic_export(model, fixed, seed=0):
    """An ExportedModel of `model` with seeded weights and exponents (no
    training: what to_onnx writes depends only on these)."""
    from ctrain.model_file import FORMAT, VERSION, ExportedModel
    rng = np.random.default_rng(seed)
    act_exp = [-7] + [int(e) for e in rng.integers(-6, -2, len(model.stages))]
    meta = {"format": FORMAT, "version": VERSION, "model": model_spec(model),
            "num_classes": model.num_classes, "input_exp": -7, "fixed_point": fixed, "iteration": 0,
            "dataset": None, "layers": [], "bn": [], "act_exp": act_exp}
    arrays = {}
    for st in model.param_stages:
        j, d = st.param_index, param_stage_spec(st)
        ws = tuple(d["w_shape"])
        arrays[f"float_w{j}"] = rng.standard_normal(ws).astype(np.float32) * 0.1
        if d["bias"]:
            arrays[f"float_b{j}"] = rng.standard_normal(ws[0]).astype(np.float32) * 0.1
        if fixed:
            arrays[f"w{j}"] = rng.integers(-127, 128, ws).astype(np.int8)
            if d["bias"]:
                arrays[f"bias{j}"] = rng.integers(-2 ** 20, 2 ** 20, ws[0]).astype(np.int32)
            d = dict(d, e_w=int(rng.integers(-9, -5)), e_m=-20, e_in=act_exp[st.index],
                     e_out=act_exp[st.index + 1])
        meta["layers"].append(d)
    for st in model.bn_stages:
        k, d, c = st.bn_index, bn_stage_spec(st), st.in_shape[0]
        arrays[f"float_bn_scale{k}"] = rng.random(c).astype(np.float32) + 0.5
        arrays[f"float_bn_shift{k}"] = rng.standard_normal(c).astype(np.float32) * 0.1
        if fixed:
            arrays[f"bnA{k}"] = rng.integers(1, 2 ** 12, c).astype(np.int32)
            arrays[f"bnB{k}"] = rng.integers(-2 ** 16, 2 ** 16, c).astype(np.int32)
            d = dict(d, e_a=-12, e_b=-16, e_in=act_exp[st.index], e_out=act_exp[st.index + 1])
        meta["bn"].append(d)
    return ExportedModel(arrays, meta)


def onnx_digest(onnx_model):
    from onnx import numpy_helper
    g = onnx_model.graph
    nodes = [[n.op_type, list(n.input), list(n.output), n.name,
              sorted((a.name, str(a)) for a in n.attribute)] for n in g.node]
    inits = [[t.name, t.data_type, list(t.dims), hashlib.sha256(numpy_helper.to_array(t).tobytes()).hexdigest()]
             for t in g.initializer]
    io = [str(v) for v in list(g.input) + list(g.output)]
    props = [(p.key, p.value) for p in onnx_model.metadata_props]
    return _h([nodes, inits, io, props, onnx_model.ir_version, [str(o) for o in onnx_model.opset_import]])


COMPILE_CASES = [(name, sparse, freeze) for name in list(SHAPES) + ["kitchen-sink"]
                 for sparse, freeze in ((False, 0), (True, 0), (False, 1))]
ONNX_CASES = [(name, style) for name in ("lenet5", "lenet5-bn", "digits-cnn", "mlp", "cnv")
              for style in ("exact", "qdq", "float")]

#: (model, sparse, freeze) -> (stages digest, program digest), from main d3fc8fa at batch 4
PROGRAMS = {
    ('lenet5', False, 0): ('6835e124d60b9303', '0a446987f513ccdc'),
    ('lenet5', True, 0): ('6835e124d60b9303', 'f39c6d7cb8d7fd86'),
    ('lenet5', False, 1): ('6835e124d60b9303', '539f56cbfa3299df'),
    ('lenet5-bn', False, 0): ('56287dc7d3ec0eb3', '18214100e95bc351'),
    ('lenet5-bn', True, 0): ('56287dc7d3ec0eb3', '9f1adcf16a9d3b29'),
    ('lenet5-bn', False, 1): ('56287dc7d3ec0eb3', '63bdb7e87934aa8c'),
    ('digits-cnn', False, 0): ('3d4b55a2e0122493', '8c49fd25fe18e44a'),
    ('digits-cnn', True, 0): ('3d4b55a2e0122493', '220f4237bb1313dd'),
    ('digits-cnn', False, 1): ('3d4b55a2e0122493', '618adb2bff4b441b'),
    ('mlp', False, 0): ('459ce53a56d50827', '77f82e5edddd4a6e'),
    ('mlp', True, 0): ('459ce53a56d50827', '3e95e115b484fcf6'),
    ('mlp', False, 1): ('459ce53a56d50827', '15b09bd1edade5df'),
    ('cnv', False, 0): ('769e8e9933e3c93d', 'bb58411d7ddea8ba'),
    ('cnv', True, 0): ('769e8e9933e3c93d', '5c4adddc8d68dd0f'),
    ('cnv', False, 1): ('769e8e9933e3c93d', '6993d35123d20af0'),
    ('vgg-small', False, 0): ('81958e4473817859', '89ed91fbfc442cf0'),
    ('vgg-small', True, 0): ('81958e4473817859', 'c5c3aca47415e336'),
    ('vgg-small', False, 1): ('81958e4473817859', 'abcfb057a0c3d7a2'),
    ('resnet20', False, 0): ('533a0db6bca751b2', '50ae43359e2393c4'),
    ('resnet20', True, 0): ('533a0db6bca751b2', '47ab3f48dddb6feb'),
    ('resnet20', False, 1): ('533a0db6bca751b2', '0d5f06709ec1024b'),
    ('kitchen-sink', False, 0): ('c032e04fd2ceebc2', '88586ed4a755026a'),
    ('kitchen-sink', True, 0): ('c032e04fd2ceebc2', '03cfe9bf54a4f725'),
    ('kitchen-sink', False, 1): ('c032e04fd2ceebc2', '599a9ba73ca6f1ca'),
}
#: (model, style) -> digest of the ONNX graph, from main d3fc8fa
ONNX = {
    ('lenet5', 'exact'): 'd23d4fe0fff58ca8',
    ('lenet5', 'qdq'): '02c2a7e6c6fb9d66',
    ('lenet5', 'float'): '66c273caf063dc51',
    ('lenet5-bn', 'exact'): 'fe6e54314c366c3d',
    ('lenet5-bn', 'qdq'): 'c9592d7a4091ca53',
    ('lenet5-bn', 'float'): 'e858de7d5e8d68d5',
    ('digits-cnn', 'exact'): '46f3bc429125b66c',
    ('digits-cnn', 'qdq'): '44ed15ebf9490949',
    ('digits-cnn', 'float'): '89ecbf59d8979409',
    ('mlp', 'exact'): 'bf2f98cae2519a62',
    ('mlp', 'qdq'): '637c0443dd518d66',
    ('mlp', 'float'): '3cdb706ae9b44beb',
    ('cnv', 'exact'): 'aca83c0a9fdbddee',
    ('cnv', 'qdq'): '0471686feb9fb813',
    ('cnv', 'float'): 'ec59e53ac0167821',
}


def compile_case(name, sparse, freeze):
    model = model_of(name)
    return stages_digest(model), program_digest(
        compile_model(model, 4, masks_of(model) if sparse else None, freeze=freeze, sparse_exec="always"))


def onnx_case(name, style):
    from ctrain.onnx_export import to_onnx
    em = synthetic_export(model_of(name), fixed=style != "float")
    return onnx_digest(to_onnx(em, style="exact" if style == "float" else style))


def test_built_in_models_are_all_covered():
    assert set(SHAPES) == {n for n, f in MODELS.items() if f.__module__ == "ctrain.model"}
    assert set(PROGRAMS) == set(COMPILE_CASES) and set(ONNX) == set(ONNX_CASES)


@pytest.mark.parametrize("name,sparse,freeze", COMPILE_CASES)
def test_lowering_and_program_are_unchanged(name, sparse, freeze):
    assert compile_case(name, sparse, freeze) == PROGRAMS[name, sparse, freeze]


@pytest.mark.parametrize("name,style", ONNX_CASES)
def test_onnx_graph_is_unchanged(name, style):
    pytest.importorskip("onnx")
    assert onnx_case(name, style) == ONNX[name, style]


if __name__ == "__main__":
    print("PROGRAMS = {")
    for case in COMPILE_CASES:
        print(f"    {case!r}: {compile_case(*case)!r},")
    print("}\nONNX = {")
    for case in ONNX_CASES:
        print(f"    {case!r}: {onnx_case(*case)!r},")
    print("}")
