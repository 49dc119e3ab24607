"""Boards built without the sparse unit's row-tile path (CTRAIN_SPARSE_ROWS 0,
sconv.h): what only that path runs is refused with FAULT_TILE by both
engines alike, nothing written; the compiler runs such layers dense, with
the same bits; the estimate leaves the path out (docs/overlay.md "Board
configurations", docs/isa.md)."""
import numpy as np
import pytest

from ctrain import boards, perfmodel, sparse_tiling, validate
from ctrain.compiler import compile_model
from ctrain.errors import MappingError
from ctrain.engine.numpy import NumpyEngine
from ctrain.isa import INSN_BYTES, INSN_DTYPE, Fault, Op
from ctrain.model import build_model
from ctrain.tools import resources
from ctrain.tools.perfreport import random_masks
from ctrain.tools.random_insn import layer_case

from conftest import csim_or_skip

SEED = 1717
ROWLESS = [b for b in boards.BOARDS if not sparse_tiling.unit(b).rows]
WITH_ROWS = [b for b in boards.BOARDS if sparse_tiling.unit(b).rows]

#: (name, op, shape, the position path takes it)
CASES = [
    ("fully connected", Op.SCONV_FP, dict(n=4, c_in=24, h_in=1, w_in=1, c_out=10, k_h=1, k_w=1, stride=1, pad=0), False),
    ("stride 2", Op.SCONV_EB, dict(n=2, c_in=5, h_in=9, w_in=9, c_out=6, k_h=3, k_w=3, stride=2, pad=1), False),
    ("stride 1 conv", Op.SCONV_WG, dict(n=2, c_in=5, h_in=8, w_in=8, c_out=6, k_h=3, k_w=3, stride=1, pad=1), True),
    ("stride 1 conv FP", Op.SCONV_FP, dict(n=2, c_in=4, h_in=7, w_in=7, c_out=3, k_h=3, k_w=3, stride=1, pad=1), True),
]


def test_the_row_tile_path_is_left_out_where_the_headers_say():
    """The five boards where the compiler picks it for no convolution of the
    built-in models at 50-80% sparsity (docs/overlay.md "Board
    configurations"; the KV260's since session 28); the Pynq-Z2, the
    default board, keeps it."""
    assert ROWLESS == ["aup_zu3", "ultra96", "kv260", "zcu104", "zcu102"]
    assert WITH_ROWS == ["pynq_z2"]


@pytest.mark.parametrize("board", boards.BOARDS)
@pytest.mark.parametrize("name, op, shape, takes", CASES, ids=[c[0] for c in CASES])
def test_refusals_are_the_same_in_both_engines_and_write_nothing(board, name, op, shape, takes):
    rng = np.random.default_rng(SEED)
    case = layer_case(rng, op, shape, density=0.4)
    refused = board in ROWLESS and not takes
    results = []
    for engine in (NumpyEngine(board=board), csim_or_skip(board)):
        ddr = case.ddr.copy()
        r = engine.run(ddr, *case.run_args())
        results.append((r.status, r.pc, r.fault_addr))
        if refused:
            assert (r.status, r.pc, r.fault_addr) == (Fault.TILE, 0, 0), engine.name
            assert np.array_equal(ddr, case.ddr), f"{engine.name} wrote while refusing"
        else:
            assert (r.status, r.pc) == (Fault.NONE, 1), engine.name
        results.append(ddr)
    assert results[0] == results[2] and np.array_equal(results[1], results[3])
    insn = _insn(case)
    assert validate.sparse_refused(insn, board) == refused
    assert validate.sparse_refused(insn, board, case.ddr) == refused


