"""A plain, slow integer reference of docs/numeric.md for small test cases.

Written straight from the document and sharing no code with the engine: Python
ints for all rounding and saturation, int64 einsum over explicitly zero-padded
arrays for the convolution sums, loops for everything else. It trusts its
input: instructions are assumed valid (the engine tests check faults apart).
"""
import struct

import numpy as np

from ctrain.isa import INSN_DTYPE, Flag, Op

Q8 = 127
Q32 = 2**31 - 1


def rshift_round(x, s):
    s = max(-62, min(62, s))
    if s > 0:
        return (x + (1 << (s - 1))) >> s
    if s == 0:
        return x
    lim = (1 << 62) >> -s
    if x > lim:
        return 1 << 62
    if x < -lim:
        return -(1 << 62)
    return x * (1 << -s)


def rshift_even(x, s):
    """rshift_round, ties to even (ADD's store)."""
    s = max(-62, min(62, s))
    if s <= 0:
        return rshift_round(x, s)
    q, r = x >> s, x & ((1 << s) - 1)
    half = 1 << (s - 1)
    return q + (1 if r > half or (r == half and q & 1) else 0)


def clamp(x, lim):
    return max(-lim, min(lim, x))


class Stats:
    """Accumulates one instruction's ctrain_stats_t."""

    def __init__(self, exp):
        self.exp, self.max_abs, self.sat, self.nnz, self.count = exp, 0, 0, 0, 0

    def peak(self, v):
        self.max_abs = max(self.max_abs, abs(v))

    def store(self, v, lim=None):
        """Count one stored output, saturating it to +-lim if given; returns it."""
        if lim is not None and clamp(v, lim) != v:
            self.sat += 1
            v = clamp(v, lim)
        self.nnz += v != 0
        self.count += 1
        return v

    def pack(self):
        exp = (self.exp + 2**31) % 2**32 - 2**31
        return struct.pack("<qiIIIII", self.max_abs, exp, self.sat, self.nnz, self.count, 0, 0)


class Machine:
    def __init__(self, ddr, table, table_len):
        self.ddr = ddr
        self.table = [int(v) for v in ddr[table:table + 4 * table_len].view("<i4")]

    def read(self, addr, dtype, shape):
        count = int(np.prod(shape))
        size = np.dtype(dtype).itemsize
        return self.ddr[addr:addr + size * count].view(dtype).astype(np.int64).reshape(shape)

    def write(self, addr, values, dtype):
        raw = np.array(values, dtype=dtype).reshape(-1).view(np.uint8)
        self.ddr[addr:addr + raw.size] = raw

    def e(self, slot):
        return self.table[slot]


def _padded(a, p):
    n, c, h, w = a.shape
    out = np.zeros((n, c, h + 2 * p, w + 2 * p), np.int64)
    out[:, :, p:p + h, p:p + w] = a
    return out


def _shape(i):
    return [int(i[k]) for k in ("n", "c_in", "h_in", "w_in", "c_out", "h_out", "w_out",
                                "k_h", "k_w", "stride", "pad")]


def conv_fp(m, i, wt=None):
    n, ci, h, w, co, ho, wo, kh, kw, s, p = _shape(i)
    a = _padded(m.read(int(i["src"]), np.int8, (n, ci, h, w)), p)
    if wt is None:
        wt = m.read(int(i["src2"]), np.int8, (co, ci, kh, kw))
    acc = np.zeros((n, co, ho, wo), np.int64)
    for oy in range(ho):
        for ox in range(wo):
            win = a[:, :, oy * s:oy * s + kh, ox * s:ox * s + kw]
            acc[:, :, oy, ox] = np.einsum("nchw,ochw->no", win, wt)
    e_acc = m.e(int(i["e_src"])) + m.e(int(i["e_src2"]))
    bias = m.read(int(i["src3"]), "<i4", (co,)) if i["flags"] & Flag.BIAS else None
    st = Stats(e_acc)
    out = []
    for (nn, c, y, x), v in np.ndenumerate(acc):
        v = int(v)
        if bias is not None:
            v += rshift_round(int(bias[c]), e_acc - m.e(int(i["e_src3"])))
        if i["flags"] & Flag.RELU:
            v = max(v, 0)
        st.peak(v)
        out.append(st.store(rshift_round(v, m.e(int(i["e_dst"])) - e_acc), Q8))
    m.write(int(i["dst"]), out, np.int8)
    return st


