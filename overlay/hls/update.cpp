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
                           int32_t mu_m, int32_t wd_m, const q_bounds &sh_g, const q_bounds &sh_lr,
                           const q_bounds &sh_mu, const q_bounds &sh_wd, wide_t &wn, wide_t &vn) {
#pragma HLS INLINE
    /* sat32(rshift_round(p, s)) of each product (quant32: the shifted
     * product itself is not needed; its bounds the instruction's) */
    wide_t t_g = quant32((wide_t)lr_m * gi, sh_g);
    const int32_t decay = quant32((wide_t)wd_m * wi, sh_wd);
    wide_t t_wd = quant32((wide_t)lr_m * decay, sh_lr);
    wide_t t_mu = quant32((wide_t)mu_m * vi, sh_mu);
    vn = sat32(t_mu + t_g + t_wd);
    wn = sat32(wi - vn);
    if (pruned) {   /* pruned: weight and velocity stay 0 */
        wn = 0;
        vn = 0;
    }
}

/* The chunk loop's loads and stores on the data ports (types.h
 * CTRAIN_DDR_PORTS): port 0 the gradient and the mask in, the velocities and
 * the int8 copy out; port 1 (DDR_P1) the master weights and velocities in,
 * the master weights out.  With two ports the load and the store are each a
 * DATAFLOW region of two processes, one per port, writing (loads) or
 * reading (stores) disjoint buffers, so the two m_axi adapters run their
 * bursts concurrently: the process takes the longer port's time
 * (docs/overlay.md "Update unit").  With one port the per-port functions are
 * inlined and run one after another on it. */
static void upd_load_p0(const ddr_t *ddr, uint32_t g_at, uint32_t keep_at, uint32_t len,
                        uint32_t nw, int32_t g[UPD_K], q8_t keep[UPD_K]) {
#if CTRAIN_DDR_PORTS > 1
    /* a process of upd_load's DATAFLOW region */
#pragma HLS INLINE off
#else
#pragma HLS INLINE
#endif
    agu_rd_i32w<UPD_K>(ddr, g_at, g, len);
    if (nw > 0)
        agu_rd_q8w<UPD_K>(ddr, keep_at, keep, nw);
}

static void upd_load_p1(const ddr_t *ddr1, uint32_t w_at, uint32_t v_at, uint32_t len,
                        int32_t w[UPD_K], int32_t v[UPD_K]) {
#if CTRAIN_DDR_PORTS > 1
    /* a process of upd_load's DATAFLOW region */
#pragma HLS INLINE off
#else
#pragma HLS INLINE
#endif
    agu_rd_i32w<UPD_K, DDR_P1>(ddr1, w_at, w, len);
    agu_rd_i32w<UPD_K, DDR_P1>(ddr1, v_at, v, len);
}

/* The ports' loads of chunk (i0, len), nw of its items weights. */
static void upd_load_ports(const ddr_t *ddr, const ddr_t *ddr1, uint32_t g_at, uint32_t keep_at,
                           uint32_t w_at, uint32_t v_at, uint32_t len, uint32_t nw,
                           int32_t g[UPD_K], int32_t w[UPD_K], int32_t v[UPD_K],
                           q8_t keep[UPD_K]) {
#if CTRAIN_DDR_PORTS > 1
    /* the two ports' processes run concurrently (disjoint outputs, no channel between them) */
#pragma HLS DATAFLOW
#else
#pragma HLS INLINE
#endif
    upd_load_p0(ddr, g_at, keep_at, len, nw, g, keep);
    upd_load_p1(ddr1, w_at, v_at, len, w, v);
}

static void upd_store_p0(ddr_t *ddr, uint32_t v_at, uint32_t q_at, uint32_t len, uint32_t nw,
                         const int32_t vn[UPD_K], const q8_t q[UPD_K]) {
#if CTRAIN_DDR_PORTS > 1
    /* a process of upd_store's DATAFLOW region */
#pragma HLS INLINE off
#else
#pragma HLS INLINE
#endif
    agu_wr_i32w<UPD_K>(ddr, v_at, vn, len);
    if (nw > 0)
        agu_wr_q8w<UPD_K>(ddr, q_at, q, nw);
}

