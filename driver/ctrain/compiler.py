"""Model + batch size -> instruction streams and a DDR memory plan.

Everything the accelerator touches lives in one arena (the DDR window): the
program, the parameter table, the statistics records, per layer the int8
weights, int32 master weights (weights then biases), momentum, gradients and
the pruning mask, and every activation (kept for WG) and error tensor.
Exponents are table slots, so the streams are written once."""
from dataclasses import dataclass, field

import numpy as np

from . import isa, validate
from .errors import MappingError
from .isa import Flag, Op
from .model import geometry, has_bias, weight_shape

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

    def summary(self):
        groups = {}
        for r in self.regions.values():
            key = r.name.split("_")[0].rstrip("0123456789")
            groups[key] = groups.get(key, 0) + r.nbytes
        return groups


@dataclass
class ParamLayer:
    """Where one Conv2d/Linear layer's state lives (regions) and its table slots."""
    stage: object
    n_w: int
    n_b: int
    w_shape: tuple
    slot_w8: int
    slot_w8_next: int
    slot_m: int
    slot_g: int

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
    const_slots: dict = field(default_factory=dict)

    def segment(self, name):
        start, count = self.segments[name]
        return start, count


class _Slots:
    def __init__(self):
        self.names = {}

    def new(self, name):
        self.names[name] = len(self.names)
        return self.names[name]