@pytest.mark.parametrize("board", ["aup_zu3", "zcu102"])
def test_a_bad_index_is_faulted_before_the_refusal(board):
    """FAULT_INDEX (the index contents) comes before FAULT_TILE (the refusal)
    in both engines (docs/isa.md): a fully connected instruction, which a
    board without the row-tile path refuses, whose rowptr[0] is not 0.  The
    numpy engine took the refusal from the shape alone, before the index,
    until session 24."""
    name, op, shape, _ = CASES[0]
    case = layer_case(np.random.default_rng(SEED), op, shape, density=0.4)
    f = _insn(case)
    at = f["aux"] + validate.index_layout(f["c_out"], validate.sparse_cols(f), f["count"])["rowptr"]
    case.ddr[at:at + 4] = np.array([1], "<u4").view(np.uint8)
    assert validate.check(f, case.ddr.size, case.table_len, case.ddr, board) == (Fault.INDEX, at)
    assert validate.check(f, case.ddr.size, case.table_len, board=board) == (Fault.TILE, 0)   # no DDR: no index
    for engine in (NumpyEngine(board=board), csim_or_skip(board)):
        ddr = case.ddr.copy()
        r = engine.run(ddr, *case.run_args())
        assert (r.status, r.pc, r.fault_addr) == (Fault.INDEX, 0, at), engine.name
        assert np.array_equal(ddr, case.ddr), engine.name


def _insn(case):
    return validate.fields(case.ddr[case.prog:case.prog + INSN_BYTES].view(INSN_DTYPE)[0])


@pytest.mark.parametrize("board", ROWLESS[-1:] + WITH_ROWS[-1:])
def test_a_list_beyond_sp_list_is_refused_only_without_the_row_tile_path(board):
    """One output channel keeping more weights than SP_LIST: the position
    path cannot chunk it (spp_chunks), which only the index shows: the
    compiler's check passes without the DDR image, the engines refuse it."""
    lim = perfmodel.board(board).sparse_list
    c_in = lim // 9 + 1
    shape = dict(n=1, c_in=c_in, h_in=3, w_in=3, c_out=2, k_h=3, k_w=3, stride=1, pad=1)
    mask = np.zeros((2, c_in * 9), bool)
    mask[0] = True          # lim < 9 c_in kept weights in one list
    mask[1, ::7] = True
    case = layer_case(np.random.default_rng(SEED), Op.SCONV_FP, shape, mask=mask)
    insn = _insn(case)
    refused = board in ROWLESS
    assert sparse_tiling.longest_list(insn, validate.index_arrays(case.ddr, insn)) == c_in * 9 > lim
    assert validate.sparse_refused(insn, board) is False
    assert validate.sparse_refused(insn, board, case.ddr) == refused
    assert validate.check(insn, case.ddr.size, case.table_len, case.ddr, board)[0] == (
        Fault.TILE if refused else Fault.NONE)
    outs = []
    for engine in (NumpyEngine(board=board), csim_or_skip(board)):
        ddr = case.ddr.copy()
        r = engine.run(ddr, *case.run_args())
        assert r.status == (Fault.TILE if refused else Fault.NONE), engine.name
        if refused:
            assert np.array_equal(ddr, case.ddr)
        outs.append(ddr)
    assert np.array_equal(*outs)


def test_the_compiler_runs_refused_layers_dense_and_refuses_a_given_choice():
    """LeNet-5 at 80% on the ZCU102: its three fully connected layers run
    dense under `always` (all five sparse on the Pynq-Z2), none of the
    sparse ones is refused, and a checkpoint's choice running them sparse
    is refused in one line naming exactly them."""
    model = build_model("lenet5", (1, 28, 28))
    masks = random_masks(model, 0.8, seed=3)
    names = [st.names[0] for st in model.param_stages]
    pynq = compile_model(model, 8, masks, sparse_exec="always", board="pynq_z2")
    assert [L.sparse for L in pynq.layers] == [True] * 5
    z = compile_model(model, 8, masks, sparse_exec="always", board="zcu102")
    assert [L.sparse for L in z.layers] == [True, True, False, False, False]
    sparse_insns = [validate.fields(i) for i in z.insns if int(i["op"]) in validate.SPARSE_OPS]
    assert len(sparse_insns) == 5 and not any(validate.sparse_refused(f, "zcu102") for f in sparse_insns)
    with pytest.raises(MappingError) as e:
        compile_model(model, 8, masks, sparse_exec=[True] * 5, board="zcu102")
    msg = str(e.value)
    assert "\n" not in msg and "zcu102" in msg
    assert msg.split(" run sparse")[0] == "layers " + ", ".join(names[2:])


