/* PE array (see pe_array.h). */
#include "pe_array.h"
#include "mac_array.h"

/* Rows are paired in mul2: an even number of them. */
static_assert(PE_ROWS % 2 == 0, "CTRAIN_PE_ROWS must be even (pe_array pairs rows in mul2)");

/* OUTER: the tap after (sub, ky, kx) in a tile's column tile > ky > kx
 * order, with its act offsets ay_k = ky * sw and asub = sub * slot (past
 * the tile's last tap: column tile gct, unused). */
static inline void pe_tap_next(const pe_pass &g, int &sub, int &ky, int &kx, int &ay_k, int &asub) {
#pragma HLS INLINE
    const int kx1 = kx + 1, ky1 = ky + 1;
    if (kx1 < g.k_w) {
        kx = kx1;
    } else {
        kx = 0;
        if (ky1 < g.k_h) {
            ky = ky1;
            ay_k += g.sw;
        } else {
            ky = 0;
            ay_k = 0;
            sub++;
            asub += g.slot;
        }
    }
}

/* GATHER: whether the position at ox (output index pidx) and ox + 1 run
 * as a pair: pairs (PE_POS_PAIRS, one group), pidx even (the pair's
 * outputs share a word of the band buffers), ox + 1 in the row, and
 * xpd[ox] (conv.cpp make_ranges: both have valid taps). */
static inline bool pe_xpair(const bool xpd[CTRAIN_MAX_DIM], const pe_pass &g, int ox, int pidx) {
#pragma HLS INLINE
    return g.pairs && !(pidx & 1) && ox + 1 < g.ow && xpd[ox];
}

/* GATHER: the column run of the position at ox (output index pidx), or of
 * the pair (ox, ox + 1) where pe_xpair: the union of their valid taps, k0 .. k0 + n - 1,
 * its first act source src (the first position's at tap k0, outside its own
 * taps where the second's begin earlier), and each position's taps within
 * the run, steps [lo0, hi0) and [lo1, hi1); alone, n at least 1 (a masked
 * step) and the whole run its own; `any` whether the position has a valid
 * tap.  Read once per position (xr's two ports: ox, ox + 1), so the steps
 * read neither xr nor xpd. */
static inline void pe_xrun(const pe_range xr[CTRAIN_MAX_DIM], const bool xpd[CTRAIN_MAX_DIM],
                           const pe_pass &g, int ox, int pidx, bool &pair, bool &any, int &n,
                           int &k0, int &src, int &lo0, int &hi0, int &lo1, int &hi1) {
#pragma HLS INLINE
    const pe_range a = xr[ox];
    any = a.n > 0;   /* a pair: both have taps */
    pair = pe_xpair(xpd, g, ox, pidx);
    if (pair) {
        const pe_range b = xr[ox + 1];
        const int e0 = a.k0 + a.n, e1 = b.k0 + b.n;
        k0 = a.k0 < b.k0 ? a.k0 : b.k0;
        n = (e0 > e1 ? e0 : e1) - k0;
        /* the source moves dsrc a tap */
        src = g.dsrc > 0 ? a.src0 - (a.k0 - k0) : a.src0 + (a.k0 - k0);
        lo0 = a.k0 - k0;
        hi0 = lo0 + a.n;
        lo1 = b.k0 - k0;
        hi1 = lo1 + b.n;
    } else {
        n = a.n > 0 ? a.n : 1;
        k0 = a.k0;
        src = a.src0;
        lo0 = 0;
        hi0 = n;
        lo1 = 0;
        hi1 = 0;
    }
}

/* One function on purpose (its branch count is above the 40 the project
 * otherwise keeps to): the body is one II=1 pipelined step over flattened
 * (position, column tile, tap) counters, and its branches are that step's
 * selects (GATHER or OUTER, live or padded, the end of a run), not stages a
 * split could name; a called stage would be one more pipeline to fill. */