def compile_model(model, batch):
    """Lower `model` at batch size `batch`; every instruction is validated
    exactly as the engines will, so nothing unmappable reaches a device."""
    lim = isa.LIMITS
    if not 1 <= batch <= lim["BATCH"]:
        raise MappingError(f"batch size {batch} is beyond the accelerator's 1..{lim['BATCH']}")
    stages = model.stages
    slots = _Slots()
    par_slot = slots.new("par")
    for _ in range(isa.PAR["COUNT"] - 1):
        slots.new(f"par+{len(slots.names)}")

    # activation and error slots; pool/ReLU keep their input's exponent
    act_slots = [slots.new("act0")]
    for st in stages:
        act_slots.append(slots.new(f"act{st.index + 1}") if st.kind == "param" else act_slots[-1])
    err_slots = [None] * (len(stages) + 1)
    err_slots[-1] = slots.new(f"err{len(stages)}")
    for st in reversed(stages):
        err_slots[st.index] = slots.new(f"err{st.index}") if st.kind == "param" else err_slots[st.index + 1]

    plan = MemoryPlan()
    layers = []
    for st in model.param_stages:
        ws = weight_shape(st)
        n_w, n_b = int(np.prod(ws)), (ws[0] if has_bias(st) else 0)
        j = st.param_index
        layers.append(ParamLayer(st, n_w, n_b, ws, slots.new(f"w8_{j}"), slots.new(f"w8next_{j}"),
                                 slots.new(f"m{j}"), slots.new(f"g{j}")))

    first_param = model.param_stages[0].index
    insns, observe, insn_stage, segments = [], [], [], {}

    def emit(stage_index, obs=-1, **fields):
        insns.append(fields)
        observe.append(obs)
        insn_stage.append(stage_index)

    # regions: program and table sizes are known only after emission; plan data first
    for L in layers:
        plan.add(L.region("w"), L.w_shape, np.int8)
        plan.add(L.region("master"), (L.n_w + L.n_b,), np.int32)
        plan.add(L.region("mom"), (L.n_w + L.n_b,), np.int32)
        plan.add(L.region("grad"), (L.n_w + L.n_b,), np.int32)
        plan.add(L.region("mask"), (L.n_w,), np.uint8)
    plan.add("act0", (batch,) + model.input_shape, np.int8)
    for st in stages:
        plan.add(f"act{st.index + 1}", (batch,) + st.out_shape, np.int8)
    for st in stages:
        if st.index + 1 >= first_param + 1:
            plan.add(f"err{st.index + 1}", (batch,) + st.out_shape, np.int8)
    R = plan.regions

    def shape_fields(st):
        c_in, h_in, w_in = st.in_shape
        c_out, h_out, w_out = st.out_shape
        k, s, p = geometry(st)
        return dict(n=batch, c_in=c_in, h_in=h_in, w_in=w_in, c_out=c_out, h_out=h_out, w_out=w_out,
                    k_h=k, k_w=k, stride=s, pad=p)

    # --- FP segment ---
    for st in stages:
        i = st.index
        src, dst = R[f"act{i}"].offset, R[f"act{i + 1}"].offset
        if st.kind == "param":
            L = layers[st.param_index]
            flags = (Flag.RELU if st.relu else 0) | (Flag.BIAS if L.n_b else 0)
            emit(i, act_slots[i + 1], op=Op.CONV_FP, flags=flags, **shape_fields(st),
                 src=src, src2=R[L.region("w")].offset,
                 src3=(R[L.region("master")].offset + 4 * L.n_w) if L.n_b else 0,
                 dst=dst, e_src=act_slots[i], e_src2=L.slot_w8, e_src3=L.slot_m if L.n_b else 0,
                 e_dst=act_slots[i + 1])
        elif st.kind == "pool":
            emit(i, op=Op.POOL_FP, **shape_fields(st), src=src, dst=dst, e_src=act_slots[i])
        else:
            emit(i, op=Op.RELU_FP, count=batch * int(np.prod(st.in_shape)), src=src, dst=dst,
                 e_src=act_slots[i])
    segments["fp"] = (0, len(insns))

    # --- BP segment: per layer EB, WG, UPDATE, last layer first ---
    bp_start = len(insns)
    for st in reversed(stages):
        i = st.index
        if i < first_param:
            break
        err_out = R[f"err{i + 1}"].offset
        prev = stages[i - 1] if i > 0 else None
        mask_prev = prev is not None and prev.kind == "param" and prev.relu
        if st.kind == "param":
            L = layers[st.param_index]
            if i > first_param:
                emit(i, err_slots[i], op=Op.CONV_EB, flags=Flag.RELU_MASK if mask_prev else 0,
                     **shape_fields(st), src=err_out, src2=R[L.region("w")].offset,
                     aux=R[f"act{i}"].offset if mask_prev else 0, dst=R[f"err{i}"].offset,
                     e_src=err_slots[i + 1], e_src2=L.slot_w8, e_dst=err_slots[i])
            emit(i, op=Op.CONV_WG, flags=Flag.BIAS if L.n_b else 0, **shape_fields(st),
                 src=err_out, src2=R[f"act{i}"].offset, dst=R[L.region("grad")].offset,
                 dst2=(R[L.region("grad")].offset + 4 * L.n_w) if L.n_b else 0,
                 e_src=err_slots[i + 1], e_src2=act_slots[i], e_dst=L.slot_g)
            emit(i, L.slot_w8_next, op=Op.UPDATE, count=L.n_w + L.n_b, count_w=L.n_w,
                 src=R[L.region("grad")].offset, src2=R[L.region("master")].offset,
                 src3=R[L.region("mom")].offset, aux=R[L.region("mask")].offset,
                 dst=R[L.region("w")].offset, e_src=L.slot_g, e_src2=L.slot_m,
                 e_dst=L.slot_w8_next, e_par=par_slot)
        elif i > first_param:
            if st.kind == "pool":
                emit(i, op=Op.POOL_BP, flags=Flag.RELU_MASK if mask_prev else 0, **shape_fields(st),
                     src=err_out, aux=R[f"act{i}"].offset, dst=R[f"err{i}"].offset, e_src=err_slots[i + 1])
            else:
                emit(i, op=Op.RELU_BP, count=batch * int(np.prod(st.in_shape)), src=err_out,
                     aux=R[f"act{i + 1}"].offset, dst=R[f"err{i}"].offset, e_src=err_slots[i + 1])
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
                   err_slots, layers, observe, insn_stage, par_slot,
                   const_slots={act_slots[0]: INPUT_EXP})
    _validate(prog)
    return prog


def _validate(prog):
    for k, insn in enumerate(prog.insns):
        fault, addr = validate.check(insn, prog.plan.size, prog.table_len)
        if fault != isa.Fault.NONE:
            st = prog.model.stages[prog.insn_stage[k]]
            raise MappingError(
                f"stage {st.index} ({type(st.layer).__name__}, layers {st.names}) cannot be mapped: "
                f"instruction {k} ({isa.op_name(int(insn['op']))}) fails {isa.fault_name(fault)}"
                f" at 0x{int(addr):x}")