def test_the_estimate_leaves_the_path_out():
    """Without CTRAIN_SPARSE_ROWS no item of sp_rows_unit's functions is
    counted; with it (the Pynq-Z2) they are."""
    def rows_items(board):
        return [i for i in resources.estimate(board).items if "sp_row" in i.name or "sp_rows" in i.name]
    assert rows_items("pynq_z2")
    for b in ROWLESS:
        assert not rows_items(b), b


@pytest.mark.parametrize("board", ["zcu102", "aup_zu3"])
def test_verify_fault_cases_include_the_refusal_and_both_engines_agree(board):
    """`ctrain verify`'s fault cases on a board without the row-tile path
    include valid sparse instructions only that path would run: FAULT_TILE
    in both engines, bit for bit (cross_check.REFUSAL_SHARE)."""
    csim_or_skip(board)
    from ctrain.tools.cross_check import fault_case, format_report, verify
    rng = np.random.default_rng(3)
    case, args, what = fault_case(rng, [Op.SCONV_FP, Op.SCONV_EB, Op.SCONV_WG], tries=200, board=board)
    for _ in range(40):
        if "refused" in what:
            break
        case, args, what = fault_case(rng, [Op.SCONV_FP, Op.SCONV_EB, Op.SCONV_WG], board=board)
    assert "refused" in what
    f = validate.fields(case.ddr[case.prog:case.prog + INSN_BYTES].view(INSN_DTYPE)[0])
    assert validate.sparse_refused(f, board)
    assert validate.check(f, case.ddr.size, case.table_len, case.ddr, board)[0] == Fault.TILE
    report = verify("csim", 0, 5, ops=[Op.SCONV_FP, Op.SCONV_EB, Op.SCONV_WG], progress=False,
                    faults=60, board=board)
    assert report["mismatches"] == 0, format_report(report)
    assert report["per_fault"]["FAULT_TILE"]["cases"] >= 5


def test_verify_fault_cases_give_a_refused_instruction_a_bad_index():
    """Half of verify's refusal cases also corrupt the index: FAULT_INDEX
    before FAULT_TILE in both engines (session 24; the numpy engine had the
    refusal first)."""
    from ctrain.tools.cross_check import fault_case
    board = "zcu102"
    csim = csim_or_skip(board)
    rng = np.random.default_rng(5)
    seen = 0
    for _ in range(400):
        case, args, what = fault_case(rng, [Op.SCONV_FP, Op.SCONV_EB, Op.SCONV_WG], board=board)
        if "refused" not in what or "index" not in what:
            continue
        f = _insn(case)
        fault = validate.check(f, case.ddr.size, case.table_len, case.ddr, board)[0]
        results = []
        for engine in (NumpyEngine(board=board), csim):
            ddr = case.ddr.copy()
            results.append((tuple(engine.run(ddr, *args)), ddr))
        assert results[0][0] == results[1][0] and np.array_equal(results[0][1], results[1][1]), what
        assert results[0][0][0] == fault and fault in (Fault.INDEX, Fault.TILE), what
        seen += fault == Fault.INDEX
    assert seen >= 5


def test_a_board_with_the_row_tile_path_draws_no_refusal():
    from ctrain.tools.random_insn import random_case
    with pytest.raises(AssertionError, match="refuses"):
        random_case(np.random.default_rng(0), op=Op.SCONV_FP, board="pynq_z2", refused=True)
