/* Update unit (see update.h).  Every intermediate is int64; the products are
 * int32 x int32 (declared so: a 32 x 32-bit product to 64 bits is four DSP
 * slices, a 64 x 64 one eight), so no sum below can overflow. */
#include "update.h"
#include "agu.h"

/* Items of chunk ck that are weights (those below count_w). */
static inline uint32_t chunk_weights(const chunk_at &ck, uint32_t count_w) {
#pragma HLS INLINE
    return count_w <= ck.i0 ? 0 : (count_w - ck.i0 < ck.len ? count_w - ck.i0 : ck.len);
}

void update_unit(ddr_t *ddr, const ctrain_insn_t &f, const insn_exps &e, q_stats &st) {
    const int32_t lr_m = e.par[CTRAIN_PAR_LR_M], mu_m = e.par[CTRAIN_PAR_MU_M],
                  wd_m = e.par[CTRAIN_PAR_WD_M];
    const int sh_g = q_shift((wide_t)e.par[CTRAIN_PAR_LR_S] + e.src2 - e.src);
    const int sh_lr = q_shift(e.par[CTRAIN_PAR_LR_S]);
    const int sh_mu = q_shift(e.par[CTRAIN_PAR_MU_S]);
    const int sh_wd = q_shift(e.par[CTRAIN_PAR_WD_S]);
    const int sh_q = q_shift((wide_t)e.dst - e.src2);

    /* Ping-pong halves (index: chunk & 1): chunk k + 1 loads into one while
     * chunk k computes from the other.  The new master weights and
     * velocities go to buffers of their own (wn, vn, q): chunk k - 1 stores
     * from them while chunk k + 1 loads into the same half of w and v. */
    int32_t g[2][CTRAIN_CHUNK], w[2][CTRAIN_CHUNK], v[2][CTRAIN_CHUNK];
    int32_t wn[2][CTRAIN_CHUNK], vn[2][CTRAIN_CHUNK];
    q8_t keep[2][CTRAIN_CHUNK], q[2][CTRAIN_CHUNK];
    /* a beat per cycle in and out of every buffer (agu.h wide bursts) */
#pragma HLS ARRAY_PARTITION variable=g type=cyclic factor=AGU_I32_LANES dim=2
#pragma HLS ARRAY_PARTITION variable=w type=cyclic factor=AGU_I32_LANES dim=2
#pragma HLS ARRAY_PARTITION variable=v type=cyclic factor=AGU_I32_LANES dim=2
#pragma HLS ARRAY_PARTITION variable=wn type=cyclic factor=AGU_I32_LANES dim=2
#pragma HLS ARRAY_PARTITION variable=vn type=cyclic factor=AGU_I32_LANES dim=2
#pragma HLS ARRAY_PARTITION variable=keep type=cyclic factor=AGU_Q8_LANES dim=2
#pragma HLS ARRAY_PARTITION variable=q type=cyclic factor=AGU_Q8_LANES dim=2
    const uint32_t count = f.count, count_w = f.count_w;
    const int32_t chunks = (int32_t)CHUNKS_OF(count);
    /* The pipeline over chunks: load k+1 || compute k || store k-1.  The
     * master weights and velocities are read and written at the same
     * addresses: the stages of one iteration touch three different chunks. */
chunk:
    for (int32_t k = -1; k <= chunks; k++) {
#pragma HLS LOOP_TRIPCOUNT min=2 max=CHUNKS_OF(CTRAIN_MAX_COUNT)+2
        const bool region = k >= 0 && k < chunks;
        if (region)
            CTRAIN_REGION_BEGIN();
        if (k + 1 < chunks) {   /* stage 0: chunk k + 1 in */
            const chunk_at ck = chunk_of(count, k + 1);
            const uint32_t nw = chunk_weights(ck, count_w);
            agu_rd_i32w<CTRAIN_CHUNK>(ddr, f.src + 4 * ck.i0, g[ck.h], ck.len);
            agu_rd_i32w<CTRAIN_CHUNK>(ddr, f.src2 + 4 * ck.i0, w[ck.h], ck.len);
            agu_rd_i32w<CTRAIN_CHUNK>(ddr, f.src3 + 4 * ck.i0, v[ck.h], ck.len);
            if (nw > 0)
                agu_rd_q8w<CTRAIN_CHUNK>(ddr, f.aux + ck.i0, keep[ck.h], nw);
        }
        if (region) {           /* stage 1: chunk k through */
            CTRAIN_STAGE(1);
            const chunk_at ck = chunk_of(count, k);
            const uint32_t nw = chunk_weights(ck, count_w);
            CTRAIN_LOOP(ew, 1, ck.len);
        sgd:
            for (uint32_t i = 0; i < ck.len; i++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_CHUNK
                const bool weight = i < nw;
                const int32_t gi = g[ck.h][i], wi = w[ck.h][i], vi = v[ck.h][i];
                wide_t t_g = sat32(rshift_round((wide_t)lr_m * gi, sh_g));
                const int32_t decay = (int32_t)sat32(rshift_round((wide_t)wd_m * wi, sh_wd));
                wide_t t_wd = sat32(rshift_round((wide_t)lr_m * decay, sh_lr));
                wide_t t_mu = sat32(rshift_round((wide_t)mu_m * vi, sh_mu));
                wide_t v_new = sat32(t_mu + t_g + t_wd);
                wide_t w_new = sat32(wi - v_new);
                if (weight && keep[ck.h][i] == 0) {   /* pruned: weight and velocity stay 0 */
                    w_new = 0;
                    v_new = 0;
                }
                wn[ck.h][i] = (int32_t)w_new;
                vn[ck.h][i] = (int32_t)v_new;
                if (weight) {
                    bool clamped;
                    q8_t qi = sat8(rshift_round(w_new, sh_q), clamped);
                    q_stats_add(st, w_new, qi, clamped);
                    q[ck.h][i] = qi;
                }
            }
            CTRAIN_STAGE(2);
        }
        if (k >= 1) {           /* stage 2: chunk k - 1 out */
            const chunk_at ck = chunk_of(count, k - 1);
            const uint32_t nw = chunk_weights(ck, count_w);
            agu_wr_i32w<CTRAIN_CHUNK>(ddr, f.src2 + 4 * ck.i0, wn[ck.h], ck.len);
            agu_wr_i32w<CTRAIN_CHUNK>(ddr, f.src3 + 4 * ck.i0, vn[ck.h], ck.len);
            if (nw > 0)
                agu_wr_q8w<CTRAIN_CHUNK>(ddr, f.dst + ck.i0, q[ck.h], nw);
        }
        if (region)
            CTRAIN_REGION_END();
    }
}
