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

/* Lanes of the SGD step and the int8 words (a beat of mask or copy) they
 * share: UPD_STEPS steps per word. */
#define UPD_L CTRAIN_UPDATE_LANES
#define UPD_K CTRAIN_UPDATE_CHUNK
#define UPD_STEPS (AGU_Q8_LANES / UPD_L)

/* One element of docs/numeric.md UPDATE: the new master weight and velocity
 * (wn, vn), masked to 0 where `pruned`. */
static inline void sgd_one(int32_t gi, int32_t wi, int32_t vi, bool pruned, int32_t lr_m,
                           int32_t mu_m, int32_t wd_m, int sh_g, int sh_lr, int sh_mu, int sh_wd,
                           wide_t &wn, wide_t &vn) {
#pragma HLS INLINE
    wide_t t_g = sat32(rshift_round((wide_t)lr_m * gi, sh_g));
    const int32_t decay = (int32_t)sat32(rshift_round((wide_t)wd_m * wi, sh_wd));
    wide_t t_wd = sat32(rshift_round((wide_t)lr_m * decay, sh_lr));
    wide_t t_mu = sat32(rshift_round((wide_t)mu_m * vi, sh_mu));
    vn = sat32(t_mu + t_g + t_wd);
    wn = sat32(wi - vn);
    if (pruned) {   /* pruned: weight and velocity stay 0 */
        wn = 0;
        vn = 0;
    }
}

/* The chunk pipeline's loads and stores on the data ports (types.h
 * CTRAIN_DDR_PORTS): port 0 the gradient and the mask in, the velocities and
 * the int8 copy out; port 1 (DDR_P1) the master weights and velocities in,
 * the master weights out.  With two ports each stage is a DATAFLOW region of
 * two processes, one per port, writing (loads) or reading (stores) disjoint
 * buffers, so the two m_axi adapters run their bursts concurrently: the
 * stage takes the longer port's time (docs/overlay.md "Update unit").  With
 * one port the processes are inlined and run one after another on it, the
 * design of one port exactly. */
static void upd_load_p0(const ddr_t *ddr, uint32_t g_at, uint32_t keep_at, int h, uint32_t len,
                        uint32_t nw, int32_t g[2][UPD_K], q8_t keep[2][UPD_K]) {
#if CTRAIN_DDR_PORTS > 1
    /* a process of upd_load's DATAFLOW region */
#pragma HLS INLINE off
#else
#pragma HLS INLINE
#endif
    agu_rd_i32w<UPD_K>(ddr, g_at, g[h], len);
    if (nw > 0)
        agu_rd_q8w<UPD_K>(ddr, keep_at, keep[h], nw);
}

static void upd_load_p1(const ddr_t *ddr1, uint32_t w_at, uint32_t v_at, int h, uint32_t len,
                        int32_t w[2][UPD_K], int32_t v[2][UPD_K]) {
#if CTRAIN_DDR_PORTS > 1
    /* a process of upd_load's DATAFLOW region */
#pragma HLS INLINE off
#else
#pragma HLS INLINE
#endif
    agu_rd_i32w<UPD_K, DDR_P1>(ddr1, w_at, w[h], len);
    agu_rd_i32w<UPD_K, DDR_P1>(ddr1, v_at, v[h], len);
}

/* Stage 0: chunk ck of the four inputs into half ck.h. */
static void upd_load(const ddr_t *ddr, const ddr_t *ddr1, const ctrain_insn_t &f, const chunk_at &ck,
                     uint32_t nw, int32_t g[2][UPD_K], int32_t w[2][UPD_K], int32_t v[2][UPD_K],
                     q8_t keep[2][UPD_K]) {
#if CTRAIN_DDR_PORTS > 1
    /* the two ports' processes run concurrently (disjoint outputs, no channel between them) */
#pragma HLS DATAFLOW
#else
#pragma HLS INLINE
#endif
    upd_load_p0(ddr, f.src + 4 * ck.i0, f.aux + ck.i0, ck.h, ck.len, nw, g, keep);
    upd_load_p1(ddr1, f.src2 + 4 * ck.i0, f.src3 + 4 * ck.i0, ck.h, ck.len, w, v);
}

