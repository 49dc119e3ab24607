"""UPDATE (docs/numeric.md), beside update.cpp: SGD with momentum and weight
decay in int64, in place (host_lib's ctrain_update where built, else numpy)."""
import numpy as np

from ...fixedpoint import Q32_MAX, clamp_shift, product_bound, rshift_round, rshift_round_inplace, sat8
from ...isa import PAR, Op
from . import host_kernels as hk
from .operands import combine, extent, i8, i32


def _clip32(x, needed):
    """sat32 without the count (UPDATE counts only its int8 store), skipped when
    bounds prove it cannot clamp."""
    if needed:
        np.clip(x, -Q32_MAX, Q32_MAX, out=x)
    return x


def _update(engine, plan, ddr, tab):
    """docs/numeric.md UPDATE in int64, in place, one pass per step. Clamps that
    bounds from the inputs' extremes prove to be no-ops are skipped."""
    f = plan.f
    count, count_w = f["count"], f["count_w"]
    p = f["e_par"]
    lr_m, lr_s, mu_m, mu_s, wd_m, wd_s = (tab[p + PAR[k]] for k in
                                          ("LR_M", "LR_S", "MU_M", "MU_S", "WD_M", "WD_S"))
    e_g, e_m, e_q = tab[f["e_src"]], tab[f["e_src2"]], tab[f["e_dst"]]
    if plan.uses_c(engine):  # lanes over elements
        args = [hk.i32p(ddr, f["src"]), hk.i32p(ddr, f["src2"]), hk.i32p(ddr, f["src3"]),
                hk.i8p(ddr, f["aux"]), hk.i8p(ddr, f["dst"])]
        consts = (count_w, lr_m, clamp_shift(lr_s + e_m - e_g), clamp_shift(lr_s), mu_m, clamp_shift(mu_s),
                  wd_m, clamp_shift(wd_s), clamp_shift(e_q - e_m))

        def lane(_, a, b):
            st = hk.stats()
            hk.lib.ctrain_update(*args, a, b, *consts, st)
            return hk.result(st)
        peak, sat, nnz = combine(engine.lanes(lane, count, count * 16))
        return peak, e_m, sat, nnz, count_w
    g32 = i32(ddr, f["src"], count)
    w32 = i32(ddr, f["src2"], count)
    v32 = i32(ddr, f["src3"], count)
    s_g = lr_s + e_m - e_g
    b_g = product_bound(extent(g32), lr_m, s_g)
    vel = np.multiply(g32, lr_m, dtype=np.int64)  # products below 2^62: exact
    _clip32(rshift_round_inplace(vel, s_g), b_g > Q32_MAX)  # t_g
    w_ext = extent(w32)
    b_wd = 0
    if wd_m:  # with wd_m = 0 the decay term is exactly 0
        b_d = product_bound(w_ext, wd_m, wd_s)
        d = np.multiply(w32, wd_m, dtype=np.int64)
        _clip32(rshift_round_inplace(d, wd_s), b_d > Q32_MAX)
        b_wd = product_bound(min(b_d, Q32_MAX), lr_m, lr_s)
        d *= lr_m
        vel += _clip32(rshift_round_inplace(d, lr_s), b_wd > Q32_MAX)  # t_wd
    b_mu = product_bound(extent(v32), mu_m, mu_s)
    mom = np.multiply(v32, mu_m, dtype=np.int64)
    vel += _clip32(rshift_round_inplace(mom, mu_s), b_mu > Q32_MAX)  # t_mu
    b_v = sum(min(b, Q32_MAX) for b in (b_g, b_wd, b_mu))
    _clip32(vel, b_v > Q32_MAX)  # v'
    w_new = np.subtract(w32, vel, dtype=np.int64)
    _clip32(w_new, w_ext + min(b_v, Q32_MAX) > Q32_MAX)  # w'
    pruned = i8(ddr, f["aux"], (count_w,)) == 0
    if pruned.any():
        w_new[:count_w][pruned] = 0
        vel[:count_w][pruned] = 0
    ww = w_new[:count_w]
    peak = extent(ww)
    q, sat = sat8(rshift_round(ww, e_q - e_m))
    w32[...] = w_new
    v32[...] = vel
    dst = i8(ddr, f["dst"], (count_w,))
    dst[...] = q
    return peak, e_m, sat, int(np.count_nonzero(dst)), count_w



KERNELS = {Op.UPDATE: _update}