def conv_eb(m, i, wt=None, mask_field="aux"):
    n, ci, h, w, co, ho, wo, kh, kw, s, p = _shape(i)
    err = m.read(int(i["src"]), np.int8, (n, co, ho, wo))
    if wt is None:
        wt = m.read(int(i["src2"]), np.int8, (co, ci, kh, kw))
    accp = np.zeros((n, ci, h + 2 * p, w + 2 * p), np.int64)
    for oy in range(ho):
        for ox in range(wo):
            accp[:, :, oy * s:oy * s + kh, ox * s:ox * s + kw] += np.einsum(
                "no,ochw->nchw", err[:, :, oy, ox], wt)
    acc = accp[:, :, p:p + h, p:p + w]
    masked = i["flags"] & Flag.RELU_MASK
    act = m.read(int(i[mask_field]), np.int8, (n, ci, h, w)) if masked else None
    e_acc = m.e(int(i["e_src"])) + m.e(int(i["e_src2"]))
    st = Stats(e_acc)
    out = []
    for idx, v in np.ndenumerate(acc):
        v = 0 if masked and act[idx] <= 0 else int(v)
        st.peak(v)
        out.append(st.store(rshift_round(v, m.e(int(i["e_dst"])) - e_acc), Q8))
    m.write(int(i["dst"]), out, np.int8)
    return st


def conv_wg(m, i, kept=None):
    """CONV_WG; with `kept` (a list of (row, column) of the weight matrix
    [c_out, c_in*kh*kw]) only those gradients are stored, in that order."""
    n, ci, h, w, co, ho, wo, kh, kw, s, p = _shape(i)
    err = m.read(int(i["src"]), np.int8, (n, co, ho, wo))
    a = _padded(m.read(int(i["src2"]), np.int8, (n, ci, h, w)), p)
    gw = np.zeros((co, ci, kh, kw), np.int64)
    for oy in range(ho):
        for ox in range(wo):
            win = a[:, :, oy * s:oy * s + kh, ox * s:ox * s + kw]
            gw += np.einsum("no,nchw->ochw", err[:, :, oy, ox], win)
    e_src, e_dst = m.e(int(i["e_src"])), m.e(int(i["e_dst"]))
    st = Stats(e_dst)
    out = []
    flat = gw.reshape(co, -1)
    for v in (flat.reshape(-1) if kept is None else [flat[r, c] for r, c in kept]):
        v = rshift_round(int(v), e_dst - (e_src + m.e(int(i["e_src2"]))))
        st.peak(v)
        out.append(st.store(v, Q32))
    m.write(int(i["dst"]), out, "<i4")
    if i["flags"] & Flag.BIAS:
        out = []
        for c in range(co):
            v = rshift_round(sum(int(x) for x in err[:, c].reshape(-1)), e_dst - e_src)
            st.peak(v)
            out.append(st.store(v, Q32))
        m.write(int(i["dst2"]), out, "<i4")
    return st


