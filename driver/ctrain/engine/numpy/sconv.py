"""Sparse convolutions (SCONV_FP/EB/WG), beside sconv.cpp and sconv_rows.cpp.

docs/numeric.md defines a sparse convolution as the dense one with the dense
weights W[co, c] = sum of vals over the index entries of (co, c): the CSR for
FP and WG, the transposed index for EB. So the kernels scatter the kept values
into a dense weight matrix (no Python loop over entries: one bincount) and run
the dense convolution with exact BLAS; SCONV_WG computes the dense gradient and
gathers it at the kept positions. Bit-exact by construction; the hardware is
where skipping the pruned products pays.

Generic handlers: they take an operands.Insn and return (writes, stats).
"""
import numpy as np

from ... import conv_ops
from ...fixedpoint import FLOAT32_EXACT, max_abs, rshift_round, sat8, sat32
from ...isa import Flag, Op
from ...validate import index_arrays, sparse_cols, terms_per_output
from .operands import PRODUCT_BOUND, stats


def _blas_dtype(bound):
    """float32 when every partial sum of the products is an integer of magnitude
    below `bound` * 2^14 < 2^24 (docs/numeric.md "Exactness"), else float64."""
    return np.float32 if bound * PRODUCT_BOUND < FLOAT32_EXACT else np.float64


def _row_ids(ptr):
    """Row (or column) number of every entry of a pointer array's ranges."""
    return np.repeat(np.arange(ptr.size - 1, dtype=np.int64), np.diff(ptr.astype(np.int64)))


def _dense(rows_of, cols_of, values, n_rows, n_cols):
    """W[r, c] = sum of values over the entries (r, c), as float64 (exact: |W| <= Z*128)."""
    flat = rows_of * n_cols + cols_of.astype(np.int64)
    return np.bincount(flat, weights=values.astype(np.float64),
                       minlength=n_rows * n_cols).reshape(n_rows, n_cols)


def _sconv_fp(ins):
    n, ci, h, w, co, kh, kw, s, p = ins.dims("n", "c_in", "h_in", "w_in", "c_out",
                                          "k_h", "k_w", "stride", "pad")
    rowptr, col, _, _, _ = index_arrays(ins.ddr, ins.f)
    wd = _dense(_row_ids(rowptr), col, ins.i8("src2", (ins.f["count"],)), co, sparse_cols(ins.f))
    # sum_c |W[co,c] * a| <= (entries of row co) * 2^14, repeated entries included
    ft = _blas_dtype(int(np.diff(rowptr.astype(np.int64)).max()))
    act = ins.i8("src", (n, ci, h, w)).astype(ft)
    acc = conv_ops.conv2d(act, wd.astype(ft).reshape(co, ci, kh, kw), s, p).astype(np.int64)
    e_acc = ins.e("e_src") + ins.e("e_src2")
    if ins.has(Flag.BIAS):
        bias = rshift_round(ins.i32("src3", co), e_acc - ins.e("e_src3"))
        acc += bias.reshape(1, co, 1, 1)
    if ins.has(Flag.RELU):
        np.maximum(acc, 0, out=acc)
    out, sat = sat8(rshift_round(acc, ins.e("e_dst") - e_acc))
    return [("dst", out)], stats(max_abs(acc), e_acc, sat, [out])


def _sconv_eb(ins):
    n, ci, h, w, co, ho, wo, kh, kw, s, p = ins.dims("n", "c_in", "h_in", "w_in", "c_out", "h_out", "w_out", "k_h", "k_w", "stride", "pad")
    k = sparse_cols(ins.f)
    _, _, tptr, tpos, trow = index_arrays(ins.ddr, ins.f)
    vals = ins.i8("src2", (ins.f["count"],))
    # the transposed index: entry q of column c is vals[tpos[q]] in row trow[q]
    cols = _row_ids(tptr)
    wd = _dense(trow.astype(np.int64), cols, vals[tpos], co, k)
    # an input-error output sums over the entries of its channel's kk columns
    per_ch = np.diff(tptr.astype(np.int64)[::kh * kw])
    ft = _blas_dtype(int(per_ch.max()))
    err = ins.i8("src", (n, co, ho, wo)).astype(ft)
    acc = conv_ops.conv2d_grad_input(err, wd.astype(ft).reshape(co, ci, kh, kw), (h, w),
                                     s, p).astype(np.int64)
    if ins.has(Flag.RELU_MASK):
        acc[ins.i8("src3", (n, ci, h, w)) <= 0] = 0
    e_acc = ins.e("e_src") + ins.e("e_src2")
    out, sat = sat8(rshift_round(acc, ins.e("e_dst") - e_acc))
    return [("dst", out)], stats(max_abs(acc), e_acc, sat, [out])


def _sconv_wg(ins):
    n, ci, h, w, co, ho, wo, kh, kw, s, p = ins.dims("n", "c_in", "h_in", "w_in", "c_out", "h_out", "w_out", "k_h", "k_w", "stride", "pad")
    rowptr, col, _, _, _ = index_arrays(ins.ddr, ins.f)
    ft = _blas_dtype(terms_per_output(ins.f))
    err8 = ins.i8("src", (n, co, ho, wo))
    act = ins.i8("src2", (n, ci, h, w)).astype(ft)
    gw = conv_ops.conv2d_grad_weight(err8.astype(ft), act, (kh, kw), s, p)
    kept = gw.reshape(co, -1)[_row_ids(rowptr), col.astype(np.int64)].astype(np.int64)
    e_dst = ins.e("e_dst")
    v_w = rshift_round(kept, e_dst - (ins.e("e_src") + ins.e("e_src2")))
    dw, sat = sat32(v_w)
    writes, peak = [("dst", dw)], max_abs(v_w)
    if ins.has(Flag.BIAS):
        v_b = rshift_round(err8.sum(axis=(0, 2, 3), dtype=np.int64), e_dst - ins.e("e_src"))
        db, sat_b = sat32(v_b)
        writes.append(("dst2", db))
        peak, sat = max(peak, max_abs(v_b)), sat + sat_b
    return writes, stats(peak, e_dst, sat, [o for _, o in writes])


GENERIC = {Op.SCONV_FP: _sconv_fp, Op.SCONV_EB: _sconv_eb, Op.SCONV_WG: _sconv_wg}