static void upd_store_p1(ddr_t *ddr1, uint32_t w_at, uint32_t len, const int32_t wn[UPD_K]) {
#if CTRAIN_DDR_PORTS > 1
    /* a process of upd_store's DATAFLOW region */
#pragma HLS INLINE off
#else
#pragma HLS INLINE
#endif
    agu_wr_i32w<UPD_K, DDR_P1>(ddr1, w_at, wn, len);
}

static void upd_store_ports(ddr_t *ddr, ddr_t *ddr1, uint32_t w_at, uint32_t v_at, uint32_t q_at,
                            uint32_t len, uint32_t nw, const int32_t wn[UPD_K],
                            const int32_t vn[UPD_K], const q8_t q[UPD_K]) {
#if CTRAIN_DDR_PORTS > 1
    /* the two ports' processes run concurrently (disjoint inputs, no channel between them) */
#pragma HLS DATAFLOW
#else
#pragma HLS INLINE
#endif
    upd_store_p1(ddr1, w_at, len, wn);
    upd_store_p0(ddr, v_at, q_at, len, nw, vn, q);
}

/* Where a chunk's operands are (the instruction's addresses). */
struct upd_addrs {
    uint32_t g, w, v, keep, q, count, count_w;
};

/* The SGD step's multipliers and shifts (docs/numeric.md UPDATE). */
struct upd_pars {
    int32_t lr_m, mu_m, wd_m;
    q_bounds sh_g, sh_lr, sh_mu, sh_wd;   /* quant32's, once per instruction */
    int sh_q;
};

static void upd_load(const ddr_t *ddr, const ddr_t *ddr1, upd_addrs at, int k,
                     int32_t g[UPD_K], int32_t w[UPD_K], int32_t v[UPD_K], q8_t keep[UPD_K]) {
    /* a process of upd_chunks' DATAFLOW loop: chunk k of the four inputs */
#pragma HLS INLINE off
    CTRAIN_PIPE_STAGE(0);
    const chunk_at ck = chunk_of<UPD_K>(at.count, k);
    upd_load_ports(ddr, ddr1, at.g + 4 * ck.i0, at.keep + ck.i0, at.w + 4 * ck.i0,
                   at.v + 4 * ck.i0, ck.len, chunk_weights(ck, at.count_w), g, w, v, keep);
}

static void upd_sgd(upd_addrs at, upd_pars pr, int k, const int32_t g[UPD_K],
                    const int32_t w[UPD_K], const int32_t v[UPD_K], const q8_t keep[UPD_K],
                    int32_t wn[UPD_K], int32_t vn[UPD_K], q8_t q[UPD_K], q_stats &st) {
    /* a process of upd_chunks' DATAFLOW loop: UPD_L elements per cycle */
#pragma HLS INLINE off
    CTRAIN_PIPE_STAGE(1);
    const chunk_at ck = chunk_of<UPD_K>(at.count, k);
    const uint32_t nw = chunk_weights(ck, at.count_w);
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
                kw[j] = keep[word + j];
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
            sgd_one(g[i], w[i], v[i], weight && kw[slot + j] == 0, pr.lr_m, pr.mu_m, pr.wd_m,
                    pr.sh_g, pr.sh_lr, pr.sh_mu, pr.sh_wd, w_new, v_new);
            wn[i] = (int32_t)w_new;
            vn[i] = (int32_t)v_new;
            bool clamped;
            const q8_t qi = quant8(w_new, pr.sh_q, clamped);
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
                q[word + j] = qw[j];
            }
        }
    }
}