static void upd_store_p0(ddr_t *ddr, uint32_t v_at, uint32_t q_at, int h, uint32_t len,
                         uint32_t nw, const int32_t vn[2][UPD_K], const q8_t q[2][UPD_K]) {
#if CTRAIN_DDR_PORTS > 1
    /* a process of upd_store's DATAFLOW region */
#pragma HLS INLINE off
#else
#pragma HLS INLINE
#endif
    agu_wr_i32w<UPD_K>(ddr, v_at, vn[h], len);
    if (nw > 0)
        agu_wr_q8w<UPD_K>(ddr, q_at, q[h], nw);
}

static void upd_store_p1(ddr_t *ddr1, uint32_t w_at, int h, uint32_t len,
                         const int32_t wn[2][UPD_K]) {
#if CTRAIN_DDR_PORTS > 1
    /* a process of upd_store's DATAFLOW region */
#pragma HLS INLINE off
#else
#pragma HLS INLINE
#endif
    agu_wr_i32w<UPD_K, DDR_P1>(ddr1, w_at, wn[h], len);
}

/* Stage 2: chunk ck's new master weights, velocities and int8 copy out of half ck.h. */
static void upd_store(ddr_t *ddr, ddr_t *ddr1, const ctrain_insn_t &f, const chunk_at &ck,
                      uint32_t nw, const int32_t wn[2][UPD_K], const int32_t vn[2][UPD_K],
                      const q8_t q[2][UPD_K]) {
#if CTRAIN_DDR_PORTS > 1
    /* the two ports' processes run concurrently (disjoint inputs, no channel between them) */
#pragma HLS DATAFLOW
#else
#pragma HLS INLINE
#endif
    upd_store_p1(ddr1, f.src2 + 4 * ck.i0, ck.h, ck.len, wn);
    upd_store_p0(ddr, f.src3 + 4 * ck.i0, f.dst + ck.i0, ck.h, ck.len, nw, vn, q);
}

