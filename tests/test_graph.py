"""The layer graph and its operations: residual add and average pooling in the
numpy engine against hand-computed numbers, Residual lowering and its error
plan (a fork's errors summed), the float path's gradient through a fork
(central differences in float32), the named graph models, and fully connected layers
wider than the PE array's channels (tiled, or rejected when the model is
built)."""
import numpy as np
import pytest

from ctrain import isa, validate
from ctrain.compiler import compile_model
from ctrain.engine.numpy import NumpyEngine
from ctrain.errors import MappingError
from ctrain.floatnet import FloatNet, softmax_xent
from ctrain.isa import Flag, Op
from ctrain.model import (BatchNorm2d, Conv2d, Flatten, GlobalAvgPool2d, AvgPool2d, Linear,
                          ReLU, Residual, Sequential, build_model, linear_map, resnet20, weight_shape)
from ctrain.tools.random_insn import build_ddr
from conftest import csim_or_skip


def _run_one(insn_fields, arrays, table):
    """Run one instruction (then HALT) on the numpy engine; returns (result, ddr, offsets)."""
    arrays = list(arrays) + [("stats", np.zeros(32, np.uint8)), ("prog", np.zeros(256, np.uint8)),
                             ("table", np.array(table, np.int32))]
    ddr, off = build_ddr(arrays)
    prog = isa.new_program(2)
    for k, v in insn_fields.items():
        prog[0][k] = v
    for name, _ in arrays:
        if name not in ("prog", "table"):
            prog[0][name] = off[name]
    prog[1]["op"] = Op.HALT
    ddr[off["prog"]:off["prog"] + 256] = prog.view(np.uint8)
    res = NumpyEngine().run(ddr, off["prog"], 2, off["table"], len(table))
    return res, ddr, off


def _i8(ddr, off, name, n):
    return ddr[off[name]:off[name] + n].view(np.int8).tolist()


def _stats(ddr, off):
    rec = ddr[off["stats"]:off["stats"] + 32].view(isa.STATS_DTYPE)[0]
    return int(rec["max_abs"]), int(rec["exp"]), int(rec["sat"]), int(rec["nnz"]), int(rec["count"])


@pytest.mark.parametrize("flags, want, peak, sat, nnz", [
    (0, [4, -4, 127, -4], 300, 1, 4),
    (Flag.RELU, [4, 0, 127, 0], 300, 1, 2),
    (Flag.RELU_MASK, [4, -4, 0, 0], 8, 0, 2),
])
def test_add_hand_computed(flags, want, peak, sat, nnz):
    """a = [3 -5 100 0] at 2^-2, b = [1 2 100 -7] at 2^-3: acc = 2a + b =
    [7 -8 300 -7] at 2^-3; stored at 2^-2 (shift 1, ties to even): [4 -4 150->127 -4]."""
    arrays = [("src", np.array([3, -5, 100, 0], np.int8)), ("src2", np.array([1, 2, 100, -7], np.int8)),
              ("dst", np.zeros(4, np.uint8))]
    if flags & Flag.RELU_MASK:
        arrays.append(("aux", np.array([1, 1, 0, -1], np.int8)))
    res, ddr, off = _run_one(dict(op=Op.ADD, flags=flags, count=4, e_src=0, e_src2=1, e_dst=2),
                             arrays, [-2, -3, -2])
    assert tuple(res) == (0, 1, 0)
    assert _i8(ddr, off, "dst", 4) == want
    assert _stats(ddr, off) == (peak, -3, sat, nnz, 4)


