"""Model + batch size -> instruction streams and a DDR memory plan.

Everything the accelerator touches lives in one arena (the DDR window): the
program, the parameter table, the statistics records, per layer the int8
weights, int32 master weights (weights then biases), momentum, gradients and
the pruning mask, and every activation (kept for WG) and error tensor.
Exponents are table slots, so the streams are written once."""
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from . import boards, hostlib, isa, sparse_tiling, validate
from .disk_cache import TilingStore
from .errors import MappingError
from .isa import Flag, Op
from .model import error_needed, fused_relu, has_bias, weight_shape

INPUT_EXP = -7  # images in [0, 1] quantized as q * 2^-7
#: How masked layers run (compile_model's `sparse_exec`, TrainConfig.sparse_exec,
#: `--sparse-exec` of `ctrain train` and `ctrain perf`): "auto" each layer in the
#: form the cycle model (ctrain.perfmodel) finds cheaper on the target board,
#: "always" sparse (SCONV, compressed weights), "never" dense over the masked
#: weights (CONV; UPDATE keeps pruned weights zero). All three compute the same
#: bits (docs/numeric.md "Sparse or dense execution").
SPARSE_EXEC = ("auto", "always", "never")
DEFAULT_SPARSE_EXEC = "auto"
#: The phases whose instructions a masked layer's form decides (its UPDATE too:
#: it runs over the stored weights, kept ones or all).
EXEC_PHASES = ("FP", "EB", "WG", "UPDATE")


@dataclass
class Region:
    name: str
    offset: int
    shape: tuple
    dtype: np.dtype

    @property
    def nbytes(self):
        return int(np.prod(self.shape)) * np.dtype(self.dtype).itemsize