def update(m, i):
    count, count_w = int(i["count"]), int(i["count_w"])
    lr_m, lr_s, mu_m, mu_s, wd_m, wd_s = (m.e(int(i["e_par"]) + k) for k in range(6))
    e_g, e_m, e_q = m.e(int(i["e_src"])), m.e(int(i["e_src2"])), m.e(int(i["e_dst"]))
    g = m.read(int(i["src"]), "<i4", (count,))
    w = m.read(int(i["src2"]), "<i4", (count,))
    v = m.read(int(i["src3"]), "<i4", (count,))
    mask = m.read(int(i["aux"]), np.uint8, (count_w,))
    st = Stats(e_m)
    new_w, new_v, q = [], [], []
    for k in range(count):
        gk, wk, vk = int(g[k]), int(w[k]), int(v[k])
        t_g = clamp(rshift_round(lr_m * gk, lr_s + e_m - e_g), Q32)
        t_wd = clamp(rshift_round(lr_m * clamp(rshift_round(wd_m * wk, wd_s), Q32), lr_s), Q32)
        t_mu = clamp(rshift_round(mu_m * vk, mu_s), Q32)
        v2 = clamp(t_mu + t_g + t_wd, Q32)
        w2 = clamp(wk - v2, Q32)
        if k < count_w and mask[k] == 0:
            w2, v2 = 0, 0
        if k < count_w:
            st.peak(w2)
            q.append(st.store(rshift_round(w2, e_q - e_m), Q8))
        new_w.append(w2)
        new_v.append(v2)
    m.write(int(i["src2"]), new_w, "<i4")
    m.write(int(i["src3"]), new_v, "<i4")
    m.write(int(i["dst"]), q, np.int8)
    return st


def relu(m, i):
    count = int(i["count"])
    x = m.read(int(i["src"]), np.int8, (count,))
    act = m.read(int(i["aux"]), np.int8, (count,)) if i["op"] == Op.RELU_BP else None
    st = Stats(m.e(int(i["e_src"])))
    out = []
    for k in range(count):
        if act is None:
            o = max(int(x[k]), 0)
        else:
            o = int(x[k]) if act[k] > 0 else 0
        st.peak(o)
        out.append(st.store(o))
    m.write(int(i["dst"]), out, np.int8)
    return st


def pool_fp(m, i):
    n, c, h, w, _, ho, wo, kh, kw, s, _ = _shape(i)
    x = m.read(int(i["src"]), np.int8, (n, c, h, w))
    st = Stats(m.e(int(i["e_src"])))
    out = []
    for nn in range(n):
        for cc in range(c):
            for y in range(ho):
                for xx in range(wo):
                    o = max(int(x[nn, cc, y * s + ky, xx * s + kx])
                            for ky in range(kh) for kx in range(kw))
                    st.peak(o)
                    out.append(st.store(o))
    m.write(int(i["dst"]), out, np.int8)
    return st


def pool_bp(m, i):
    n, c, h, w, _, ho, wo, kh, kw, s, _ = _shape(i)
    err = m.read(int(i["src"]), np.int8, (n, c, ho, wo))
    act = m.read(int(i["aux"]), np.int8, (n, c, h, w))
    acc = [[[[0] * w for _ in range(h)] for _ in range(c)] for _ in range(n)]
    for nn in range(n):
        for cc in range(c):
            for y in range(ho):
                for xx in range(wo):
                    best = None
                    for ky in range(kh):
                        for kx in range(kw):
                            val = int(act[nn, cc, y * s + ky, xx * s + kx])
                            if best is None or val > best[0]:
                                best = (val, y * s + ky, xx * s + kx)
                    if i["flags"] & Flag.RELU_MASK and best[0] <= 0:
                        continue
                    acc[nn][cc][best[1]][best[2]] += int(err[nn, cc, y, xx])
    st = Stats(m.e(int(i["e_src"])))
    out = []
    for v in np.array(acc, dtype=object).reshape(-1):
        o = st.store(v, Q8)
        st.peak(o)
        out.append(o)
    m.write(int(i["dst"]), out, np.int8)
    return st


def _u(m, addr, size, k):
    """Little-endian unsigned entry k of size bytes at addr, as a Python int."""
    at = addr + size * k
    return int.from_bytes(bytes(m.ddr[at:at + size]), "little")


