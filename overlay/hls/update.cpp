/* Update unit (see update.h).  Every intermediate is int64; the products are
 * int32 x int32 (declared so: a 32 x 32-bit product to 64 bits is four DSP
 * slices, a 64 x 64 one eight), so no sum below can overflow. */
#include "update.h"
#include "agu.h"

void update_unit(ddr_t *ddr, const ctrain_insn_t &f, const insn_exps &e, q_stats &st) {
    const int32_t lr_m = e.par[CTRAIN_PAR_LR_M], mu_m = e.par[CTRAIN_PAR_MU_M],
                  wd_m = e.par[CTRAIN_PAR_WD_M];
    const int sh_g = q_shift((wide_t)e.par[CTRAIN_PAR_LR_S] + e.src2 - e.src);
    const int sh_lr = q_shift(e.par[CTRAIN_PAR_LR_S]);
    const int sh_mu = q_shift(e.par[CTRAIN_PAR_MU_S]);
    const int sh_wd = q_shift(e.par[CTRAIN_PAR_WD_S]);
    const int sh_q = q_shift((wide_t)e.dst - e.src2);

    int32_t g[CTRAIN_CHUNK], w[CTRAIN_CHUNK], v[CTRAIN_CHUNK];
    q8_t keep[CTRAIN_CHUNK], q[CTRAIN_CHUNK];
    /* a beat per cycle in and out of every buffer (agu.h wide bursts) */
#pragma HLS ARRAY_PARTITION variable=g type=cyclic factor=AGU_I32_LANES
#pragma HLS ARRAY_PARTITION variable=w type=cyclic factor=AGU_I32_LANES
#pragma HLS ARRAY_PARTITION variable=v type=cyclic factor=AGU_I32_LANES
#pragma HLS ARRAY_PARTITION variable=keep type=cyclic factor=AGU_Q8_LANES
#pragma HLS ARRAY_PARTITION variable=q type=cyclic factor=AGU_Q8_LANES
chunk:
    for (uint32_t i0 = 0; i0 < f.count; i0 += CTRAIN_CHUNK) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_MAX_COUNT/CTRAIN_CHUNK
        const uint32_t len = f.count - i0 < CTRAIN_CHUNK ? f.count - i0 : CTRAIN_CHUNK;
        /* Elements of this chunk that are weights (i < count_w). */
        const uint32_t nw = f.count_w <= i0 ? 0 : (f.count_w - i0 < len ? f.count_w - i0 : len);
        agu_rd_i32w<CTRAIN_CHUNK>(ddr, f.src + 4 * i0, g, len);
        agu_rd_i32w<CTRAIN_CHUNK>(ddr, f.src2 + 4 * i0, w, len);
        agu_rd_i32w<CTRAIN_CHUNK>(ddr, f.src3 + 4 * i0, v, len);
        if (nw > 0)
            agu_rd_q8w<CTRAIN_CHUNK>(ddr, f.aux + i0, keep, nw);
        CTRAIN_LOOP(ew, 1, len);
    sgd:
        for (uint32_t i = 0; i < len; i++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_CHUNK
            const bool weight = i < nw;
            wide_t t_g = sat32(rshift_round((wide_t)lr_m * g[i], sh_g));
            const int32_t decay = (int32_t)sat32(rshift_round((wide_t)wd_m * w[i], sh_wd));
            wide_t t_wd = sat32(rshift_round((wide_t)lr_m * decay, sh_lr));
            wide_t t_mu = sat32(rshift_round((wide_t)mu_m * v[i], sh_mu));
            wide_t v_new = sat32(t_mu + t_g + t_wd);
            wide_t w_new = sat32(w[i] - v_new);
            if (weight && keep[i] == 0) {   /* pruned: weight and velocity stay 0 */
                w_new = 0;
                v_new = 0;
            }
            w[i] = (int32_t)w_new;
            v[i] = (int32_t)v_new;
            if (weight) {
                bool clamped;
                q8_t qi = sat8(rshift_round(w_new, sh_q), clamped);
                q_stats_add(st, w_new, qi, clamped);
                q[i] = qi;
            }
        }
        agu_wr_i32w<CTRAIN_CHUNK>(ddr, f.src2 + 4 * i0, w, len);
        agu_wr_i32w<CTRAIN_CHUNK>(ddr, f.src3 + 4 * i0, v, len);
        if (nw > 0)
            agu_wr_q8w<CTRAIN_CHUNK>(ddr, f.dst + i0, q, nw);
    }
}
