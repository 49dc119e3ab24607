"""The numpy engine: runs an instruction stream against a DDR image bit-exactly
as docs/numeric.md specifies, fast enough to train on.

Convolution sums go through float BLAS only where they are provably exact
(docs/numeric.md "Exactness"); everything after the sum is int64. Each
instruction is validated (ctrain.validate) and computed completely before any
of its results is written, so a fault leaves its outputs untouched and
in-place RELU/UPDATE operands read their old values.
"""
import math

import numpy as np

from .. import conv_ops
from ..fixedpoint import max_abs, rshift_round, sat8, sat32
from ..isa import INSN_BYTES, INSN_DTYPE, PAR, STATS_DTYPE, Fault, Flag, Op
from ..validate import check, check_program, fields, terms_per_output
from . import RunResult

_U32 = 1 << 32


def blas_dtype(terms):
    """float32 when a sum of `terms` int8 products (each below 2^14 in magnitude)
    is exact in float32 whatever the order, else float64."""
    return np.float32 if terms * (1 << 14) < (1 << 24) else np.float64


class _Insn:
    """One decoded instruction with typed views of its operands in the DDR image."""

    def __init__(self, ddr, f, table):
        self.ddr, self.f, self.table = ddr, f, table

    def e(self, slot_field, offset=0):
        """Table entry at the slot the field names (plus offset), as a Python int."""
        return int(self.table[self.f[slot_field] + offset])

    def i8(self, field, shape):
        addr = self.f[field]
        return self.ddr[addr:addr + math.prod(shape)].view(np.int8).reshape(shape)

    def i32(self, field, count):
        addr = self.f[field]
        return self.ddr[addr:addr + 4 * count].view("<i4")

    def has(self, flag):
        return bool(self.f["flags"] & flag)

    def dims(self, *names):
        return tuple(self.f[name] for name in names)


def _stats(peak, exp, sat, outputs):
    """(max_abs, exp, sat, nnz, count) with nnz and count over the stored outputs."""
    nnz = sum(int(np.count_nonzero(o)) for o in outputs)
    count = sum(o.size for o in outputs)
    return peak, exp, sat, nnz, count


def _conv_fp(ins):
    n, ci, h, w, co, kh, kw, s, p = ins.dims("n", "c_in", "h_in", "w_in", "c_out",
                                             "k_h", "k_w", "stride", "pad")
    ft = blas_dtype(terms_per_output(ins.f))
    act = ins.i8("src", (n, ci, h, w)).astype(ft)
    wt = ins.i8("src2", (co, ci, kh, kw)).astype(ft)
    acc = conv_ops.conv2d(act, wt, s, p).astype(np.int64)
    e_acc = ins.e("e_src") + ins.e("e_src2")
    if ins.has(Flag.BIAS):
        bias = rshift_round(ins.i32("src3", co), e_acc - ins.e("e_src3"))
        acc += bias.reshape(1, co, 1, 1)
    if ins.has(Flag.RELU):
        np.maximum(acc, 0, out=acc)
    out, sat = sat8(rshift_round(acc, ins.e("e_dst") - e_acc))
    return [("dst", out)], _stats(max_abs(acc), e_acc, sat, [out])


def _conv_eb(ins):
    n, ci, h, w, co, ho, wo, kh, kw, s, p = ins.dims(
        "n", "c_in", "h_in", "w_in", "c_out", "h_out", "w_out", "k_h", "k_w", "stride", "pad")
    ft = blas_dtype(terms_per_output(ins.f))
    err = ins.i8("src", (n, co, ho, wo)).astype(ft)
    wt = ins.i8("src2", (co, ci, kh, kw)).astype(ft)
    acc = conv_ops.conv2d_grad_input(err, wt, (h, w), s, p).astype(np.int64)
    if ins.has(Flag.RELU_MASK):
        acc[ins.i8("aux", (n, ci, h, w)) <= 0] = 0
    e_acc = ins.e("e_src") + ins.e("e_src2")
    out, sat = sat8(rshift_round(acc, ins.e("e_dst") - e_acc))
    return [("dst", out)], _stats(max_abs(acc), e_acc, sat, [out])


def _conv_wg(ins):
    n, ci, h, w, co, ho, wo, kh, kw, s, p = ins.dims(
        "n", "c_in", "h_in", "w_in", "c_out", "h_out", "w_out", "k_h", "k_w", "stride", "pad")
    ft = blas_dtype(terms_per_output(ins.f))
    err8 = ins.i8("src", (n, co, ho, wo))
    act = ins.i8("src2", (n, ci, h, w)).astype(ft)
    gw = conv_ops.conv2d_grad_weight(err8.astype(ft), act, (kh, kw), s, p).astype(np.int64)
    e_dst = ins.e("e_dst")
    v_w = rshift_round(gw, e_dst - (ins.e("e_src") + ins.e("e_src2")))
    dw, sat = sat32(v_w)
    writes, peak = [("dst", dw)], max_abs(v_w)
    if ins.has(Flag.BIAS):
        v_b = rshift_round(err8.sum(axis=(0, 2, 3), dtype=np.int64), e_dst - ins.e("e_src"))
        db, sat_b = sat32(v_b)
        writes.append(("dst2", db))
        peak, sat = max(peak, max_abs(v_b)), sat + sat_b
    return writes, _stats(peak, e_dst, sat, [o for _, o in writes])