@pytest.mark.parametrize("relu", [False, True])
def test_add_rounds_ties_to_even(relu):
    """ADD's store rounds half to even (docs/numeric.md rshift_even): with
    b = 0, acc = a at 2^-3 stored at 2^-2 halves it, and every odd a is a tie:
    [0.5 1.5 2.5 3.5 -0.5 -1.5 -2.5 -3.5] -> [0 2 2 4 0 -2 -2 -4], where half up
    would give [1 2 3 4 0 -1 -2 -3] (a bias of +0.25 LSB on these values)."""
    a = np.array([1, 3, 5, 7, -1, -3, -5, -7], np.int8)
    res, ddr, off = _run_one(dict(op=Op.ADD, flags=Flag.RELU if relu else 0, count=8, e_src=0, e_src2=1, e_dst=2),
                             [("src", a), ("src2", np.zeros(8, np.int8)), ("dst", np.zeros(8, np.uint8))],
                             [-3, -3, -2])
    assert tuple(res) == (0, 1, 0)
    want = [0, 2, 2, 4, 0, -2, -2, -4]
    assert _i8(ddr, off, "dst", 8) == ([max(v, 0) for v in want] if relu else want)


def test_add_far_apart_exponents_saturate_the_shift_not_the_sum():
    """e_a - e_b = 70: a's shift clamps at 62 and saturates at 2^62, b is
    unshifted, so the sum stays inside int64 and the store clamps."""
    res, ddr, off = _run_one(dict(op=Op.ADD, count=2, e_src=0, e_src2=1, e_dst=2),
                             [("src", np.array([1, -1], np.int8)), ("src2", np.array([5, 5], np.int8)),
                              ("dst", np.zeros(2, np.uint8))], [70, 0, 0])
    assert _i8(ddr, off, "dst", 2) == [127, -127]
    assert _stats(ddr, off) == ((1 << 62) + 5, 0, 2, 2, 2)


def test_avgpool_hand_computed():
    """Global 2x2 over [1 2 3 5]: sum 11, R = 2^28, stored at the input's
    exponent: (11*2^28 + 2^29) >> 30 = 3 (2.75 rounded half up). A 2x2 window
    with stride 2 over a 2x4 map: [1+2+3+5, 4+0-1+7] = [11, 10] -> [3, 3]
    (2.5 rounds up)."""
    res, ddr, off = _run_one(dict(op=Op.AVGPOOL_FP, n=1, c_in=1, c_out=1, h_in=2, w_in=2, h_out=1, w_out=1,
                                  k_h=2, k_w=2, stride=1, e_src=0, e_dst=1),
                             [("src", np.array([1, 2, 3, 5], np.int8)), ("dst", np.zeros(1, np.uint8))],
                             [-2, -2])
    assert _i8(ddr, off, "dst", 1) == [3] and _stats(ddr, off) == (11 << 28, -32, 0, 1, 1)
    res, ddr, off = _run_one(dict(op=Op.AVGPOOL_FP, n=1, c_in=1, c_out=1, h_in=2, w_in=4, h_out=1, w_out=2,
                                  k_h=2, k_w=2, stride=2, e_src=0, e_dst=1),
                             [("src", np.array([1, 2, 4, 0, 3, 5, -1, 7], np.int8)),
                              ("dst", np.zeros(2, np.uint8))], [0, 0])
    assert _i8(ddr, off, "dst", 2) == [3, 3]


def test_avgpool_bp_hand_computed():
    """A 1x3 window over a 1x3 map, error 9 at 2^0 stored at 2^-3: R =
    round(2^30/3) = 357913941, (9R + 2^26) >> 27 = 24 (9/3 = 3 = 24 * 2^-3)
    at every covered position, the ReLU mask dropping the middle one."""
    res, ddr, off = _run_one(dict(op=Op.AVGPOOL_BP, flags=Flag.RELU_MASK, n=1, c_in=1, c_out=1, h_in=1,
                                  w_in=3, h_out=1, w_out=1, k_h=1, k_w=3, stride=1, e_src=0, e_dst=1),
                             [("src", np.array([9], np.int8)), ("aux", np.array([1, 0, 2], np.int8)),
                              ("dst", np.zeros(3, np.uint8))], [0, -3])
    assert isa.avg_recip(3) == 357913941
    assert _i8(ddr, off, "dst", 3) == [24, 0, 24]
    assert _stats(ddr, off) == (9 * 357913941, -30, 0, 2, 3)