void update_unit(ddr_t *ddr, ddr_t *ddr1, const ctrain_insn_t &f, const insn_exps &e,
                 q_stats &st) {
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
    int32_t g[2][UPD_K], w[2][UPD_K], v[2][UPD_K];
    int32_t wn[2][UPD_K], vn[2][UPD_K];
    q8_t keep[2][UPD_K], q[2][UPD_K];
    /* a beat per cycle in and out of every buffer (agu.h wide bursts); the
     * SGD step's lanes read bank j of the int32 ones, a beat of the int8 ones
     * every UPD_STEPS steps */
#pragma HLS ARRAY_PARTITION variable=g type=cyclic factor=AGU_I32_LANES dim=2
#pragma HLS ARRAY_PARTITION variable=w type=cyclic factor=AGU_I32_LANES dim=2
#pragma HLS ARRAY_PARTITION variable=v type=cyclic factor=AGU_I32_LANES dim=2
#pragma HLS ARRAY_PARTITION variable=wn type=cyclic factor=AGU_I32_LANES dim=2
#pragma HLS ARRAY_PARTITION variable=vn type=cyclic factor=AGU_I32_LANES dim=2
#pragma HLS ARRAY_PARTITION variable=keep type=cyclic factor=AGU_Q8_LANES dim=2
#pragma HLS ARRAY_PARTITION variable=q type=cyclic factor=AGU_Q8_LANES dim=2
    const uint32_t count = f.count, count_w = f.count_w;
    const int32_t chunks = (int32_t)CHUNKS_OF_K(count, UPD_K);
    /* The pipeline over chunks: load k+1 || compute k || store k-1.  The
     * master weights and velocities are read and written at the same
     * addresses: the stages of one iteration touch three different chunks.
     * Every iteration is a region of the overlap accounting: chunk 0's load
     * and the last chunk's store alone too (their two ports overlap; with
     * one port such a region hides nothing). */
chunk:
    for (int32_t k = -1; k <= chunks; k++) {
#pragma HLS LOOP_TRIPCOUNT min=2 max=CHUNKS_OF_K(CTRAIN_MAX_COUNT, UPD_K)+2
        const bool region = k >= 0 && k < chunks;
        CTRAIN_REGION_BEGIN();
        if (k + 1 < chunks) {   /* stage 0: chunk k + 1 in */
            const chunk_at ck = chunk_of<UPD_K>(count, k + 1);
            upd_load(ddr, ddr1, f, ck, chunk_weights(ck, count_w), g, w, v, keep);
        }
        if (region) {           /* stage 1: chunk k through */
            CTRAIN_STAGE(1);
            const chunk_at ck = chunk_of<UPD_K>(count, k);
            const uint32_t nw = chunk_weights(ck, count_w);
            const uint32_t steps = (ck.len + UPD_L - 1) / UPD_L;
            CTRAIN_LOOP(ew, 1, steps);
            q8_t kw[AGU_Q8_LANES], qw[AGU_Q8_LANES];   /* the int8 word of this step */
            /* one register per lane */
#pragma HLS ARRAY_PARTITION variable=kw type=complete
#pragma HLS ARRAY_PARTITION variable=qw type=complete
        sgd:
            for (uint32_t t = 0; t < steps; t++) {
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=UPD_K/UPD_L
                const uint32_t word = t / UPD_STEPS * AGU_Q8_LANES;   /* constant divisor */
                const int slot = (int)(t % UPD_STEPS) * UPD_L;
                if (slot == 0) {
                kw_in:
                    for (int j = 0; j < AGU_Q8_LANES; j++) {
#pragma HLS UNROLL
                        kw[j] = keep[ck.h][word + j];
                    }
                }
                wide_t pre[UPD_L], sto[UPD_L];
                bool cl[UPD_L];
                /* one register per lane */
#pragma HLS ARRAY_PARTITION variable=pre type=complete
#pragma HLS ARRAY_PARTITION variable=sto type=complete
#pragma HLS ARRAY_PARTITION variable=cl type=complete
            lanes:
                for (int j = 0; j < UPD_L; j++) {
#pragma HLS UNROLL
                    const uint32_t i = t * UPD_L + j;
                    const bool weight = i < nw;
                    wide_t w_new, v_new;
                    sgd_one(g[ck.h][i], w[ck.h][i], v[ck.h][i], weight && kw[slot + j] == 0,
                            lr_m, mu_m, wd_m, sh_g, sh_lr, sh_mu, sh_wd, w_new, v_new);
                    wn[ck.h][i] = (int32_t)w_new;
                    vn[ck.h][i] = (int32_t)v_new;
                    bool clamped;
                    const q8_t qi = sat8(rshift_round(w_new, sh_q), clamped);
                    qw[slot + j] = qi;
                    pre[j] = w_new;
                    sto[j] = qi;
                    cl[j] = clamped;
                }
                /* the weights are the chunk's first nw elements: a prefix of the lanes */
                const uint32_t i0 = t * UPD_L;
                const uint32_t live = nw <= i0 ? 0 : (nw - i0 < UPD_L ? nw - i0 : UPD_L);
                q_stats_add_lanes<UPD_L>(st, pre, sto, cl, live);
                if (slot + UPD_L == AGU_Q8_LANES || t + 1 == steps) {
                q_out:
                    for (int j = 0; j < AGU_Q8_LANES; j++) {
#pragma HLS UNROLL
                        q[ck.h][word + j] = qw[j];
                    }
                }
            }
            CTRAIN_STAGE(2);
        }
        if (k >= 1) {           /* stage 2: chunk k - 1 out */
            const chunk_at ck = chunk_of<UPD_K>(count, k - 1);
            upd_store(ddr, ddr1, f, ck, chunk_weights(ck, count_w), wn, vn, q);
        }
        CTRAIN_REGION_END();
    }
}