class MemoryPlan:
    """Named, aligned regions of the arena."""

    def __init__(self, align=isa.ALIGN):
        self.align = align
        self.regions = {}
        self.size = 0

    def add(self, name, shape, dtype):
        if name in self.regions:
            raise ValueError(f"region {name!r} planned twice")
        off = -(-self.size // self.align) * self.align
        r = Region(name, off, tuple(int(s) for s in shape), np.dtype(dtype))
        self.regions[name] = r
        self.size = off + max(r.nbytes, 1)
        return r

    def __getitem__(self, name):
        return self.regions[name]


@dataclass
class ParamLayer:
    """Where one Conv2d/Linear layer's state lives (regions) and its table slots.

    A pruned layer has its dense keep-mask `mask`. Run sparse it stores only
    its kept weights (`n_w` is their number) and `index`, the index block the
    accelerator reads; run dense (ExecChoice) it stores every weight and its
    UPDATE masks them, as an unpruned layer's with an all-ones mask."""
    stage: object
    n_w: int
    n_b: int
    w_shape: tuple
    slot_w8: int
    slot_w8_next: int
    slot_m: int
    slot_g: int
    mask: np.ndarray = None
    index: np.ndarray = None
    frozen: bool = False   # fixed weights: no WG or UPDATE is emitted for it

    @property
    def sparse(self):
        """Whether the layer runs sparse (SCONV over compressed weights)."""
        return self.index is not None

    @property
    def kept(self):
        """Weights the mask keeps (every weight when unpruned)."""
        return int(self.mask.sum()) if self.mask is not None else self.n_dense

    def index_arrays(self):
        """(rowptr, col, tptr, tpos, trow) of a sparse layer's index block."""
        f = dict(c_out=self.w_shape[0], c_in=int(np.prod(self.w_shape[1:])), k_h=1, k_w=1, count=self.n_w, aux=0)
        return validate.index_arrays(np.asarray(self.index, np.uint8), f)

    @property
    def n_dense(self):
        return int(np.prod(self.w_shape))

    def gather(self, dense_flat):
        """The stored form of a dense per-weight array."""
        return dense_flat[self.mask.reshape(-1)] if self.sparse else dense_flat

    def scatter(self, stored, fill=0):
        """The dense form of a stored per-weight array (pruned positions = fill)."""
        if not self.sparse:
            return stored
        out = np.full(self.n_dense, fill, dtype=stored.dtype)
        out[self.mask.reshape(-1)] = stored
        return out

    @property
    def j(self):
        return self.stage.param_index

    def region(self, kind):
        return f"{kind}{self.j}"


@dataclass
class Program:
    model: object
    batch: int
    plan: MemoryPlan
    insns: np.ndarray
    segments: dict
    table_len: int
    slot_names: dict
    act_slots: list
    err_slots: list
    layers: list
    observe: list          # per instruction: table slot its stats inform, or -1
    insn_stage: list       # per instruction: stage index
    par_slot: int
    bn_slots: list         # per batch-norm stage: (slot of A, slot of B)
    const_slots: dict = field(default_factory=dict)
    part_slots: dict = field(default_factory=dict)  # slot -> tensor: a fork's partial errors
    freeze: int = 0        # the first `freeze` param layers are frozen (no WG, UPDATE)
    execution: list = None  # per param layer: its ExecChoice (cycles of both forms) when "auto" chose
    board: str = boards.DEFAULT_BOARD  # the board whose buffers and cycle model chose the tilings


@dataclass(frozen=True)
class ExecChoice:
    """How the cycle model chose a layer's form: modeled cycles per phase
    (EXEC_PHASES present in the program) of its dense and of its sparse
    instructions on `board`; a masked layer sparse when that total is at
    most the dense one, an unpruned one (`whole`, every weight kept) only
    when it is less (its index block makes the sparse form the larger
    footprint)."""
    board: str
    dense: dict
    sparse: dict
    whole: bool = False

    @property
    def runs_sparse(self):
        s, d = sum(self.sparse.values()), sum(self.dense.values())
        return s < d if self.whole else s <= d

    def ops(self):
        """{phase: the opcode name chosen}."""
        return {ph: ("S" if self.runs_sparse and ph != "UPDATE" else "") + _PHASE_OPS[ph] for ph in self.dense}


#: The dense opcode of each phase in EXEC_PHASES (the sparse one: S + it, but UPDATE's).
_PHASE_OPS = dict(zip(EXEC_PHASES, ("CONV_FP", "CONV_EB", "CONV_WG", "UPDATE")))


class _Slots:
    def __init__(self):
        self.names = {}

    def new(self, name):
        self.names[name] = len(self.names)
        return self.names[name]


def compile_model(model, batch, masks=None, freeze=0, sparse_exec=DEFAULT_SPARSE_EXEC, board=None):
    """Lower `model` at batch size `batch`; every instruction is validated
    exactly as the engines will, so nothing unmappable reaches a device.
    `masks` (one bool keep-mask or None per param layer) prunes layers;
    `sparse_exec` (SPARSE_EXEC, or a per-layer list of True/False/None, a
    choice made before) says which masked layers run sparse (compressed
    weights, an index block, SCONV opcodes) and which dense over the masked
    weights; "auto" asks the cycle model of `board` (default: the default
    board), choose_execution. `freeze` keeps the first N param layers fixed
    (fine-tuning): no WG or UPDATE for them, and the backward pass stops at
    the first trained layer, since no stage below it needs an error. The
    dense convolutions' tilings are chosen for `board` (choose_tiles): the
    program is the board's.

    The steps: the execution choice, then the lowering (_lower)."""
    _check_arguments(model, batch, freeze)
    masks = _check_masks(model, masks)
    board = board or boards.DEFAULT_BOARD
    sparse, choices = choose_execution(model, batch, masks, freeze, sparse_exec, board)
    prog = _lower(model, batch, _kept_all(model, masks, sparse), freeze, sparse, board)
    prog.execution = choices
    return prog


def _lower(model, batch, masks, freeze, sparse, board, refused_ok=False):
    """The program of a model whose masked layers run sparse where `sparse`
    (per param layer) is true, for `board`. The steps: table slots, parameter
    layers, memory plan, the FP segment (each stage's `fp` emitter,
    STAGE_EMITTERS), the BP segment (per stage, last first: its output error
    made whole, then its `eb` and `wg` emitters), then the program assembled,
    its dense tilings chosen (choose_tiles) and every instruction validated
    (`refused_ok`: but a sparse instruction the board's sparse unit refuses,
    for _refused to find)."""
    ctx = _Context(model, batch, freeze)
    ctx.board, ctx.refused_ok = board, refused_ok
    ctx.layers = _param_layers(model, masks, sparse, ctx.slots, freeze)
    ctx.R = _plan_memory(ctx).regions
    _emit_forward(ctx)
    _emit_backward(ctx)
    return _assemble(ctx)


def _check_arguments(model, batch, freeze):
    lim = isa.LIMITS
    if not 1 <= batch <= lim["BATCH"]:
        raise MappingError(f"batch size {batch} is beyond the accelerator's 1..{lim['BATCH']}")
    n_param = len(model.param_stages)
    if not 0 <= freeze < n_param:
        raise MappingError(f"freeze {freeze}: must leave a layer to train, in 0..{n_param - 1} "
                           f"(the model has {n_param} Conv2d/Linear layers)")


def _check_masks(model, masks):
    """One bool keep-mask (weight-shaped) or None per param layer."""
    n = len(model.param_stages)
    masks = [None] * n if masks is None else list(masks)
    if len(masks) != n:
        raise MappingError(f"{len(masks)} masks for {n} Conv2d/Linear layers")
    out = []
    for st, mask in zip(model.param_stages, masks):
        if mask is not None:
            ws = weight_shape(st)
            mask = np.asarray(mask, bool)
            if mask.size != int(np.prod(ws)):
                raise MappingError(f"layer {st.names[0]}: mask of {mask.size} entries for {int(np.prod(ws))} weights")
            mask = mask.reshape(ws)
            if not mask.any():
                raise MappingError(f"layer {st.names[0]}: every weight is pruned")
        out.append(mask)
    return out


def _sparse_fits(st):
    """Whether a layer's filters fit the sparse index's columns."""
    return int(np.prod(weight_shape(st)[1:])) <= isa.lib.CTRAIN_MAX_SPARSE_COLS


def _kept_all(model, masks, sparse):
    """The masks a program is lowered with: an unpruned layer run sparse
    (choose_execution's True for it) keeps every weight."""
    return [np.ones(weight_shape(st), bool) if m is None and s else m
            for m, s, st in zip(masks, sparse, model.param_stages)]


def _whole_candidates(model, masks, freeze, board):
    """Per param layer whether "auto" also weighs running it, unpruned, on
    the sparse unit with every weight kept: where the sparse position path is
    the design's larger multiplier array (two products per PE on the DSP48E2
    boards, perfmodel.Board.peak_products, against the dense array's L x R x
    C), it is the array a dense convolution may run faster on
    (docs/compression.md "Sparse or dense, per layer"); on the Pynq-Z2, whose
    two arrays are equal, dense layers keep the dense unit (no second
    lowering per compile). A frozen layer (`freeze`: no WG, no UPDATE) keeps
    the dense unit, as it is never pruned either."""
    from . import perfmodel
    b = perfmodel.board(board)
    larger = b.peak_products > b.macs
    return [larger and m is None and j >= freeze and _sparse_fits(st)
            for j, (m, st) in enumerate(zip(masks, model.param_stages))]


def choose_execution(model, batch, masks, freeze, sparse_exec, board=None):
    """The compiler's execution step: (per param layer True = sparse, False =
    dense, None = unpruned and dense; per param layer an ExecChoice or None).

    "always" and "never" decide every masked layer alike; a list is a choice
    made before (a checkpoint's). "auto" lowers the model both ways and asks
    the cycle model (perfmodel, equal to the C-sim's counters) for each
    masked layer's FP, EB, WG and UPDATE cycles in either form with its
    actual index lists; the layer runs sparse when those sum to at most the
    dense ones (a tie keeps the smaller DDR footprint); one whose filters
    exceed the sparse index's columns runs dense. On a board whose sparse
    position path is its larger array (_whole_candidates) "auto" weighs the
    unpruned layers too, each run sparse with every weight kept (True; its
    mask all ones, _kept_all) only when strictly cheaper, as the index block
    makes its footprint larger. A layer's form is one
    for all its phases: its weights, master copy, momentum and gradient are
    stored either compressed (SCONV reads and writes only kept entries) or
    dense (CONV), and the ISA has no instruction moving one layout into the
    other. Every region starts on isa.ALIGN (a multiple of every board's
    beat), so an instruction's counters do not depend on the other layers'
    forms: the sum over layers of the cheaper form is the program's, never
    above either extreme. Deterministic: same masks, board, batch, same
    choice; redone at every compile (the trainer recompiles after pruning)."""
    masked = [m is not None for m in masks]
    board = board or boards.DEFAULT_BOARD
    if not isinstance(sparse_exec, str):
        given = _given_execution(sparse_exec, masked)
        refused, _ = _refused(model, batch, masks, freeze, given, board)
        if any(refused):
            names = ", ".join(st.names[0] for st, r in zip(model.param_stages, refused) if r)
            raise MappingError(f"layers {names} run sparse in this execution choice, and {board}'s sparse unit "
                               f"cannot run them (no row-tile path, docs/overlay.md): compile for a board "
                               f"that can, or choose again (sparse_exec auto)")
        return given, [None] * len(masks)
    if sparse_exec not in SPARSE_EXEC:
        raise MappingError(f"sparse_exec {sparse_exec!r}: choose one of {', '.join(SPARSE_EXEC)}")
    whole = (_whole_candidates(model, masks, freeze, board) if sparse_exec == "auto"
             else [False] * len(masks))
    if sparse_exec != "auto" or not any(masked) and not any(whole):
        sparse = [(sparse_exec != "never") if m else None for m in masked]
        refused, _ = _refused(model, batch, masks, freeze, sparse, board)
        return [False if r else s for s, r in zip(sparse, refused)], [None] * len(masks)
    return _auto_execution(model, batch, masks, freeze, board, whole)


def _refused(model, batch, masks, freeze, sparse, board):
    """(per param layer whether `board`'s sparse unit refuses one of its
    instructions when the layers run as `sparse` says (True: sparse), the
    program lowered to find out or None): a board built without the
    row-tile path (sconv.h CTRAIN_SPARSE_ROWS 0) runs only what the
    position-parallel path takes (FAULT_TILE otherwise:
    sparse_tiling.refused, with the layer's index lists), so such a layer
    runs dense. All False, without lowering, on the other boards. When no
    layer is refused the program is the one `sparse` lowers to (no
    instruction's fault was let through)."""
    out = [False] * len(masks)
    if sparse_tiling.unit(board).rows or not any(sparse):
        return out, None
    prog = _lower(model, batch, _kept_all(model, masks, sparse), freeze, sparse, board, refused_ok=True)
    stage_layer = {L.stage.index: L for L in prog.layers}
    for k, insn in enumerate(prog.insns):
        if int(insn["op"]) in validate.SPARSE_OPS:
            L = stage_layer[prog.insn_stage[k]]
            out[L.j] |= sparse_tiling.refused(validate.fields(insn), board, L.index_arrays())
    return out, prog


def _given_execution(sparse_exec, masked):
    """A choice made before (a checkpoint's) as a list, checked against the
    masks: True/False for each pruned layer, None (dense) or True (sparse,
    every weight kept) for each unpruned one."""
    choice = list(sparse_exec)
    if len(choice) != len(masked) or any(c not in (None, True, False) or (m and c is None) or (not m and c is False)
                                         for c, m in zip(choice, masked)):
        raise MappingError(f"execution choice {choice}: must be True/False per pruned layer, None or True per "
                           f"unpruned one, for {len(masked)} layers")
    return choice


def _auto_execution(model, batch, masks, freeze, board, whole):
    """choose_execution for "auto": each masked layer's form, and each
    `whole` candidate's (unpruned), from the cycle model of the program
    lowered dense and sparse (one whose filters exceed the sparse index's
    columns runs dense)."""
    from . import perfmodel
    masked = [m is not None for m in masks]
    b = perfmodel.board(board or boards.DEFAULT_BOARD)
    fits = [(m or w) and _sparse_fits(st) for m, w, st in zip(masked, whole, model.param_stages)]
    refused, lowered = _refused(model, batch, masks, freeze, fits, b.name)
    if any(refused):   # the sparse program without them
        fits, lowered = [f and not r for f, r in zip(fits, refused)], None
    dense = _phase_cycles(_lower(model, batch, masks, freeze, [False] * len(masks), b.name), b)
    if lowered is None and any(fits):
        lowered = _lower(model, batch, _kept_all(model, masks, fits), freeze, fits, b.name)
    sparse = _phase_cycles(lowered, b) if any(fits) else [None] * len(masks)
    choices = [ExecChoice(b.name, d, s, whole=not m) if f else None
               for f, m, d, s in zip(fits, masked, dense, sparse)]
    out = [(c.runs_sparse if c else False) if m else (True if c and c.runs_sparse else None)
           for m, c in zip(masked, choices)]
    return out, choices


def _phase_cycles(prog, b):
    """Per param layer {phase: modeled cycles} of its convolution and update
    instructions in `prog` on board `b` (perfmodel.cycles)."""
    from . import perfmodel
    stage_layer = {L.stage.index: L for L in prog.layers}
    out = [dict() for _ in prog.layers]
    for k, insn in enumerate(prog.insns):
        L = stage_layer.get(prog.insn_stage[k])
        op = int(insn["op"])
        if L is None or not (op in validate.CONV_OPS or op in validate.SPARSE_OPS or op == Op.UPDATE):
            continue
        ph = perfmodel.PHASES[Op(op)]
        index = L.index_arrays() if op in validate.SPARSE_OPS else None
        out[L.j][ph] = out[L.j].get(ph, 0) + int(perfmodel.cycles(insn, b, index=index))
    return out


class _Context:
    """What the compile steps share: the model, the table's slots (hyper-
    parameters, activations, errors, batch norms), the parameter layers,
    the memory plan's regions and the instructions emitted so far."""

    def __init__(self, model, batch, freeze):
        self.model, self.batch, self.freeze = model, batch, freeze
        self.slots = slots = _Slots()
        self.par_slot = slots.new("par")
        for _ in range(isa.PAR["COUNT"] - 1):
            slots.new(f"par+{len(slots.names)}")
        # activation slots; stages that do not rescale keep their input's exponent
        self.act_slots = [slots.new("act0")]
        for st in model.stages:
            self.act_slots.append(slots.new(f"act{st.index + 1}") if STAGE_EMITTERS[st.kind].rescales
                                  else self.act_slots[st.inputs[0]])
        self.eplan = _ErrorPlan(model, slots, freeze)
        self.err_slots = self.eplan.slots
        self.bn_slots = [(slots.new(f"bnA{k}"), slots.new(f"bnB{k}")) for k in range(len(model.bn_stages))]
        self.layers, self.R = [], None
        self.insns, self.observe, self.insn_stage, self.segments = [], [], [], {}

    def emit(self, stage_index, obs=-1, **fields):
        """Append an instruction of stage `stage_index` whose statistics
        inform table slot `obs` (-1: none)."""
        self.insns.append(fields)
        self.observe.append(obs)
        self.insn_stage.append(stage_index)

    def shape_fields(self, st):
        c_in, h_in, w_in = st.in_shape
        c_out, h_out, w_out = st.out_shape
        k_h, k_w, s, p = st.geom
        return dict(n=self.batch, c_in=c_in, h_in=h_in, w_in=w_in, c_out=c_out, h_out=h_out, w_out=w_out,
                    k_h=k_h, k_w=k_w, stride=s, pad=p)

    def bn_fields(self, st):
        c, h, w = st.in_shape
        return dict(n=self.batch, c_in=c, h_in=h, w_in=w, c_out=c, h_out=h, w_out=w)

    def count(self, shape):
        return self.batch * int(np.prod(shape))


def _param_layers(model, masks, sparse, slots, freeze):
    """A ParamLayer per Conv2d/Linear stage: sizes, table slots, its
    keep-mask, and for a layer run sparse its index block."""
    layers = []
    for st, mask, sp in zip(model.param_stages, masks, sparse):
        ws = weight_shape(st)
        n_w, n_b = int(np.prod(ws)), (ws[0] if has_bias(st) else 0)
        j = st.param_index
        index = None
        if mask is not None and sp:
            if not _sparse_fits(st):
                raise MappingError(f"layer {st.names[0]}: {int(np.prod(ws[1:]))} inputs per filter is beyond "
                                   f"the sparse index's {isa.lib.CTRAIN_MAX_SPARSE_COLS}")
            index, n_w = hostlib.build_index(mask.reshape(ws[0], -1))
        layers.append(ParamLayer(st, n_w, n_b, ws, slots.new(f"w8_{j}"), slots.new(f"w8next_{j}"),
                                 slots.new(f"m{j}"), slots.new(f"g{j}"), mask, index, frozen=j < freeze))
    return layers


def _plan_memory(ctx):
    """The data regions (program, table and statistics are sized after
    emission, _assemble)."""
    model, batch, plan = ctx.model, ctx.batch, MemoryPlan()
    for L in ctx.layers:
        plan.add(L.region("w"), (L.n_w,) if L.sparse else L.w_shape, np.int8)
        if L.sparse:
            plan.add(L.region("idx"), L.index.shape, np.uint8)
        plan.add(L.region("master"), (L.n_w + L.n_b,), np.int32)
        plan.add(L.region("mom"), (L.n_w + L.n_b,), np.int32)
        plan.add(L.region("grad"), (L.n_w + L.n_b,), np.int32)
        plan.add(L.region("mask"), (L.n_w,), np.uint8)
    for st in model.bn_stages:
        plan.add(f"bnA{st.bn_index}", (st.in_shape[0],), np.int32)
        plan.add(f"bnB{st.bn_index}", (st.in_shape[0],), np.int32)
    plan.add("act0", (batch,) + model.input_shape, np.int8)
    for st in model.stages:
        plan.add(f"act{st.index + 1}", (batch,) + st.out_shape, np.int8)
    for name, t in sorted(ctx.eplan.regions, key=lambda r: r[1]):
        plan.add(name, (batch,) + model.stages[t - 1].out_shape, np.int8)
    ctx.plan = plan
    return plan


def _emit_forward(ctx):
    """The FP segment: every stage's forward instruction, in order."""
    for st in ctx.model.stages:
        STAGE_EMITTERS[st.kind].fp(ctx, st, _Forward(ctx, st))
    ctx.segments["fp"] = (0, len(ctx.insns))


def _emit_backward(ctx):
    """The BP segment: per stage, last first, whose output error is needed:
    that error made whole (a fork's sum), then the input error (EB; ReLU
    masks fused), then weight gradient and update (WG, UPDATE)."""
    eplan, bp_start = ctx.eplan, len(ctx.insns)
    for st in reversed(ctx.model.stages):
        if not eplan.needed[st.index + 1]:
            continue
        _emit_join(eplan, st.index + 1, ctx.batch, ctx.R, ctx.emit, ctx.act_slots)
        b = _Backward(ctx, st)
        kind = STAGE_EMITTERS[st.kind]
        if b.dst is not None and kind.eb is not None:
            kind.eb(ctx, st, b)
        if kind.wg is not None:
            kind.wg(ctx, st, b)
    ctx.segments["bp"] = (bp_start, len(ctx.insns) - bp_start)


def _assemble(ctx):
    """Plan program, table and statistics; write the instruction array;
    validate every instruction."""
    plan, n = ctx.plan, len(ctx.insns)
    plan.add("program", (n * isa.INSN_BYTES,), np.uint8)
    table_len = len(ctx.slots.names)
    plan.add("table", (table_len,), np.int32)
    stats_r = plan.add("stats", (n,), isa.STATS_DTYPE)
    arr = isa.new_program(n)
    for k, fields in enumerate(ctx.insns):
        for name, value in fields.items():
            arr[k][name] = int(value)
        arr[k]["stats"] = stats_r.offset + k * isa.STATS_BYTES
    choose_tiles(arr, ctx.board)
    prog = Program(ctx.model, ctx.batch, plan, arr, ctx.segments, table_len, dict(ctx.slots.names),
                   ctx.act_slots, ctx.err_slots, ctx.layers, ctx.observe, ctx.insn_stage, ctx.par_slot,
                   ctx.bn_slots, const_slots={ctx.act_slots[0]: INPUT_EXP}, part_slots=ctx.eplan.part_slots,
                   freeze=ctx.freeze, board=ctx.board)
    _validate(prog, ctx.refused_ok)
    return prog


def choose_tiles(insns, board):
    """The compiler's tiling step: every CONV_FP/EB/WG of `insns` gets the
    tile_g, tile_br and tile_rb the cycle model of `board` finds fastest
    among the tilings that fit its buffers (choose_tiling; never slower in
    the model than the unit's own rule). Per layer and phase: FP, EB and WG
    of one layer sweep different planes and may tile differently."""
    from . import perfmodel
    b = perfmodel.board(board)
    for insn in insns:
        if int(insn["op"]) in validate.CONV_OPS:
            insn["tile_g"], insn["tile_br"], insn["tile_rb"] = choose_tiling(validate.fields(insn), b)
    store = TilingStore.for_board(b)
    if store is not None:
        store.save()


def choose_tiling(f, b):
    """(tile_g, tile_br, tile_rb) of the fastest tiling of CONV_* instruction
    f (a fields dict with its addresses) on board b (perfmodel.Board).

    A roofline search with the cycle model as the roofs: the unit's rule
    and every tiling that fits the buffers (ctrain.tiling.candidates) are
    costed by perfmodel, whose count of the instruction is exact (compute
    steps, each item's pipeline fill, every burst of weights, source rows
    with their halo and outputs, the items' stages one after another as
    the hand-pipelined item loop runs them, and the memory roof, the DDR
    rate); the fewest cycles win, the rule on a tie (then the larger
    group, band, block), so the choice is never slower
    in the model than the rule. Cached per process by what the cycles
    depend on (_tiling_key), and on disk across processes
    (ctrain.disk_cache.TilingStore, keyed also by the package's sources:
    a first compile in a new process is milliseconds, not seconds)."""
    key = _tiling_key(f)
    store = TilingStore.for_board(b)
    if store is None:
        return _choose_tiling(key, b)
    text = store.key(key)
    found = store.get(text)
    if found is None:
        found = _choose_tiling(key, b)
        store.put(text, found)
    return found


def _tiling_key(f):
    """The fields the cycles of a CONV_* instruction depend on: addresses
    only through their offset within a beat (isa.ALIGN is a multiple of
    every board's beat); the slots not at all."""
    return tuple(sorted((k, 0 if k.startswith("e_") else v % isa.ALIGN if k in validate.OPERAND_ORDER
                         else v) for k, v in f.items()))


@lru_cache(maxsize=4096)
def _choose_tiling(key, b):
    from . import perfmodel, tiling
    f = dict(key)
    rule = tiling.conv_plan(dict(f, tile_g=0, tile_br=0, tile_rb=0), b)
    mine = (rule.g, rule.br, rule.rb if f["op"] == Op.CONV_EB and rule.groups == 1 else 0)
    tried = [mine] + sorted((c for c in tiling.candidates(f, b) if c != mine), reverse=True)
    costs = [perfmodel.cycles(dict(f, tile_g=g, tile_br=br, tile_rb=rb), b) for g, br, rb in tried]
    return tried[costs.index(min(costs))]


class _Forward:
    """A stage's forward operands: src (its first input's region), dst (its
    output's), e_in and e_out (their exponent slots)."""

    def __init__(self, ctx, st):
        self.src, self.dst = ctx.R[f"act{st.inputs[0]}"].offset, ctx.R[f"act{st.index + 1}"].offset
        self.e_in, self.e_out = ctx.act_slots[st.inputs[0]], ctx.act_slots[st.index + 1]


class _Backward:
    """A stage's backward operands: err (its whole output error's region) and
    e_err (its slot); u (the input tensor); dst, e_dst, mask: where its share
    of u's error goes (dst None when u's error is not needed) and whether the
    write applies u's ReLU mask."""

    def __init__(self, ctx, st):
        eplan, t = ctx.eplan, st.index + 1
        self.err, self.e_err = ctx.R[eplan.whole[t]].offset, ctx.err_slots[t]
        self.u = u = st.inputs[0]
        self.dst, self.e_dst, self.mask = eplan.dest(u, st) if eplan.needed[u] else (None, None, False)


# --- per stage kind: forward (fp), input error (eb), weight gradient (wg) ---

def _param_fp(ctx, st, io):
    L, R = ctx.layers[st.param_index], ctx.R
    flags = (Flag.RELU if st.relu else 0) | (Flag.BIAS if L.n_b else 0)
    ctx.emit(st.index, io.e_out, op=Op.SCONV_FP if L.sparse else Op.CONV_FP, flags=flags,
             **ctx.shape_fields(st), **_sparse_fields(L, R), src=io.src, src2=R[L.region("w")].offset,
             src3=(R[L.region("master")].offset + 4 * L.n_w) if L.n_b else 0,
             dst=io.dst, e_src=io.e_in, e_src2=L.slot_w8, e_src3=L.slot_m if L.n_b else 0,
             e_dst=io.e_out)


def _param_eb(ctx, st, b):
    L, R = ctx.layers[st.param_index], ctx.R
    act_mask = R[f"act{b.u}"].offset if b.mask else 0
    ctx.emit(st.index, b.e_dst, op=Op.SCONV_EB if L.sparse else Op.CONV_EB,
             flags=Flag.RELU_MASK if b.mask else 0, **ctx.shape_fields(st), **_sparse_fields(L, R),
             src=b.err, src2=R[L.region("w")].offset, dst=R[b.dst].offset,
             **({"src3": act_mask} if L.sparse else {"aux": act_mask}),
             e_src=b.e_err, e_src2=L.slot_w8, e_dst=b.e_dst)


def _param_wg(ctx, st, b):
    """WG, then UPDATE."""
    L, R = ctx.layers[st.param_index], ctx.R
    ctx.emit(st.index, op=Op.SCONV_WG if L.sparse else Op.CONV_WG, flags=Flag.BIAS if L.n_b else 0,
             **ctx.shape_fields(st), **_sparse_fields(L, R),
             src=b.err, src2=R[f"act{b.u}"].offset, dst=R[L.region("grad")].offset,
             dst2=(R[L.region("grad")].offset + 4 * L.n_w) if L.n_b else 0,
             e_src=b.e_err, e_src2=ctx.act_slots[b.u], e_dst=L.slot_g)
    ctx.emit(st.index, L.slot_w8_next, op=Op.UPDATE, count=L.n_w + L.n_b, count_w=L.n_w,
             src=R[L.region("grad")].offset, src2=R[L.region("master")].offset,
             src3=R[L.region("mom")].offset, aux=R[L.region("mask")].offset,
             dst=R[L.region("w")].offset, e_src=L.slot_g, e_src2=L.slot_m,
             e_dst=L.slot_w8_next, e_par=ctx.par_slot)


def _bn_fp(ctx, st, io):
    k, R = st.bn_index, ctx.R
    ctx.emit(st.index, io.e_out, op=Op.BN_FP, flags=Flag.RELU if st.relu else 0, **ctx.bn_fields(st),
             src=io.src, src2=R[f"bnA{k}"].offset, src3=R[f"bnB{k}"].offset, dst=io.dst,
             e_src=io.e_in, e_src2=ctx.bn_slots[k][0], e_src3=ctx.bn_slots[k][1], e_dst=io.e_out)


def _bn_eb(ctx, st, b):
    k, R = st.bn_index, ctx.R
    ctx.emit(st.index, b.e_dst, op=Op.BN_BP, flags=Flag.RELU_MASK if b.mask else 0, **ctx.bn_fields(st),
             src=b.err, src2=R[f"bnA{k}"].offset, aux=R[f"act{b.u}"].offset if b.mask else 0,
             dst=R[b.dst].offset, e_src=b.e_err, e_src2=ctx.bn_slots[k][0], e_dst=b.e_dst)


def _pool_fp(ctx, st, io):
    ctx.emit(st.index, op=Op.POOL_FP, **ctx.shape_fields(st), src=io.src, dst=io.dst, e_src=io.e_in)


def _pool_eb(ctx, st, b):
    ctx.emit(st.index, op=Op.POOL_BP, flags=Flag.RELU_MASK if b.mask else 0, **ctx.shape_fields(st),
             src=b.err, aux=ctx.R[f"act{b.u}"].offset, dst=ctx.R[b.dst].offset, e_src=b.e_err)


def _avgpool_fp(ctx, st, io):
    ctx.emit(st.index, io.e_out, op=Op.AVGPOOL_FP, **ctx.shape_fields(st), src=io.src, dst=io.dst,
             e_src=io.e_in, e_dst=io.e_out)


def _avgpool_eb(ctx, st, b):
    ctx.emit(st.index, b.e_dst, op=Op.AVGPOOL_BP, flags=Flag.RELU_MASK if b.mask else 0,
             **ctx.shape_fields(st), src=b.err, aux=ctx.R[f"act{b.u}"].offset if b.mask else 0,
             dst=ctx.R[b.dst].offset, e_src=b.e_err, e_dst=b.e_dst)


def _add_fp(ctx, st, io):
    ctx.emit(st.index, io.e_out, op=Op.ADD, flags=Flag.RELU if st.relu else 0,
             count=ctx.count(st.out_shape), src=io.src, src2=ctx.R[f"act{st.inputs[1]}"].offset,
             dst=io.dst, e_src=io.e_in, e_src2=ctx.act_slots[st.inputs[1]], e_dst=io.e_out)


def _relu_fp(ctx, st, io):
    ctx.emit(st.index, op=Op.RELU_FP, count=ctx.count(st.in_shape), src=io.src, dst=io.dst, e_src=io.e_in)


def _relu_eb(ctx, st, b):
    ctx.emit(st.index, op=Op.RELU_BP, count=ctx.count(st.in_shape), src=b.err,
             aux=ctx.R[f"act{st.index + 1}"].offset, dst=ctx.R[b.dst].offset, e_src=b.e_err)


@dataclass(frozen=True)
class StageEmitters:
    """How a stage kind (model.Stage.kind) becomes instructions: `fp` its
    forward instruction; `eb` the one writing its input's error (None: it
    needs none, an add passes its output error on as it is, _ErrorPlan);
    `wg` its weight gradient and update (param stages only); `rescales`
    whether its output has an exponent slot of its own (max-pool and ReLU
    keep their input's). A new stage kind is a row here and its emitters."""
    fp: object
    eb: object = None
    wg: object = None
    rescales: bool = True


STAGE_EMITTERS = {
    "param": StageEmitters(_param_fp, _param_eb, _param_wg),
    "bn": StageEmitters(_bn_fp, _bn_eb),
    "pool": StageEmitters(_pool_fp, _pool_eb, rescales=False),
    "avgpool": StageEmitters(_avgpool_fp, _avgpool_eb),
    "add": StageEmitters(_add_fp),
    "relu": StageEmitters(_relu_fp, _relu_eb, rescales=False),
}

#: Stages whose output has an exponent of its own (max-pool and ReLU keep their input's).
RESCALING = tuple(kind for kind, e in STAGE_EMITTERS.items() if e.rescales)


class _ErrorPlan:
    """Where every error tensor lives and which exponent slot it has.

    Tensor t's error is needed when a stage making it or an ancestor has
    parameters. With one consumer, that consumer's backward op writes it
    (masked there when t's producer fused a ReLU), except an add, which needs
    no op: its input's error *is* its output error (same region and slot; a
    RELU_BP masks it into a region of its own when t's producer fused a ReLU).
    With several consumers (a residual fork), each consumer's op writes a
    partial error of its own (an add contributes its output error as it is),
    and ADD instructions sum the partials, the last one masking, into the
    whole error (docs/isa.md "Layer graphs")."""

    def __init__(self, model, slots, freeze=0):
        stages = model.stages
        self.stages = stages
        n = len(stages) + 1
        self.needed = error_needed(stages, freeze)
        self.consumers = [[] for _ in range(n)]
        for st in stages:
            for t in dict.fromkeys(st.inputs):
                self.consumers[t].append(st)
        self.slots = [None] * n
        self.whole = [None] * n       # region holding the whole error of t
        self.parts = {}               # (t, consumer index) -> (region, slot)
        self.part_slots = {}
        self.running = {}             # (t, k) -> slot of a fork's k-th running sum
        self.regions = []             # (region name, tensor) to plan
        last = n - 1
        self.slots[last] = slots.new(f"err{last}")
        self.whole[last] = f"err{last}"
        self.regions.append((f"err{last}", last))
        for t in range(last - 1, -1, -1):
            cons = self.consumers[t]
            if not self.needed[t]:  # a slot all the same: the table's layout is kept for every model
                c = cons[0]
                self.slots[t] = (slots.new(f"err{t}") if c.kind in RESCALING and c.kind != "add"
                                 else self.slots[c.index + 1])
                continue
            masked = fused_relu(stages[t - 1])
            if len(cons) == 1:
                c = cons[0]
                if c.kind == "add" and not masked:
                    self.slots[t], self.whole[t] = self.slots[c.index + 1], self.whole[c.index + 1]
                    continue
                self.slots[t] = (slots.new(f"err{t}") if c.kind in RESCALING and c.kind != "add"
                                 else self.slots[c.index + 1])
            else:
                for c in cons:
                    if c.kind == "add":
                        self.parts[t, c.index] = (self.whole[c.index + 1], self.slots[c.index + 1])
                        continue
                    slot = (slots.new(f"err{t}.{c.index}") if c.kind in RESCALING
                            else self.slots[c.index + 1])
                    self.parts[t, c.index] = (f"err{t}.{c.index}", slot)
                    self.part_slots[slot] = t
                    self.regions.append((f"err{t}.{c.index}", t))
                for k in range(1, len(cons) - 1):   # running sums of a fork of three or more
                    slot = self.running[t, k] = slots.new(f"err{t}+{k}")
                    self.part_slots[slot] = t
                    self.regions.append((f"err{t}+{k}", t))
                self.slots[t] = slots.new(f"err{t}")
            self.whole[t] = f"err{t}"
            self.regions.append((f"err{t}", t))

    def dest(self, u, st):
        """(region, slot, mask) where consumer st writes its share of u's error."""
        if len(self.consumers[u]) == 1:
            return self.whole[u], self.slots[u], fused_relu(self.stages[u - 1]) if u > 0 else False
        region, slot = self.parts[u, st.index]
        return region, slot, False


def _emit_join(eplan, t, batch, R, emit, act_slots):
    """Make tensor t's whole error once its consumers have run: a fork's ADD
    chain over the partials (the last masking with t's activation when its
    producer fused a ReLU), or the mask of an error an add passed through."""
    cons = eplan.consumers[t]
    producer = eplan.stages[t - 1]
    masked = fused_relu(producer)
    count = batch * int(np.prod(producer.out_shape))
    if len(cons) == 1:
        c = cons[0]
        if c.kind == "add" and masked:
            emit(producer.index, op=Op.RELU_BP, count=count, src=R[eplan.whole[c.index + 1]].offset,
                 aux=R[f"act{t}"].offset, dst=R[eplan.whole[t]].offset, e_src=eplan.slots[c.index + 1])
        return
    if not cons:
        return
    parts = [eplan.parts[t, c.index] for c in cons]
    acc_region, acc_slot = parts[0]
    for k, (region, slot) in enumerate(parts[1:], start=1):
        last = k == len(parts) - 1
        out_region = eplan.whole[t] if last else f"err{t}+{k}"
        out_slot = eplan.slots[t] if last else eplan.running[t, k]
        flags = Flag.RELU_MASK if last and masked else 0
        emit(producer.index, out_slot, op=Op.ADD, flags=flags, count=count, src=R[acc_region].offset,
             src2=R[region].offset, aux=R[f"act{t}"].offset if flags else 0, dst=R[out_region].offset,
             e_src=acc_slot, e_src2=slot, e_dst=out_slot)
        acc_region, acc_slot = out_region, out_slot


def _sparse_fields(L, R):
    """count (kept weights) and aux (index block) of a sparse layer's conv ops."""
    return {"count": L.n_w, "aux": R[L.region("idx")].offset} if L.sparse else {}


def _validate(prog, refused_ok=False):
    for k, insn in enumerate(prog.insns):
        fault, addr = validate.check(insn, prog.plan.size, prog.table_len, board=prog.board)
        if refused_ok and fault == isa.Fault.TILE and int(insn["op"]) in validate.SPARSE_OPS:
            continue
        if fault != isa.Fault.NONE:
            st = prog.model.stages[prog.insn_stage[k]]
            raise MappingError(
                f"stage {st.index} ({type(st.layer).__name__}, layers {st.names}) cannot be mapped: "
                f"instruction {k} ({isa.op_name(int(insn['op']))}) fails {isa.fault_name(fault)}"
                f" at 0x{int(addr):x}")