def sparse_index(m, i):
    """The index block at aux, read entry by entry from docs/isa.md's table:
    (rowptr, col, tptr, tpos, trow) as lists of Python ints."""
    rows = int(i["c_out"])
    cols = int(i["c_in"]) * int(i["k_h"]) * int(i["k_w"])
    z = int(i["count"])
    at = int(i["aux"])
    rowptr = [_u(m, at, 4, k) for k in range(rows + 1)]
    at += 4 * (rows + 1)
    col = [_u(m, at, 2, k) for k in range(z)]
    at += 2 * z + (2 if z % 2 else 0)
    tptr = [_u(m, at, 4, k) for k in range(cols + 1)]
    at += 4 * (cols + 1)
    tpos = [_u(m, at, 4, k) for k in range(z)]
    at += 4 * z
    trow = [_u(m, at, 2, k) for k in range(z)]
    return rowptr, col, tptr, tpos, trow


def _dense_weights(m, i, transposed):
    """W[co, c] = sum of vals over the entries of (co, c): the CSR, or for EB the
    transposed index (column c's entries q name vals[tpos[q]] of row trow[q])."""
    rowptr, col, tptr, tpos, trow = sparse_index(m, i)
    co, ci, kh, kw = (int(i[k]) for k in ("c_out", "c_in", "k_h", "k_w"))
    vals = [int(v) for v in m.read(int(i["src2"]), np.int8, (int(i["count"]),))]
    wd = np.zeros((co, ci * kh * kw), np.int64)
    if transposed:
        for c in range(ci * kh * kw):
            for q in range(tptr[c], tptr[c + 1]):
                wd[trow[q], c] += vals[tpos[q]]
    else:
        for r in range(co):
            for p in range(rowptr[r], rowptr[r + 1]):
                wd[r, col[p]] += vals[p]
    return wd.reshape(co, ci, kh, kw)


def sconv_fp(m, i):
    return conv_fp(m, i, _dense_weights(m, i, transposed=False))


def sconv_eb(m, i):
    return conv_eb(m, i, _dense_weights(m, i, transposed=True), mask_field="src3")


def sconv_wg(m, i):
    rowptr, col, _, _, _ = sparse_index(m, i)
    kept = [(r, col[p]) for r in range(int(i["c_out"])) for p in range(rowptr[r], rowptr[r + 1])]
    return conv_wg(m, i, kept)


def bn(m, i):
    n, c, h, w = (int(i[k]) for k in ("n", "c_in", "h_in", "w_in"))
    x = m.read(int(i["src"]), np.int8, (n, c, h, w))
    a = m.read(int(i["src2"]), "<i4", (c,))
    fp = i["op"] == Op.BN_FP
    b = m.read(int(i["src3"]), "<i4", (c,)) if fp else None
    masked = not fp and i["flags"] & Flag.RELU_MASK
    act = m.read(int(i["aux"]), np.int8, (n, c, h, w)) if masked else None
    e_acc = m.e(int(i["e_src"])) + m.e(int(i["e_src2"]))
    st = Stats(e_acc)
    out = []
    for (nn, cc, y, xx), v in np.ndenumerate(x):
        acc = int(v) * int(a[cc])
        if fp:
            acc += rshift_round(int(b[cc]), e_acc - m.e(int(i["e_src3"])))
            if i["flags"] & Flag.RELU:
                acc = max(acc, 0)
        elif masked and act[nn, cc, y, xx] <= 0:
            acc = 0
        st.peak(acc)
        out.append(st.store(rshift_round(acc, m.e(int(i["e_dst"])) - e_acc), Q8))
    m.write(int(i["dst"]), out, np.int8)
    return st