def test_global_pool_window_may_exceed_the_conv_kernel_limit():
    f = dict(op=Op.AVGPOOL_FP, n=1, c_in=2, c_out=2, h_in=32, w_in=32, h_out=1, w_out=1, k_h=32, k_w=32,
             stride=1, src=0, dst=4096, stats=4160, e_src=0, e_dst=1)
    f = {k: f.get(k, 0) for k in validate._SCALARS}
    assert validate.check(f, 8192, 2)[0] == isa.Fault.NONE
    assert validate.check(dict(f, op=Op.POOL_FP), 8192, 2)[0] == isa.Fault.SHAPE


# ---------------------------------------------------------------- the graph

def _tiny_resnet():
    return Sequential(Conv2d(1, 4, 3, padding=1), ReLU(),
                      Residual([Conv2d(4, 4, 3, padding=1), ReLU(), Conv2d(4, 4, 3, padding=1)]), ReLU(),
                      Residual([Conv2d(4, 6, 3, stride=2, padding=1), BatchNorm2d(6)],
                               [Conv2d(4, 6, 1, stride=2), BatchNorm2d(6)]), ReLU(),
                      GlobalAvgPool2d(), Flatten(), Linear(6, 3), input_shape=(1, 6, 6))


def test_residual_lowers_to_a_graph():
    m = _tiny_resnet()
    kinds = [(s.kind, s.inputs, s.relu) for s in m.stages]
    assert kinds == [("param", (0,), True), ("param", (1,), True), ("param", (2,), False),
                     ("add", (3, 1), True), ("param", (4,), False), ("bn", (5,), False),
                     ("param", (4,), False), ("bn", (7,), False), ("add", (6, 8), True),
                     ("avgpool", (9,), False), ("param", (10,), False)]
    assert m.stages[9].geom == (3, 3, 1, 0) and m.stages[9].out_shape == (6, 1, 1)


def test_fork_errors_are_summed_by_add_and_the_add_needs_no_op():
    """Tensors 1 and 4 each feed a body and a shortcut: one ADD each sums the
    two errors (masking with the fused ReLU's activation); the adds' inputs
    take their output error as it is (the identity shortcut needs nothing)."""
    p = compile_model(_tiny_resnet(), 2)
    bp0 = p.segments["bp"][0]
    adds = [i for i in p.insns[bp0:] if i["op"] == Op.ADD]
    assert len(adds) == 2 and all(int(i["flags"]) == Flag.RELU_MASK for i in adds)
    R = p.plan.regions
    fork1 = [i for i in adds if int(i["dst"]) == R["err1"].offset][0]
    assert int(fork1["aux"]) == R["act1"].offset
    # identity shortcut: the block's output error itself is one of the summands
    assert R["err4"].offset in (int(fork1["src"]), int(fork1["src2"]))
    assert "err3" not in R  # the add's body input reuses err4
    eb_into_1 = [i for i in p.insns[bp0:] if i["op"] == Op.CONV_EB and int(i["dst"]) == R["err1.1"].offset]
    assert len(eb_into_1) == 1 and int(eb_into_1[0]["flags"]) == 0  # the fork masks, not the branch
    for insn in p.insns:
        assert validate.check(insn, p.plan.size, p.table_len)[0] == isa.Fault.NONE


def test_float_gradient_through_forks_matches_finite_differences():
    m = _tiny_resnet()
    rng = np.random.default_rng(0)
    params = m.init_params(rng)
    net = FloatNet(m, params)
    net.bn_frozen = True  # a fixed function of the weights
    for b in net.bn:
        b["gamma"][...] = rng.uniform(0.5, 1.5, b["gamma"].shape)
    x = rng.random((2, 1, 6, 6), dtype=np.float32)
    y = np.array([0, 2])

    def loss():
        return softmax_xent(net.forward(x, keep=True), y)[0]
    grads = net.backward(softmax_xent(net.forward(x, keep=True), y)[1])
    for j in range(len(params)):  # the stem feeds a fork, a body conv, the projection, ...
        w = params[j]["w"]
        for idx in [(0, 0, 0, 0), (1, 0, 1, 1)]:
            if any(i >= n for i, n in zip(idx, w.shape)):
                continue
            old = w[idx]
            w[idx] = old + 1e-3
            up = loss()
            w[idx] = old - 1e-3
            down = loss()
            w[idx] = old
            g = float(grads[j]["w"][idx])
            assert abs((up - down) / 2e-3 - g) < 1e-3 + 0.02 * abs(g), (j, idx, (up - down) / 2e-3, g)


