"""The compiler maps models onto the accelerator or says precisely why not."""
import pytest

from ctrain import isa, validate
from ctrain.compiler import compile_model
from ctrain.errors import MappingError
from ctrain.model import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential, lenet5


def test_lenet5_program_shape():
    p = compile_model(lenet5(), 16)
    ops = [isa.op_name(int(i["op"])) for i in p.insns]
    fp_start, fp_n = p.segments["fp"]
    # conv+relu fused, pool; conv+relu, pool; three linear layers
    assert ops[:fp_n] == ["OP_CONV_FP", "OP_POOL_FP", "OP_CONV_FP", "OP_POOL_FP",
                          "OP_CONV_FP", "OP_CONV_FP", "OP_CONV_FP"]
    bp = ops[fp_n:]
    assert bp.count("OP_UPDATE") == 5 and bp.count("OP_CONV_WG") == 5
    assert bp.count("OP_CONV_EB") == 4  # the first layer needs no input error
    assert bp.count("OP_POOL_BP") == 2
    for insn in p.insns:
        assert validate.check(insn, p.plan.size, p.table_len)[0] == isa.Fault.NONE


def test_regions_are_aligned_and_disjoint():
    p = compile_model(lenet5(), 8)
    spans = sorted((r.offset, r.offset + r.nbytes, r.name) for r in p.plan.regions.values())
    for (a0, a1, an), (b0, b1, bn) in zip(spans, spans[1:]):
        assert a1 <= b0, f"{an} overlaps {bn}"
    assert all(r.offset % isa.ALIGN == 0 for r in p.plan.regions.values())
    assert spans[-1][1] <= p.plan.size


def test_pool_then_relu_is_reordered_and_fused():
    m = Sequential(Conv2d(1, 4, 3), MaxPool2d(2), ReLU(), Flatten(), Linear(4 * 3 * 3, 10), input_shape=(1, 8, 8))
    assert [s.kind for s in m.stages] == ["param", "pool", "param"]
    assert m.stages[0].relu


@pytest.mark.parametrize("model, message", [
    (lambda: Sequential(Conv2d(1, 4, 7), Flatten(), Linear(4, 10), input_shape=(1, 5, 5)),
     "larger than its padded input"),
    (lambda: Sequential(Conv2d(1, 4, 13), Flatten(), Linear(4, 10), input_shape=(1, 20, 20)),
     "beyond the PE array"),
    (lambda: Sequential(Conv2d(3, 4, 3), Flatten(), Linear(4, 10), input_shape=(1, 8, 8)),
     "expects 3 input channels"),
    (lambda: Sequential(Conv2d(1, 4, 3, padding=3), Flatten(), Linear(4, 10), input_shape=(1, 8, 8)),
     "padding 3 must be below the kernel size"),
    (lambda: Sequential(Flatten(), Linear(63, 10), input_shape=(1, 8, 8)), "expects 63 input features"),
    (lambda: Sequential(Conv2d(1, 4, 3), MaxPool2d(7, 2), Flatten(), Linear(4, 10), input_shape=(1, 8, 8)),
     "pool window 7x7 is larger than its input 6x6"),
    (lambda: Sequential(Conv2d(1, 4, 3), ReLU(), input_shape=(1, 8, 8)), None),
])
def test_unmappable_models_name_the_problem(model, message):
    if message is None:  # a valid model compiles
        compile_model(model(), 4)
        return
    with pytest.raises(MappingError, match=message):
        compile_model(model(), 4)


def test_batch_beyond_limit():
    with pytest.raises(MappingError, match="batch size"):
        compile_model(lenet5(), isa.LIMITS["BATCH"] + 1)