def _update(ins):
    count, count_w = ins.dims("count", "count_w")
    lr_m, lr_s, mu_m, mu_s, wd_m, wd_s = (ins.e("e_par", PAR[k]) for k in
                                          ("LR_M", "LR_S", "MU_M", "MU_S", "WD_M", "WD_S"))
    e_g, e_m, e_q = ins.e("e_src"), ins.e("e_src2"), ins.e("e_dst")
    g = ins.i32("src", count).astype(np.int64)
    w = ins.i32("src2", count).astype(np.int64)
    v = ins.i32("src3", count).astype(np.int64)
    t_g = sat32(rshift_round(lr_m * g, lr_s + e_m - e_g))[0]
    decay = sat32(rshift_round(wd_m * w, wd_s))[0].astype(np.int64)
    t_wd = sat32(rshift_round(lr_m * decay, lr_s))[0]
    t_mu = sat32(rshift_round(mu_m * v, mu_s))[0]
    v_new = sat32(t_mu.astype(np.int64) + t_g + t_wd)[0]
    w_new = sat32(w - v_new)[0]
    pruned = np.flatnonzero(ins.i8("aux", (count_w,)) == 0)
    w_new[pruned] = 0
    v_new[pruned] = 0
    q, sat = sat8(rshift_round(w_new[:count_w], e_q - e_m))
    writes = [("src2", w_new), ("src3", v_new), ("dst", q)]
    return writes, (max_abs(w_new[:count_w]), e_m, sat, int(np.count_nonzero(q)), count_w)


def _relu_fp(ins):
    out = np.maximum(ins.i8("src", (ins.f["count"],)), 0)
    return [("dst", out)], _stats(max_abs(out), ins.e("e_src"), 0, [out])


def _relu_bp(ins):
    count = ins.f["count"]
    out = ins.i8("src", (count,)) * (ins.i8("aux", (count,)) > 0)
    return [("dst", out)], _stats(max_abs(out), ins.e("e_src"), 0, [out])


def _pool_fp(ins):
    n, c, h, w, kh, kw, s = ins.dims("n", "c_in", "h_in", "w_in", "k_h", "k_w", "stride")
    out = conv_ops.maxpool2d(ins.i8("src", (n, c, h, w)), (kh, kw), s)
    return [("dst", out)], _stats(max_abs(out), ins.e("e_src"), 0, [out])


def _pool_bp(ins):
    n, c, h, w, ho, wo, kh, kw, s = ins.dims("n", "c_in", "h_in", "w_in", "h_out", "w_out",
                                             "k_h", "k_w", "stride")
    err = ins.i8("src", (n, c, ho, wo)).astype(np.int32)
    dx = conv_ops.maxpool2d_grad(err, ins.i8("aux", (n, c, h, w)), (kh, kw), s,
                                 relu_mask=ins.has(Flag.RELU_MASK))
    out, sat = sat8(dx)
    return [("dst", out)], _stats(max_abs(out), ins.e("e_src"), sat, [out])


_EXECUTE = {
    Op.CONV_FP: _conv_fp, Op.CONV_EB: _conv_eb, Op.CONV_WG: _conv_wg, Op.UPDATE: _update,
    Op.RELU_FP: _relu_fp, Op.RELU_BP: _relu_bp, Op.POOL_FP: _pool_fp, Op.POOL_BP: _pool_bp,
}


def stats_record(peak, exp, sat, nnz, count):
    """The 32-byte ctrain_stats_t (max_abs = peak); exp and the counters wrap to
    32 bits as C's casts would."""
    rec = np.zeros(1, STATS_DTYPE)
    rec["max_abs"] = peak
    rec["exp"] = (exp + (1 << 31)) % _U32 - (1 << 31)
    rec["sat"], rec["nnz"], rec["count"] = sat % _U32, nnz % _U32, count % _U32
    return rec.view(np.uint8)


def _store(ddr, addr, arr):
    ddr[addr:addr + arr.nbytes] = np.ascontiguousarray(arr).view(np.uint8).reshape(-1)


class NumpyEngine:
    """Bit-exact emulation of the accelerator in numpy."""

    name = "numpy"

    def run(self, ddr, prog, n_insn, table, table_len):
        """Execute `n_insn` instructions at DDR offset `prog` with the int32
        parameter table at `table`, in place on `ddr` (a writable 1-D uint8
        array: the whole window); returns RunResult(status, pc, fault_addr).

        The table is read once before the first instruction (the accelerator's
        on-chip copy); each instruction is fetched when it runs."""
        prog, n_insn, table, table_len = int(prog), int(n_insn), int(table), int(table_len)
        fault, addr = check_program(prog, n_insn, table, table_len, ddr.size)
        if fault:
            return RunResult(fault, 0, addr)
        tab = ddr[table:table + 4 * table_len].view("<i4").astype(np.int64)
        for pc in range(n_insn):
            at = prog + pc * INSN_BYTES
            f = fields(ddr[at:at + INSN_BYTES].view(INSN_DTYPE)[0])
            fault, addr = check(f, ddr.size, table_len)
            if fault:
                return RunResult(fault, pc, addr)
            if f["op"] == Op.HALT:
                return RunResult(Fault.NONE, pc, 0)
            writes, stats = _EXECUTE[f["op"]](_Insn(ddr, f, tab))
            for field, arr in writes:
                _store(ddr, f[field], arr)
            _store(ddr, f["stats"], stats_record(*stats))
        return RunResult(Fault.NONE, n_insn, 0)