def test_resnet20_structure():
    m = resnet20()
    assert sum(s.kind == "add" for s in m.stages) == 9
    assert sum(s.kind == "param" for s in m.stages) == 22   # 19 convs + 2 projections + classifier
    assert sum(int(np.prod(weight_shape(s))) for s in m.param_stages) == 270896
    p = compile_model(m, 4)
    ops = [int(i["op"]) for i in p.insns]
    assert ops.count(Op.ADD) == 18 and ops.count(Op.AVGPOOL_FP) == ops.count(Op.AVGPOOL_BP) == 1


def test_named_graph_models_build():
    for name in ("resnet20", "vgg-small"):
        m = build_model(name, (3, 32, 32))
        assert m.num_classes == 10


@pytest.mark.parametrize("model, message", [
    (lambda: Sequential(Residual([]), Flatten(), Linear(4, 2), input_shape=(1, 2, 2)), "body is empty"),
    (lambda: Sequential(Residual([Conv2d(1, 2, 1)]), Flatten(), Linear(8, 2), input_shape=(1, 2, 2)),
     r"body gives \(2, 2, 2\), shortcut \(1, 2, 2\)"),
    (lambda: Sequential(Conv2d(1, 2, 3), AvgPool2d(5, 1), Flatten(), Linear(2, 2), input_shape=(1, 6, 6)),
     "pool window 5x5 is larger than its input 4x4"),
])
def test_bad_graphs_name_the_problem(model, message):
    with pytest.raises(MappingError, match=message):
        model()


# ---------------------------------------------------------------- wide fully connected layers

def test_linear_wider_than_the_channels_is_tiled():
    assert linear_map(784) == (784, 1, 1)                      # fits: unchanged
    assert linear_map(4096, (256, 4, 4)) == (256, 4, 4)        # the flattened map
    assert linear_map(4096) == (2048, 2, 1)                    # a factorisation
    assert linear_map(4099) is None                            # a prime above 2048
    m = Sequential(Flatten(), Linear(4096, 128), ReLU(), Linear(128, 10), input_shape=(1, 64, 64))
    st = m.param_stages[0]
    assert weight_shape(st) == (128, 2048, 2, 1) and st.geom == (2, 1, 1, 0)
    p = compile_model(m, 3)
    fp = p.insns[0]
    assert (int(fp["c_in"]), int(fp["h_in"]), int(fp["w_in"]), int(fp["k_h"]), int(fp["k_w"])) == (2048, 2, 1, 2, 1)


def test_wide_linear_computes_the_dot_product():
    """The tiled Linear's FP on the numpy engine equals the integer product of
    the flat features with the flat weights."""
    m = Sequential(Flatten(), Linear(4096, 5), input_shape=(4, 32, 32))
    assert weight_shape(m.param_stages[0]) == (5, 2048, 2, 1)
    p = compile_model(m, 2)
    rng = np.random.default_rng(2)
    ddr = np.zeros(p.plan.size, np.uint8)
    R = p.plan.regions
    x = rng.integers(-127, 128, (2, 4096)).astype(np.int8)
    w = rng.integers(-127, 128, (5, 4096)).astype(np.int8)
    ddr[R["act0"].offset:R["act0"].offset + x.size] = x.view(np.uint8).reshape(-1)
    ddr[R["w0"].offset:R["w0"].offset + w.size] = w.view(np.uint8).reshape(-1)
    table = np.zeros(p.table_len, np.int32)
    table[p.act_slots[0]], table[p.layers[0].slot_w8], table[p.act_slots[1]] = 0, 0, 20
    ddr[R["table"].offset:R["table"].offset + table.nbytes] = table.view(np.uint8)
    ddr[R["program"].offset:R["program"].offset + p.insns.nbytes] = p.insns.view(np.uint8).reshape(-1)
    insn = p.insns[0].copy()
    insn["flags"] = 0  # no bias
    ddr[R["program"].offset:R["program"].offset + 128] = np.frombuffer(insn.tobytes(), np.uint8)
    NumpyEngine().run(ddr, R["program"].offset, 1, R["table"].offset, p.table_len)
    acc = x.astype(np.int64) @ w.astype(np.int64).T
    want = np.clip((acc + (1 << 19)) >> 20, -127, 127)
    got = ddr[R["act1"].offset:R["act1"].offset + 10].view(np.int8).reshape(2, 5)
    assert np.array_equal(got, want)