def add(m, i):
    """ADD: both terms at e_acc = min(e_a, e_b), exact left shifts."""
    count = int(i["count"])
    a, b = m.read(int(i["src"]), np.int8, (count,)), m.read(int(i["src2"]), np.int8, (count,))
    masked = i["flags"] & Flag.RELU_MASK
    act = m.read(int(i["aux"]), np.int8, (count,)) if masked else None
    e_a, e_b = m.e(int(i["e_src"])), m.e(int(i["e_src2"]))
    e_acc = min(e_a, e_b)
    st = Stats(e_acc)
    out = []
    for k in range(count):
        acc = rshift_round(int(a[k]), e_acc - e_a) + rshift_round(int(b[k]), e_acc - e_b)
        if masked and act[k] <= 0:
            acc = 0
        if i["flags"] & Flag.RELU:
            acc = max(acc, 0)
        st.peak(acc)
        out.append(st.store(rshift_even(acc, m.e(int(i["e_dst"])) - e_acc), Q8))
    m.write(int(i["dst"]), out, np.int8)
    return st


def avgpool(m, i):
    """AVGPOOL_FP: window sum times R; AVGPOOL_BP: each window's error times R
    added to every input position it covers."""
    n, c, h, w, _, ho, wo, kh, kw, s, _ = _shape(i)
    r = ((1 << 30) + (kh * kw) // 2) // (kh * kw)
    fp = i["op"] == Op.AVGPOOL_FP
    e_acc = m.e(int(i["e_src"])) - 30
    st = Stats(e_acc)
    if fp:
        x = m.read(int(i["src"]), np.int8, (n, c, h, w))
        accs = [sum(int(x[nn, cc, y * s + ky, xx * s + kx]) for ky in range(kh) for kx in range(kw)) * r
                for nn in range(n) for cc in range(c) for y in range(ho) for xx in range(wo)]
    else:
        err = m.read(int(i["src"]), np.int8, (n, c, ho, wo))
        masked = i["flags"] & Flag.RELU_MASK
        act = m.read(int(i["aux"]), np.int8, (n, c, h, w)) if masked else None
        acc = np.zeros((n, c, h, w), dtype=object)
        for nn in range(n):
            for cc in range(c):
                for y in range(ho):
                    for xx in range(wo):
                        for ky in range(kh):
                            for kx in range(kw):
                                acc[nn, cc, y * s + ky, xx * s + kx] += int(err[nn, cc, y, xx])
        accs = [0 if masked and act[idx] <= 0 else int(v) * r for idx, v in np.ndenumerate(acc)]
    out = []
    for v in accs:
        st.peak(v)
        out.append(st.store(rshift_round(v, m.e(int(i["e_dst"])) - e_acc), Q8))
    m.write(int(i["dst"]), out, np.int8)
    return st


OPS = {Op.CONV_FP: conv_fp, Op.CONV_EB: conv_eb, Op.CONV_WG: conv_wg, Op.UPDATE: update,
       Op.RELU_FP: relu, Op.RELU_BP: relu, Op.POOL_FP: pool_fp, Op.POOL_BP: pool_bp,
       Op.SCONV_FP: sconv_fp, Op.SCONV_EB: sconv_eb, Op.SCONV_WG: sconv_wg,
       Op.BN_FP: bn, Op.BN_BP: bn, Op.ADD: add, Op.AVGPOOL_FP: avgpool, Op.AVGPOOL_BP: avgpool}


def run(ddr, prog, n_insn, table, table_len):
    """Execute a valid program in place on ddr; returns (status, pc, fault_addr)."""
    m = Machine(ddr, table, table_len)
    for pc in range(n_insn):
        i = ddr[prog + 128 * pc:prog + 128 * (pc + 1)].view(INSN_DTYPE)[0]
        if i["op"] == Op.HALT:
            return 0, pc, 0
        st = OPS[int(i["op"])](m, i)
        stats = int(i["stats"])
        ddr[stats:stats + 32] = np.frombuffer(st.pack(), np.uint8)
    return 0, n_insn, 0
