"""Model + batch size -> instruction streams and a DDR memory plan.

Everything the accelerator touches lives in one arena (the DDR window): the
program, the parameter table, the statistics records, per layer the int8
weights, int32 master weights (weights then biases), momentum, gradients and
the pruning mask, and every activation (kept for WG) and error tensor.
Exponents are table slots, so the streams are written once."""
from dataclasses import dataclass, field

import numpy as np

from . import hostlib, isa, validate
from .errors import MappingError
from .isa import Flag, Op
from .model import error_needed, fused_relu, has_bias, weight_shape

INPUT_EXP = -7  # images in [0, 1] quantized as q * 2^-7


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

    A sparse layer stores only its kept weights: `n_w` is their number, `mask`
    the dense keep-mask and `index` the index block the accelerator reads."""
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

    @property
    def sparse(self):
        return self.mask is not None

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


class _Slots:
    def __init__(self):
        self.names = {}

    def new(self, name):
        self.names[name] = len(self.names)
        return self.names[name]


def compile_model(model, batch, masks=None):
    """Lower `model` at batch size `batch`; every instruction is validated
    exactly as the engines will, so nothing unmappable reaches a device.
    `masks` (one bool keep-mask or None per param layer) makes the masked
    layers sparse: compressed weights, an index block, SCONV opcodes."""
    lim = isa.LIMITS
    if not 1 <= batch <= lim["BATCH"]:
        raise MappingError(f"batch size {batch} is beyond the accelerator's 1..{lim['BATCH']}")
    stages = model.stages
    slots = _Slots()
    par_slot = slots.new("par")
    for _ in range(isa.PAR["COUNT"] - 1):
        slots.new(f"par+{len(slots.names)}")

    # activation and error slots; max-pool/ReLU keep their input's exponent
    act_slots = [slots.new("act0")]
    for st in stages:
        act_slots.append(slots.new(f"act{st.index + 1}") if st.kind in RESCALING
                         else act_slots[st.inputs[0]])
    eplan = _ErrorPlan(model, slots)
    err_slots = eplan.slots
    bn_slots = [(slots.new(f"bnA{k}"), slots.new(f"bnB{k}")) for k in range(len(model.bn_stages))]

    plan = MemoryPlan()
    layers = []
    masks = masks or [None] * len(model.param_stages)
    if len(masks) != len(model.param_stages):
        raise MappingError(f"{len(masks)} masks for {len(model.param_stages)} Conv2d/Linear layers")
    for st, mask in zip(model.param_stages, masks):
        ws = weight_shape(st)
        n_w, n_b = int(np.prod(ws)), (ws[0] if has_bias(st) else 0)
        j = st.param_index
        index = None
        if mask is not None:
            mask = np.asarray(mask, bool).reshape(ws)
            if not mask.any():
                raise MappingError(f"layer {st.names[0]}: every weight is pruned")
            if int(np.prod(ws[1:])) > isa.lib.CTRAIN_MAX_SPARSE_COLS:
                raise MappingError(f"layer {st.names[0]}: {int(np.prod(ws[1:]))} inputs per filter is beyond "
                                   f"the sparse index's {isa.lib.CTRAIN_MAX_SPARSE_COLS}")
            index, n_w = hostlib.build_index(mask.reshape(ws[0], -1))
        layers.append(ParamLayer(st, n_w, n_b, ws, slots.new(f"w8_{j}"), slots.new(f"w8next_{j}"),
                                 slots.new(f"m{j}"), slots.new(f"g{j}"), mask, index))

    insns, observe, insn_stage, segments = [], [], [], {}

    def emit(stage_index, obs=-1, **fields):
        insns.append(fields)
        observe.append(obs)
        insn_stage.append(stage_index)

    # regions: program and table sizes are known only after emission; plan data first
    for L in layers:
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
    for st in stages:
        plan.add(f"act{st.index + 1}", (batch,) + st.out_shape, np.int8)
    for name, t in sorted(eplan.regions, key=lambda r: r[1]):
        plan.add(name, (batch,) + stages[t - 1].out_shape, np.int8)
    R = plan.regions

    def bn_fields(st):
        c, h, w = st.in_shape
        return dict(n=batch, c_in=c, h_in=h, w_in=w, c_out=c, h_out=h, w_out=w)

    def shape_fields(st):
        c_in, h_in, w_in = st.in_shape
        c_out, h_out, w_out = st.out_shape
        k_h, k_w, s, p = st.geom
        return dict(n=batch, c_in=c_in, h_in=h_in, w_in=w_in, c_out=c_out, h_out=h_out, w_out=w_out,
                    k_h=k_h, k_w=k_w, stride=s, pad=p)

    # --- FP segment ---
    for st in stages:
        i = st.index
        src, dst = R[f"act{st.inputs[0]}"].offset, R[f"act{i + 1}"].offset
        if st.kind == "param":
            L = layers[st.param_index]
            flags = (Flag.RELU if st.relu else 0) | (Flag.BIAS if L.n_b else 0)
            emit(i, act_slots[i + 1], op=Op.SCONV_FP if L.sparse else Op.CONV_FP, flags=flags,
                 **shape_fields(st), **_sparse_fields(L, R), src=src, src2=R[L.region("w")].offset,
                 src3=(R[L.region("master")].offset + 4 * L.n_w) if L.n_b else 0,
                 dst=dst, e_src=act_slots[i], e_src2=L.slot_w8, e_src3=L.slot_m if L.n_b else 0,
                 e_dst=act_slots[i + 1])
        elif st.kind == "pool":
            emit(i, op=Op.POOL_FP, **shape_fields(st), src=src, dst=dst, e_src=act_slots[i])
        elif st.kind == "avgpool":
            emit(i, act_slots[i + 1], op=Op.AVGPOOL_FP, **shape_fields(st), src=src, dst=dst,
                 e_src=act_slots[st.inputs[0]], e_dst=act_slots[i + 1])
        elif st.kind == "add":
            emit(i, act_slots[i + 1], op=Op.ADD, flags=Flag.RELU if st.relu else 0,
                 count=batch * int(np.prod(st.out_shape)), src=src, src2=R[f"act{st.inputs[1]}"].offset,
                 dst=dst, e_src=act_slots[st.inputs[0]], e_src2=act_slots[st.inputs[1]],
                 e_dst=act_slots[i + 1])
        elif st.kind == "bn":
            k = st.bn_index
            emit(i, act_slots[i + 1], op=Op.BN_FP, flags=Flag.RELU if st.relu else 0, **bn_fields(st),
                 src=src, src2=R[f"bnA{k}"].offset, src3=R[f"bnB{k}"].offset, dst=dst,
                 e_src=act_slots[i], e_src2=bn_slots[k][0], e_src3=bn_slots[k][1], e_dst=act_slots[i + 1])
        else:
            emit(i, op=Op.RELU_FP, count=batch * int(np.prod(st.in_shape)), src=src, dst=dst,
                 e_src=act_slots[i])
    segments["fp"] = (0, len(insns))

    # --- BP segment: per stage, last first: the error of its output made
    # whole (a fork's sum), then EB (ReLU masks fused), WG, UPDATE ---
    bp_start = len(insns)
    for st in reversed(stages):
        i = st.index
        if not eplan.needed[i + 1]:
            continue
        _emit_join(eplan, i + 1, batch, R, emit, act_slots)
        err_out, e_out = R[eplan.whole[i + 1]].offset, err_slots[i + 1]
        u = st.inputs[0]
        dst, e_dst, mask = eplan.dest(u, st) if eplan.needed[u] else (None, None, False)
        if st.kind == "param":
            L = layers[st.param_index]
            if dst is not None:
                act_mask = R[f"act{u}"].offset if mask else 0
                emit(i, e_dst, op=Op.SCONV_EB if L.sparse else Op.CONV_EB,
                     flags=Flag.RELU_MASK if mask else 0, **shape_fields(st), **_sparse_fields(L, R),
                     src=err_out, src2=R[L.region("w")].offset, dst=R[dst].offset,
                     **({"src3": act_mask} if L.sparse else {"aux": act_mask}),
                     e_src=e_out, e_src2=L.slot_w8, e_dst=e_dst)
            emit(i, op=Op.SCONV_WG if L.sparse else Op.CONV_WG, flags=Flag.BIAS if L.n_b else 0,
                 **shape_fields(st), **_sparse_fields(L, R),
                 src=err_out, src2=R[f"act{u}"].offset, dst=R[L.region("grad")].offset,
                 dst2=(R[L.region("grad")].offset + 4 * L.n_w) if L.n_b else 0,
                 e_src=e_out, e_src2=act_slots[u], e_dst=L.slot_g)
            emit(i, L.slot_w8_next, op=Op.UPDATE, count=L.n_w + L.n_b, count_w=L.n_w,
                 src=R[L.region("grad")].offset, src2=R[L.region("master")].offset,
                 src3=R[L.region("mom")].offset, aux=R[L.region("mask")].offset,
                 dst=R[L.region("w")].offset, e_src=L.slot_g, e_src2=L.slot_m,
                 e_dst=L.slot_w8_next, e_par=par_slot)
        elif st.kind == "add" or dst is None:
            continue  # an add passes its output error to both inputs as it is (ErrorPlan)
        elif st.kind == "bn":
            k = st.bn_index
            emit(i, e_dst, op=Op.BN_BP, flags=Flag.RELU_MASK if mask else 0, **bn_fields(st),
                 src=err_out, src2=R[f"bnA{k}"].offset, aux=R[f"act{u}"].offset if mask else 0,
                 dst=R[dst].offset, e_src=e_out, e_src2=bn_slots[k][0], e_dst=e_dst)
        elif st.kind == "pool":
            emit(i, op=Op.POOL_BP, flags=Flag.RELU_MASK if mask else 0, **shape_fields(st),
                 src=err_out, aux=R[f"act{u}"].offset, dst=R[dst].offset, e_src=e_out)
        elif st.kind == "avgpool":
            emit(i, e_dst, op=Op.AVGPOOL_BP, flags=Flag.RELU_MASK if mask else 0, **shape_fields(st),
                 src=err_out, aux=R[f"act{u}"].offset if mask else 0, dst=R[dst].offset,
                 e_src=e_out, e_dst=e_dst)
        else:
            emit(i, op=Op.RELU_BP, count=batch * int(np.prod(st.in_shape)), src=err_out,
                 aux=R[f"act{i + 1}"].offset, dst=R[dst].offset, e_src=e_out)
    segments["bp"] = (bp_start, len(insns) - bp_start)

    n = len(insns)
    prog_r = plan.add("program", (n * isa.INSN_BYTES,), np.uint8)
    table_len = len(slots.names)
    table_r = plan.add("table", (table_len,), np.int32)
    stats_r = plan.add("stats", (n,), isa.STATS_DTYPE)

    arr = isa.new_program(n)
    for k, fields in enumerate(insns):
        for name, value in fields.items():
            arr[k][name] = int(value)
        arr[k]["stats"] = stats_r.offset + k * isa.STATS_BYTES
    prog = Program(model, batch, plan, arr, segments, table_len, dict(slots.names), act_slots,
                   err_slots, layers, observe, insn_stage, par_slot, bn_slots,
                   const_slots={act_slots[0]: INPUT_EXP}, part_slots=eplan.part_slots)
    _validate(prog)
    return prog


#: Stages whose output has an exponent of its own (max-pool and ReLU keep their input's).
RESCALING = ("param", "bn", "add", "avgpool")


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

    def __init__(self, model, slots):
        stages = model.stages
        self.stages = stages
        n = len(stages) + 1
        self.needed = error_needed(stages)
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


def _validate(prog):
    for k, insn in enumerate(prog.insns):
        fault, addr = validate.check(insn, prog.plan.size, prog.table_len)
        if fault != isa.Fault.NONE:
            st = prog.model.stages[prog.insn_stage[k]]
            raise MappingError(
                f"stage {st.index} ({type(st.layer).__name__}, layers {st.names}) cannot be mapped: "
                f"instruction {k} ({isa.op_name(int(insn['op']))}) fails {isa.fault_name(fault)}"
                f" at 0x{int(addr):x}")