def test_unmappable_linear_is_rejected_when_built():
    with pytest.raises(MappingError, match=r"layer 1 \(Linear\): 4099 input features cannot be tiled"):
        Sequential(Flatten(), Linear(4099, 10), input_shape=(1, 1, 4099))


def _wide_fc(input_shape=(1, 64, 64), num_classes=10):
    c, h, w = input_shape
    return Sequential(Flatten(), Linear(c * h * w, 128), ReLU(), Linear(128, num_classes),
                      input_shape=input_shape)


def test_wide_linear_trains_past_the_switch_to_fixed_point(monkeypatch):
    """Linear(4096, 128) trains its float warm-up and keeps training in fixed
    point (it used to fault with FAULT_SHAPE at the switch)."""
    from ctrain import model as model_module
    from ctrain.data import Dataset
    from ctrain.device.emulated import EmulatedDevice
    from ctrain.train import TrainConfig, Trainer
    monkeypatch.setitem(model_module.MODELS, "wide-fc", _wide_fc)
    rng = np.random.default_rng(5)
    y = rng.integers(0, 10, 40)
    x = rng.random((40, 1, 64, 64), dtype=np.float32) * 0.2
    for i, c in enumerate(y):
        x[i, 0, 6 * c:6 * c + 6, :] += 0.7
    ds = Dataset(x[:32], y[:32], x[32:], y[32:], "synthetic")
    cfg = TrainConfig(dataset="synthetic", model="wide-fc", epochs=2, batch_size=8, warmup_epochs=1,
                      lr=0.02, seed=1)
    t = Trainer(cfg, dataset=ds, device=EmulatedDevice(ddr_bytes=32 << 20, engine="numpy"))
    while t.it < 8:
        t.step(t.batch_indices())
    assert t.fixed and t.it == 8
    fp = t.runtime.program.insns[0]
    assert (int(fp["c_in"]), int(fp["k_h"]), int(fp["k_w"])) == (2048, 2, 1)
    w = t.runtime.float_params()[0]["w"]
    assert w.shape == (128, 2048, 2, 1) and np.isfinite(w).all()


def test_unmappable_linear_is_one_cli_line_before_training(capsys, tmp_path, monkeypatch):
    """A Linear no tiling maps (2047 x 28 x 28 features: more than 2048 x 11 x
    11) stops `ctrain train` when the model is built: one line, exit status
    2, nothing written."""
    from ctrain import model as model_module
    from ctrain.cli import main
    rng = np.random.default_rng(0)
    data = tmp_path / "d.npz"
    np.savez(data, x_train=rng.integers(0, 256, (20, 1, 28, 28), dtype=np.uint8), y_train=rng.integers(0, 10, 20))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    monkeypatch.chdir(run_dir)

    def too_wide(input_shape=(1, 28, 28), num_classes=10):
        c, h, w = input_shape
        return Sequential(Conv2d(c, 2047, 3, padding=1), Flatten(), Linear(2047 * h * w, num_classes),
                          input_shape=input_shape)
    monkeypatch.setitem(model_module.MODELS, "too-wide", too_wide)
    assert main(["train", "--dataset", "npz", "--data-dir", str(data), "--model", "too-wide",
                 "--no-progress"]) == 2
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert out == "" and len(lines) == 1 and lines[0].startswith("ctrain: error: "), err
    assert "1604848 input features cannot be tiled" in lines[0]
    assert list(run_dir.iterdir()) == []