static void upd_store(ddr_t *ddr, ddr_t *ddr1, upd_addrs at, int k,
                      const int32_t wn[UPD_K], const int32_t vn[UPD_K], const q8_t q[UPD_K]) {
    /* a process of upd_chunks' DATAFLOW loop: chunk k's new master weights,
     * velocities and int8 copy out */
#pragma HLS INLINE off
    CTRAIN_PIPE_STAGE(2);
    const chunk_at ck = chunk_of<UPD_K>(at.count, k);
    upd_store_ports(ddr, ddr1, at.w + 4 * ck.i0, at.v + 4 * ck.i0, at.q + ck.i0, ck.len,
                    chunk_weights(ck, at.count_w), wn, vn, q);
}

/* The chunk loop: load k+1 || SGD k || store k-1.  The master weights and
 * velocities are read and written at the same addresses: the processes work
 * on different chunks, and a chunk is read whole before it is written. */
static void upd_chunks(ddr_t *ddr, ddr_t *ddr1, upd_addrs at, upd_pars pr,
                       int chunks, q_stats &st) {
chunk:
    for (int k = 0; k < chunks; k++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CHUNKS_OF_K(CTRAIN_MAX_COUNT, UPD_K)
        /* the processes run concurrently: the channels are ping-pong buffers */
#pragma HLS DATAFLOW
        int32_t g[UPD_K], w[UPD_K], v[UPD_K], wn[UPD_K], vn[UPD_K];
        q8_t keep[UPD_K], q[UPD_K];
        /* a beat per cycle in and out of every buffer (agu.h wide bursts); the
         * SGD step's lanes read bank j of the int32 ones, a beat of the int8
         * ones every UPD_STEPS steps */
#pragma HLS ARRAY_PARTITION variable=g type=cyclic factor=AGU_I32_LANES
#pragma HLS ARRAY_PARTITION variable=w type=cyclic factor=AGU_I32_LANES
#pragma HLS ARRAY_PARTITION variable=v type=cyclic factor=AGU_I32_LANES
#pragma HLS ARRAY_PARTITION variable=wn type=cyclic factor=AGU_I32_LANES
#pragma HLS ARRAY_PARTITION variable=vn type=cyclic factor=AGU_I32_LANES
#pragma HLS ARRAY_PARTITION variable=keep type=cyclic factor=AGU_Q8_LANES
#pragma HLS ARRAY_PARTITION variable=q type=cyclic factor=AGU_Q8_LANES
        upd_load(ddr, ddr1, at, k, g, w, v, keep);
        upd_sgd(at, pr, k, g, w, v, keep, wn, vn, q, st);
        upd_store(ddr, ddr1, at, k, wn, vn, q);
    }
}

void update_unit(ddr_t *ddr, ddr_t *ddr1, const ctrain_insn_t &f, const insn_exps &e,
                 q_stats &st) {
    upd_pars pr;
    pr.lr_m = e.par[CTRAIN_PAR_LR_M];
    pr.mu_m = e.par[CTRAIN_PAR_MU_M];
    pr.wd_m = e.par[CTRAIN_PAR_WD_M];
    pr.sh_g = q_bounds_of<31>(q_shift((wide_t)e.par[CTRAIN_PAR_LR_S] + e.src2 - e.src));
    pr.sh_lr = q_bounds_of<31>(q_shift(e.par[CTRAIN_PAR_LR_S]));
    pr.sh_mu = q_bounds_of<31>(q_shift(e.par[CTRAIN_PAR_MU_S]));
    pr.sh_wd = q_bounds_of<31>(q_shift(e.par[CTRAIN_PAR_WD_S]));
    pr.sh_q = q_shift((wide_t)e.dst - e.src2);
    upd_addrs at;
    at.g = f.src;
    at.w = f.src2;
    at.v = f.src3;
    at.keep = f.aux;
    at.q = f.dst;
    at.count = f.count;
    at.count_w = f.count_w;
    CTRAIN_PIPE_BEGIN();
    upd_chunks(ddr, ddr1, at, pr, (int)CHUNKS_OF_K(f.count, UPD_K), st);
    CTRAIN_PIPE_END();
}