void pe_array(const pe_weights_t w, const pe_cols_t x, const pe_rows_t err,
              const pe_range yr[CTRAIN_MAX_DIM], const pe_range xr[CTRAIN_MAX_DIM],
              const bool xpd[CTRAIN_MAX_DIM], const pe_rows_t maskb, const pe_pass &g, const pe_bias_t btab, wide_t bias[PE_ROWS],
              pe_rowacc_t racc, pe_rows_t out, pe_tapacc_t tacc, q_stats &st) {
    /* its loop in execute's scope, where the MAC array is shared (mac_array.h) */
#pragma HLS INLINE
    const bool outer = g.mode == PE_OUTER;
    const uint32_t total = g.total;

    /* GATHER steps of the address per tap step (rows of the band in act). */
    const int wy_step = (dim_t)g.tstep * (dim_t)g.k_w;
    const int ay_step = g.dsrc > 0 ? g.sw : -g.sw;
    /* OUTER: act offset per position row, per kernel row, and of the band's
     * first position at tap (0, 0). */
    const int orow = (dim_t)g.stride * (dim_t)g.sw;
    const int ay_base = (dim_t)((dim_t)g.y0 * (dim_t)g.stride - g.pad - g.sy_lo) * (dim_t)g.sw;

    pe_sum_t acc[PE_LANES][PE_ROWS];
#pragma HLS ARRAY_PARTITION variable=acc type=complete dim=0
    pe_run_t part[PE_ROWS][PE_COLS];
#pragma HLS ARRAY_PARTITION variable=part type=complete dim=0
#if CTRAIN_DSP_INT8 == 2   /* PE_POS_PAIRS */
    pe_sum_t acc1[PE_LANES][PE_ROWS];   /* the pair's second position */
#pragma HLS ARRAY_PARTITION variable=acc1 type=complete dim=0
    pe_run_t partB[PE_ROWS][PE_COLS];   /* OUTER: tap B's run */
#pragma HLS ARRAY_PARTITION variable=partB type=complete dim=0
    bool bpend = false;                 /* the last run's tap B still to add (at wrun - 1) */
#endif
    for (int r = 0; r < PE_ROWS; r++) {
#pragma HLS UNROLL
        for (int l = 0; l < PE_LANES; l++) {
#pragma HLS UNROLL
            acc[l][r] = 0;
#if CTRAIN_DSP_INT8 == 2
            acc1[l][r] = 0;
#endif
        }
        for (int c = 0; c < PE_COLS; c++) {
#pragma HLS UNROLL
            part[r][c] = 0;
#if CTRAIN_DSP_INT8 == 2
            partB[r][c] = 0;
#endif
        }
    }

    /* Counters. GATHER: position (oy, ox) > column tile sub > tap (ty, tx).
     * OUTER: column tile sub > tap (ky, kx) > position (oy, ox). */
    int oy = 0, ox = 0, sub = 0, ty = 0, tx = 0, pidx = 0;
    int wsub = 0, asub = 0;              /* sub * kk, sub * slot */
    /* GATHER: weight and act offsets of the current tap */
    int ny = yr[0].n > 0 ? yr[0].n : 1, nx, xk0, xsrc, lo0, hi0, lo1, hi1;
    bool xpr, xany;   /* GATHER: the position's pair, its taps */
    pe_xrun(xr, xpd, g, 0, 0, xpr, xany, nx, xk0, xsrc, lo0, hi0, lo1, hi1);
    int wy = yr[0].k0, ay = yr[0].src0, wx = xk0, ax = xsrc;
    /* OUTER: source row/column of the current position, the row's act offset */
    int ky = 0, kx = 0, ay_k = 0;        /* ay_k = ky * sw */
    int sy = (dim_t)g.y0 * (dim_t)g.stride - g.pad, sx = -g.pad;
    int ay_o = ay_base;
    int wrun = 0;                        /* OUTER: tap accumulator of the run */
    /* OUTER with PE_POS_PAIRS: a run takes the tile's taps tt and tt + 1
     * (tap B, the next in column tile > ky > kx order, if the tile has it):
     * unit (l, r, c) is err[l][r] times x[l][c] at both taps' sources.  B's
     * counters and its offsets from tap A (source row, column, act address),
     * constant over the run. */
#if CTRAIN_DSP_INT8 == 2   /* PE_POS_PAIRS */
    const int tile_taps = (dim_t)g.gct * (dim_t)g.kk;
    int tt = 0;                          /* tap A within the tile */
    int subB = 0, kyB = 0, kxB = 0, ay_kB = 0, asubB = 0;
    pe_tap_next(g, subB, kyB, kxB, ay_kB, asubB);
    int dky = kyB, dkx = kxB, doff = asubB + ay_kB + kxB;
#endif
    /* GATHER: row tile of the pass, its first weight entry, its valid rows */
    int tl = 0, wtile = 0, vr_t = g.tiles > 1 ? PE_ROWS : g.vr;
    /* OUTER in block mode: the bias tap's run (column 0's operand 1, its
     * tap accumulator the tile's bias gradient), the tile's first error */
    bool brun = false;
    int ebase = 0;
    const int npos = (dim_t)g.rows * (dim_t)g.ow;
    /* GATHER: the last run's sums (pe_array.h PE_EPI_SLICES), the slices
     * still to leave, the next one's (h, l) and the run's position,
     * pair, row tile and valid rows */
    pe_sum_t hold[PE_EPI_SLICES][PE_ROWS];
#pragma HLS ARRAY_PARTITION variable=hold type=complete dim=0
    int drain = 0, hs = 0, hl = 0, hh = 0;
    int hpidx = 0, htl = 0, hvr = 0;
    bool hpr = false;
    /* A step at most waits PE_EPI_SLICES - 1 cycles for the epilogue, and
     * the last run's slices leave after the last step. */
    const uint32_t cycles = (total + 1) * PE_EPI_SLICES;
    uint32_t i = 0;   /* steps done */
    uint32_t cyc = 0;
pass_step:
    for (cyc = 0; cyc < cycles; cyc++) {
#pragma HLS PIPELINE II=1
    /* each step pairs an on-chip weight word with an output position of the
     * band; the epilogue's waits are none where runs are PE_EPI_SLICES
     * steps or more, its last slices PE_EPI_SLICES cycles */
#pragma HLS LOOP_TRIPCOUNT min=1 max=CONV_WCAP*CONV_OUT+PE_EPI_SLICES
        /* Every step reaches a different register sum; a run writes its
         * accumulator (tap or position) once, at its end, and the epilogue
         * a position's partial sums once. */
#pragma HLS DEPENDENCE variable=tacc type=inter false
#pragma HLS DEPENDENCE variable=racc type=inter false
        if (i == total && drain == 0)
            break;
        /* End of a run: GATHER moves the position's sums into hold (the
         * epilogue quantizes or keeps them), OUTER adds the run to its tap
         * accumulators. */
        const bool run_end = outer ? (ox == g.ow - 1 && oy == g.rows - 1)
                                   : (tx == nx - 1 && ty == ny - 1 && sub == g.gct - 1);
        /* GATHER: a run ends into hold once its slice before has left */
        const bool go = i < total && (outer || !run_end || drain <= 1);
        if (drain > 0) {
            /* slice hs = (hh, hl) of the held run through the R epilogue
             * lanes; hh = 1: the pair's second position (hpidx even: the
             * same word of out, maskb), only for a pair */
            q_lanes ql = {0, 0, 0, 0};   /* the slice's R outputs meet the statistics as one update */
            const bool on = hh == 0 || hpr;
            const int ph = hpidx + hh;
            for (int r = 0; r < PE_ROWS; r++) {
#pragma HLS UNROLL
                wide_t v = (wide_t)hold[hs][r];
                if (on) {
                    /* pairs run with one group (g.pairs): only the
                     * first position reaches racc */
                    if (hh == 0 && !g.first)
                        v += (wide_t)racc[hl][r][g.roff + hpidx];
                    if (hh == 0 && !g.last)
                        racc[hl][r][g.roff + hpidx] = v;
                    bool clamped;   /* |acc| < 2^47, |bias| <= 2^62 */
                    const q8_t o = conv_epilogue(v, g.bias, btab[htl][r], g.relu, g.mask,
                                                 maskb[hl][r][ph], g.sh_out, clamped);
                    if (g.last && hl < g.vb && r < hvr)
                        q_lanes_add(ql, v, o, clamped);
                    if (g.last)
                        out[hl][r][ph] = o;
                }
            }
            q_stats_merge(st, ql);
            drain--;
            hs++;
            if (++hl == PE_LANES) {
                hl = 0;
                hh++;
            }
        }
        if (!go)
            continue;
        const int vc = sub == g.gct - 1 ? g.vc_last : PE_COLS;
        /* GATHER with PE_POS_PAIRS: position ox and ox + 1 at once, the
         * second's source pd further (0: ox alone) */
        const int pd = !outer && xpr ? (g.dsrc > 0 ? g.stride : 1) : 0;
        const bool pr = pd != 0;
        /* GATHER: whether the tap step is one of the position's own taps
         * (a pair's run is their union), and the pair's second's */
        const bool own0 = tx >= lo0 && tx < hi0;
        bool live;
        int wa, aa;
#if CTRAIN_DSP_INT8 == 2   /* PE_POS_PAIRS */
        /* OUTER: the run pairs taps A and B (wpairs; not the bias tap's run) */
        const bool pb = g.wpairs && outer && !brun && tt + 1 < tile_taps;
        /* OUTER with wpairs: the pass's last step only adds the last pair's
         * tap B (below) */
        const bool tail = outer && g.wpairs && i == total - 1;
        bool liveB = false;
        int aaB = 0, vcB = PE_COLS;
#else
        const bool pb = false, tail = false;
#endif
        if (outer) {
            live = !tail && (brun || (sy >= 0 && sy < g.sh && sx >= 0 && sx < g.sw));
            wa = wrun;
            aa = asub + ay_o + sx;
#if CTRAIN_DSP_INT8 == 2
            const int syB = sy + dky, sxB = sx + dkx;
            liveB = pb && syB >= 0 && syB < g.sh && sxB >= 0 && sxB < g.sw;
            aaB = liveB ? aa + doff : 0;
            vcB = subB == g.gct - 1 ? g.vc_last : PE_COLS;   /* B's column tile's */
#endif
        } else {
            live = yr[oy].n > 0 && xany;
            wa = g.wbase + wtile + wsub + wy + wx;
            aa = asub + ay + ax;
        }
        /* no column operand read where there is none: a dead step, or the
         * bias tap's run (its operand the constant 1, below; aa can point
         * into the padding there) */
        if (!live || brun)
            aa = 0;
        /* The first run of OUTER visits every position once: the errors'
         * sum is the bias gradient (an adder tree over lanes per row). */
        if (outer && g.bias_sum && wrun == 0) {
            for (int r = 0; r < PE_ROWS; r++) {
#pragma HLS UNROLL
                int e = 0;
                for (int l = 0; l < PE_LANES; l++) {
#pragma HLS UNROLL
                    e += l < g.vb ? err[l][r][pidx] : (q8_t)0;
                }
                bias[r] += e;
            }
        }
        /* One unit of the MAC array (mac_array.h) forms two products of a
         * shared operand, one DSP48E2 on a packing board.  PE_POS_PAIRS:
         * GATHER unit (l, r, c) is w[r][c] times the column operands of the
         * pair's two positions, x[l][c] at aa and aa + pd; OUTER unit
         * (l, r, c) is err[l][r] times x[l][c] at taps A's and B's sources
         * (aa, aaB).  Else rows r, r+1 share x[l][c] in both modes, unit
         * (l, rp, c) = (l * R/2 + rp) * C + c, the units the position path
         * shares. */
        q8_t ma[MAC_DENSE_UNITS], mb0[MAC_DENSE_UNITS], mb1[MAC_DENSE_UNITS];
#pragma HLS ARRAY_PARTITION variable=ma type=complete
#pragma HLS ARRAY_PARTITION variable=mb0 type=complete
#pragma HLS ARRAY_PARTITION variable=mb1 type=complete
        prod_t mp0[MAC_DENSE_UNITS], mp1[MAC_DENSE_UNITS];
#pragma HLS ARRAY_PARTITION variable=mp0 type=complete
#pragma HLS ARRAY_PARTITION variable=mp1 type=complete
#if CTRAIN_DSP_INT8 == 2   /* PE_POS_PAIRS */
        const bool own1 = tx >= lo1 && tx < hi1;
        /* the second operand's one address: OUTER tap B's source, GATHER the
         * pair's second position (one read of x[l][c] beside aa's, in either
         * mode: two of its two ports) */
        const int a2 = outer ? aaB : aa + pd;
        pe_run_t bsum[PE_ROWS][PE_COLS];   /* OUTER: partB before this step's update (wires) */
#pragma HLS ARRAY_PARTITION variable=bsum type=complete dim=0
        for (int l = 0; l < PE_LANES; l++) {
#pragma HLS UNROLL
            for (int r = 0; r < PE_ROWS; r++) {
#pragma HLS UNROLL
                for (int c = 0; c < PE_COLS; c++) {
#pragma HLS UNROLL
                    /* unit (l, r, c): GATHER the weight times the pair's two
                     * positions, OUTER the error times taps A and B */
                    const bool on = live && c < vc;
                    const q8_t xl = on && (outer || own0) ? x[l][c][aa] : (q8_t)0;
                    const q8_t xo = brun ? (q8_t)(c == 0 ? 1 : 0) : xl;
                    const bool on2 = outer ? liveB && c < vcB : on && pr && own1;
                    const q8_t x2 = on2 ? x[l][c][a2] : (q8_t)0;
                    ma[(l * PE_ROWS + r) * PE_COLS + c] =
                        outer ? (l < g.vb && !tail ? err[l][r][pidx] : (q8_t)0) : w[r][c][wa];
                    mb0[(l * PE_ROWS + r) * PE_COLS + c] = outer ? xo : xl;
                    mb1[(l * PE_ROWS + r) * PE_COLS + c] = x2;
                }
            }
        }
        mac_array(ma, mb0, mb1, mp0, mp1);
        if (outer) {
            for (int r = 0; r < PE_ROWS; r++) {
#pragma HLS UNROLL
                for (int c = 0; c < PE_COLS; c++) {
#pragma HLS UNROLL
                    /* the pending tap B's sum, before this step's restart */
                    bsum[r][c] = partB[r][c];
                    if (bpend)
                        partB[r][c] = 0;
                }
            }
            for (int r = 0; r < PE_ROWS; r++) {
#pragma HLS UNROLL
                for (int c = 0; c < PE_COLS; c++) {
#pragma HLS UNROLL
                    /* adder trees over lanes, one per tap, as narrow as L
                     * products; then the run's sum */
                    pe_lane_t s0 = mp0[r * PE_COLS + c], s1 = mp1[r * PE_COLS + c];
                    for (int l = 1; l < PE_LANES; l++) {
#pragma HLS UNROLL
                        s0 += mp0[(l * PE_ROWS + r) * PE_COLS + c];
                        s1 += mp1[(l * PE_ROWS + r) * PE_COLS + c];
                    }
                    part[r][c] += pe_wrap<PE_LANE_BITS>(s0);
                    partB[r][c] += pe_wrap<PE_LANE_BITS>(s1);
                }
            }
        }
        for (int l = 0; l < PE_LANES; l++) {
#pragma HLS UNROLL
            for (int r = 0; r < PE_ROWS; r++) {
#pragma HLS UNROLL
                pe_col_t sum0 = 0, sum1 = 0;   /* adder trees over columns (GATHER) */
#if CTRAIN_TREE_DSP
                /* the trees' adders in DSP slices: the board's LUTs are scarcer */
#pragma HLS BIND_OP variable=sum0 op=add impl=dsp
#pragma HLS BIND_OP variable=sum1 op=add impl=dsp
#endif
                for (int c = 0; c < PE_COLS; c++) {
#pragma HLS UNROLL
                    sum0 += mp0[(l * PE_ROWS + r) * PE_COLS + c];
                    sum1 += mp1[(l * PE_ROWS + r) * PE_COLS + c];
                }
                if (!outer) {
                    acc[l][r] += pe_wrap<PE_COL_BITS>(sum0);
                    acc1[l][r] += pe_wrap<PE_COL_BITS>(sum1);
                }
            }
        }
#else
        for (int l = 0; l < PE_LANES; l++) {
#pragma HLS UNROLL
            for (int rp = 0; rp < PE_ROWS / 2; rp++) {
#pragma HLS UNROLL
                for (int c = 0; c < PE_COLS; c++) {
#pragma HLS UNROLL
                    const q8_t xl = (live && c < vc && (outer || own0)) ? x[l][c][aa] : (q8_t)0;
                    const q8_t xv = brun ? (q8_t)(c == 0 ? 1 : 0) : xl;
                    const q8_t e0 = l < g.vb ? err[l][2 * rp][pidx] : (q8_t)0;
                    const q8_t e1 = l < g.vb ? err[l][2 * rp + 1][pidx] : (q8_t)0;
                    ma[(l * (PE_ROWS / 2) + rp) * PE_COLS + c] = xv;
                    mb0[(l * (PE_ROWS / 2) + rp) * PE_COLS + c] = outer ? e0 : w[2 * rp][c][wa];
                    mb1[(l * (PE_ROWS / 2) + rp) * PE_COLS + c] = outer ? e1 : w[2 * rp + 1][c][wa];
                }
            }
        }
        mac_array(ma, mb0, mb1, mp0, mp1);
        for (int l = 0; l < PE_LANES; l++) {
#pragma HLS UNROLL
            for (int rp = 0; rp < PE_ROWS / 2; rp++) {
#pragma HLS UNROLL
                pe_col_t sum0 = 0, sum1 = 0;   /* adder trees over columns (GATHER) */
#if CTRAIN_TREE_DSP
                /* the trees' adders in DSP slices: the board's LUTs are scarcer */
#pragma HLS BIND_OP variable=sum0 op=add impl=dsp
#pragma HLS BIND_OP variable=sum1 op=add impl=dsp
#endif
                for (int c = 0; c < PE_COLS; c++) {
#pragma HLS UNROLL
                    const prod_t m0 = mp0[(l * (PE_ROWS / 2) + rp) * PE_COLS + c];
                    const prod_t m1 = mp1[(l * (PE_ROWS / 2) + rp) * PE_COLS + c];
                    if (outer) {
                        part[2 * rp][c] += m0;   /* adder trees over lanes */
                        part[2 * rp + 1][c] += m1;
                    }
                    sum0 += m0;
                    sum1 += m1;
                }
                if (!outer) {
                    acc[l][2 * rp] += pe_wrap<PE_COL_BITS>(sum0);
                    acc[l][2 * rp + 1] += pe_wrap<PE_COL_BITS>(sum1);
                }
            }
        }
#endif
#if CTRAIN_DSP_INT8 == 2   /* PE_POS_PAIRS */
        /* OUTER: a run adds tap A to its accumulator at its end, a pair's
         * tap B the step after (the next run's first, as a run is at least
         * two steps with wpairs, or the tail): one read and one write of
         * tacc a cycle, as with one tap a run */
        if (outer && (run_end || bpend)) {
            const int wt = run_end ? wrun : wrun - 1;
            for (int r = 0; r < PE_ROWS; r++) {
#pragma HLS UNROLL
                for (int c = 0; c < PE_COLS; c++) {
#pragma HLS UNROLL
                    tacc[r][c][wt] = pe_tap_add(tacc[r][c][wt], run_end ? part[r][c] : bsum[r][c]);
                    if (run_end) {
                        part[r][c] = 0;
                        if (!pb)
                            partB[r][c] = 0;
                    }
                }
            }
        }
        if (outer)
            bpend = run_end && pb;
#else
        if (run_end && outer) {
            for (int r = 0; r < PE_ROWS; r++) {
#pragma HLS UNROLL
                for (int c = 0; c < PE_COLS; c++) {
#pragma HLS UNROLL
                    tacc[r][c][wrun] = pe_tap_add(tacc[r][c][wrun], part[r][c]);
                    part[r][c] = 0;
                }
            }
        }
#endif
        if (run_end && !outer) {
            /* the run's sums into hold, its epilogue the next PE_EPI_SLICES
             * cycles (a pair: the second position's after the first's) */
            for (int l = 0; l < PE_LANES; l++) {
#pragma HLS UNROLL
                for (int r = 0; r < PE_ROWS; r++) {
#pragma HLS UNROLL
                    hold[l][r] = acc[l][r];
                    acc[l][r] = 0;
#if CTRAIN_DSP_INT8 == 2   /* PE_POS_PAIRS */
                    hold[PE_LANES + l][r] = acc1[l][r];
                    acc1[l][r] = 0;
#endif
                }
            }
            drain = PE_EPI_SLICES;
            hs = 0;
            hl = 0;
            hh = 0;
            hpidx = pidx;
            hpr = pr;
            htl = tl;
            hvr = vr_t;
        }
        /* Advance the counters. */
        if (outer) {
            pidx++;
            sx += g.stride;
            if (++ox == g.ow) {
                ox = 0;
                sx = kx - g.pad;
                sy += g.stride;
                ay_o += orow;
                if (++oy == g.rows) {
                    oy = 0;
                    /* the run's taps: A, and B when paired */
                    const int nrun = pb ? 2 : 1;
                    wrun += nrun;
                    bool tdone = false;
                    if (brun) {
                        /* block mode: the next row tile, its errors */
                        brun = false;
                        tl++;
                        ebase += npos;
                    }
#if CTRAIN_DSP_INT8 == 2   /* PE_POS_PAIRS */
                    else if (tt + nrun >= tile_taps) {   /* the tile's taps done */
                        tdone = true;
                        tt = 0;
                        sub = 0;
                        ky = 0;
                        kx = 0;
                        ay_k = 0;
                        asub = 0;
                    } else {
                        /* tap A: B, or B's successor when paired */
                        tt += nrun;
                        sub = subB;
                        ky = kyB;
                        kx = kxB;
                        ay_k = ay_kB;
                        asub = asubB;
                        if (pb)
                            pe_tap_next(g, sub, ky, kx, ay_k, asub);
                    }
                    /* tap B: A's successor, and its offsets from A */
                    subB = sub;
                    kyB = ky;
                    kxB = kx;
                    ay_kB = ay_k;
                    asubB = asub;
                    pe_tap_next(g, subB, kyB, kxB, ay_kB, asubB);
                    dky = kyB - ky;
                    dkx = kxB - kx;
                    doff = (asubB - asub) + (ay_kB - ay_k) + (kxB - kx);
#else
                    else {
                        pe_tap_next(g, sub, ky, kx, ay_k, asub);
                        if (sub == g.gct) {   /* the tile's taps done */
                            tdone = true;
                            sub = 0;
                            asub = 0;
                        }
                    }
#endif
                    /* after a tile's taps its bias tap's run (block mode), or the next tile */
                    if (tdone) {
                        if (g.btap) {
                            brun = true;
                        } else {
                            tl++;
                            ebase += npos;
                        }
                    }
                    pidx = ebase;
                    sx = kx - g.pad;
                    sy = (dim_t)g.y0 * (dim_t)g.stride + ky - g.pad;
                    ay_o = ay_base + ay_k;
                }
            }
        } else {
            wx += g.tstep;
            ax += g.dsrc;
            if (++tx == nx) {
                tx = 0;
                wx = xk0;
                ax = xsrc;
                wy += wy_step;
                ay += ay_step;
                if (++ty == ny) {
                    ty = 0;
                    wy = yr[oy].k0;
                    ay = yr[oy].src0;
                    wsub += g.kk;
                    asub += g.slot;
                    if (++sub == g.gct) {
                        sub = 0;
                        wsub = 0;
                        asub = 0;
                        /* a pair: both positions done */
                        pidx += pr ? 2 : 1;
                        ox += pr ? 2 : 1;
                        if (ox == g.ow) {
                            ox = 0;
                            oy++;
                        }
                        if (oy == g.rows && tl + 1 < g.tiles) {
                            /* block mode: the next row tile, the same positions */
                            oy = 0;
                            tl++;
                            wtile += g.wstep;
                            if (tl == g.tiles - 1)
                                vr_t = g.vr;
                        }
                        if (oy < g.rows) {
                            ny = yr[oy].n > 0 ? yr[oy].n : 1;
                            pe_xrun(xr, xpd, g, ox, pidx, xpr, xany, nx, xk0, xsrc, lo0, hi0,
                                    lo1, hi1);
                            wy = yr[oy].k0;
                            ay = yr[oy].src0;
                            wx = xk0;
                            ax = xsrc;
                        }
                    }
                }
            }
        }
        i++;
    }
    CTRAIN_LOOP(pe, 1, cyc);
}