def _nested(input_shape=(1, 8, 8), num_classes=10):
    """A tensor read by three stages (an inner and an outer identity shortcut
    and a conv): the fork's sum takes two ADDs and a running sum."""
    c, h, w = input_shape
    return Sequential(Conv2d(c, 4, 3, padding=1), ReLU(),
                      Residual([Residual([Conv2d(4, 4, 3, padding=1)]), ReLU(), Conv2d(4, 4, 3, padding=1)]),
                      ReLU(), AvgPool2d(2), Flatten(), Linear(4 * (h // 2) * (w // 2), num_classes),
                      input_shape=input_shape)


def test_three_way_fork_trains_identically_on_both_engines(monkeypatch):
    from ctrain import model as model_module
    from ctrain.data import Dataset
    from ctrain.device.emulated import EmulatedDevice
    from ctrain.train import TrainConfig, Trainer
    csim_or_skip()
    monkeypatch.setitem(model_module.MODELS, "nested", _nested)
    p = compile_model(_nested(), 2)
    # the conv's partial and a running sum; the two adds contribute their output errors as they are
    assert "err1+1" in p.plan.regions and "err1.1" in p.plan.regions and len(p.part_slots) == 2
    rng = np.random.default_rng(4)
    y = rng.integers(0, 10, 24)
    x = rng.random((24, 1, 8, 8), dtype=np.float32)
    ds = Dataset(x[:16], y[:16], x[16:], y[16:], "synthetic")
    arenas = []
    for engine in ("numpy", "csim"):
        cfg = TrainConfig(dataset="synthetic", model="nested", epochs=2, batch_size=4, warmup_epochs=0.5,
                          lr=0.05, seed=2)
        t = Trainer(cfg, dataset=ds, device=EmulatedDevice(ddr_bytes=8 << 20, engine=engine))
        while t.it < 8:
            t.step(t.batch_indices())
        rt = t.runtime
        arenas.append(np.array(rt.device.read_ddr(rt.arena.physical_address, rt.arena.nbytes)))
    assert np.array_equal(*arenas)


@pytest.mark.parametrize("factory", [resnet20, _tiny_resnet, _nested])
def test_every_operand_is_read_at_the_exponent_it_was_written_with(factory):
    """Dataflow of the exponent slots: each tensor an instruction reads has
    the slot its writer used (activations: act_slots; errors: the e_dst of
    the instruction that wrote them, or the input exponent for max-pool and
    ReLU, which keep it)."""
    p = compile_model(factory(), 2)
    at = {r.offset: name for name, r in p.plan.regions.items()}
    slot_of = {f"act{t}": s for t, s in enumerate(p.act_slots)}
    slot_of[f"err{len(p.model.stages)}"] = p.err_slots[-1]
    keeps = (Op.POOL_FP, Op.POOL_BP, Op.RELU_FP, Op.RELU_BP)
    reads = {Op.CONV_FP: ("src",), Op.BN_FP: ("src",), Op.POOL_FP: ("src",), Op.AVGPOOL_FP: ("src",),
             Op.ADD: ("src", "src2"), Op.CONV_EB: ("src",), Op.CONV_WG: ("src", "src2"),
             Op.BN_BP: ("src",), Op.POOL_BP: ("src",), Op.AVGPOOL_BP: ("src",), Op.RELU_BP: ("src",),
             Op.RELU_FP: ("src",)}
    for k, insn in enumerate(p.insns):
        op = Op(int(insn["op"]))
        for field, slot_field in zip(reads.get(op, ()), ("e_src", "e_src2")):
            name = at[int(insn[field])]
            assert slot_of[name] == int(insn[slot_field]), (k, op.name, field, name)
        if op in keeps:
            slot_of[at[int(insn["dst"])]] = int(insn["e_src"])
        elif op not in (Op.UPDATE, Op.CONV_WG):
            slot_of[at[int(insn["dst"])]] = int(insn["e_dst"])
