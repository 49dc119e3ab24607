/* PE array (see pe_array.h). */
#include "pe_array.h"
#include "mac_array.h"

/* Rows are paired in mul2: an even number of them. */
static_assert(PE_ROWS % 2 == 0, "CTRAIN_PE_ROWS must be even (pe_array pairs rows in mul2)");

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
    CTRAIN_LOOP(pe, 1, total);

    /* GATHER steps of the address per tap step (rows of the band in act). */
    const int wy_step = (dim_t)g.tstep * (dim_t)g.k_w;
    const int ay_step = g.dsrc > 0 ? g.sw : -g.sw;
    /* OUTER: act offset per position row, per kernel row, and of the band's
     * first position at tap (0, 0). */
    const int orow = (dim_t)g.stride * (dim_t)g.sw;
    const int ay_base = (dim_t)((dim_t)g.y0 * (dim_t)g.stride - g.pad - g.sy_lo) * (dim_t)g.sw;

    pe_sum_t acc[PE_LANES][PE_ROWS];
#pragma HLS ARRAY_PARTITION variable=acc type=complete dim=0
    pe_sum_t acc1[PE_LANES][PE_ROWS];   /* PE_POS_PAIRS: the pair's second position */
#pragma HLS ARRAY_PARTITION variable=acc1 type=complete dim=0
    pe_run_t part[PE_ROWS][PE_COLS];
#pragma HLS ARRAY_PARTITION variable=part type=complete dim=0
    for (int r = 0; r < PE_ROWS; r++) {
#pragma HLS UNROLL
        for (int l = 0; l < PE_LANES; l++) {
#pragma HLS UNROLL
            acc[l][r] = 0;
            acc1[l][r] = 0;
        }
        for (int c = 0; c < PE_COLS; c++) {
#pragma HLS UNROLL
            part[r][c] = 0;
        }
    }

    /* Counters. GATHER: position (oy, ox) > column tile sub > tap (ty, tx).
     * OUTER: column tile sub > tap (ky, kx) > position (oy, ox). */
    int oy = 0, ox = 0, sub = 0, ty = 0, tx = 0, pidx = 0;
    int wsub = 0, asub = 0;              /* sub * kk, sub * slot */
    /* GATHER: weight and act offsets of the current tap */
    int ny = yr[0].n > 0 ? yr[0].n : 1, nx = xr[0].n > 0 ? xr[0].n : 1;
    int wy = yr[0].k0, ay = yr[0].src0, wx = xr[0].k0, ax = xr[0].src0;
    /* OUTER: source row/column of the current position, the row's act offset */
    int ky = 0, kx = 0, ay_k = 0;        /* ay_k = ky * sw */
    int sy = (dim_t)g.y0 * (dim_t)g.stride - g.pad, sx = -g.pad;
    int ay_o = ay_base;
    int wrun = 0;                        /* OUTER: tap accumulator of the run */
    /* GATHER: row tile of the pass, its first weight entry, its valid rows */
    int tl = 0, wtile = 0, vr_t = g.tiles > 1 ? PE_ROWS : g.vr;
    /* OUTER in block mode: the bias tap's run (column 0's operand 1, its
     * tap accumulator the tile's bias gradient), the tile's first error */
    bool brun = false;
    int ebase = 0;
    const int npos = (dim_t)g.rows * (dim_t)g.ow;
pass_step:
    for (uint32_t i = 0; i < total; i++) {
#pragma HLS PIPELINE II=1
    /* each step pairs an on-chip weight word with an output position of the band */
#pragma HLS LOOP_TRIPCOUNT min=1 max=CONV_WCAP*CONV_OUT
        /* Every step reaches a different register sum; a run writes its
         * accumulator (tap or position) once, at its end. */
#pragma HLS DEPENDENCE variable=tacc type=inter false
#pragma HLS DEPENDENCE variable=racc type=inter false
        const int vc = sub == g.gct - 1 ? g.vc_last : PE_COLS;
        /* GATHER with PE_POS_PAIRS: position ox and ox + 1 at once, the
         * second's source pd further (0: ox alone) */
        const int pd = g.pairs && !(ox & 1) && xpd[ox] ? (g.dsrc > 0 ? g.stride : 1) : 0;
        const bool pr = pd != 0;
        bool live;
        int wa, aa;
        if (outer) {
            live = brun || (sy >= 0 && sy < g.sh && sx >= 0 && sx < g.sw);
            wa = wrun;
            aa = asub + ay_o + sx;
        } else {
            live = yr[oy].n > 0 && xr[ox].n > 0;
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
         * (l, rp, c), rp < R/2, is x[l][c] times the errors of rows 2rp,
         * 2rp + 1 (the other half idle).  Else rows r, r+1 share x[l][c]
         * in both modes, unit (l, rp, c) = (l * R/2 + rp) * C + c, the
         * units the position path shares. */
        q8_t ma[MAC_DENSE_UNITS], mb0[MAC_DENSE_UNITS], mb1[MAC_DENSE_UNITS];
#pragma HLS ARRAY_PARTITION variable=ma type=complete
#pragma HLS ARRAY_PARTITION variable=mb0 type=complete
#pragma HLS ARRAY_PARTITION variable=mb1 type=complete
        prod_t mp0[MAC_DENSE_UNITS], mp1[MAC_DENSE_UNITS];
#pragma HLS ARRAY_PARTITION variable=mp0 type=complete
#pragma HLS ARRAY_PARTITION variable=mp1 type=complete
#if CTRAIN_DSP_INT8 == 2   /* PE_POS_PAIRS */
        for (int l = 0; l < PE_LANES; l++) {
#pragma HLS UNROLL
            for (int h = 0; h < 2; h++) {
#pragma HLS UNROLL
                for (int rp = 0; rp < PE_ROWS / 2; rp++) {
#pragma HLS UNROLL
                    for (int c = 0; c < PE_COLS; c++) {
#pragma HLS UNROLL
                        /* unit (l, r = h * R/2 + rp, c); OUTER: the first
                         * half's take rows 2rp, 2rp + 1, the second idle */
                        const bool on = live && c < vc;
                        const q8_t xl = on ? x[l][c][aa] : (q8_t)0;
                        const q8_t xo = brun ? (q8_t)(c == 0 ? 1 : 0) : xl;
                        const bool eo = h == 0 && l < g.vb;
                        ma[(l * PE_ROWS + h * (PE_ROWS / 2) + rp) * PE_COLS + c] =
                            outer ? (h == 0 ? xo : (q8_t)0) : w[h * (PE_ROWS / 2) + rp][c][wa];
                        mb0[(l * PE_ROWS + h * (PE_ROWS / 2) + rp) * PE_COLS + c] =
                            outer ? (eo ? err[l][2 * rp][pidx] : (q8_t)0) : xl;
                        mb1[(l * PE_ROWS + h * (PE_ROWS / 2) + rp) * PE_COLS + c] =
                            outer ? (eo ? err[l][2 * rp + 1][pidx] : (q8_t)0)
                                  : (on && pr ? x[l][c][aa + pd] : (q8_t)0);
                    }
                }
            }
        }
        mac_array(ma, mb0, mb1, mp0, mp1);
        if (outer) {
            for (int l = 0; l < PE_LANES; l++) {
#pragma HLS UNROLL
                for (int rp = 0; rp < PE_ROWS / 2; rp++) {
#pragma HLS UNROLL
                    for (int c = 0; c < PE_COLS; c++) {
#pragma HLS UNROLL
                        /* adder trees over lanes */
                        part[2 * rp][c] += mp0[(l * PE_ROWS + rp) * PE_COLS + c];
                        part[2 * rp + 1][c] += mp1[(l * PE_ROWS + rp) * PE_COLS + c];
                    }
                }
            }
        }
        for (int l = 0; l < PE_LANES; l++) {
#pragma HLS UNROLL
            for (int r = 0; r < PE_ROWS; r++) {
#pragma HLS UNROLL
                pe_col_t sum0 = 0, sum1 = 0;   /* adder trees over columns (GATHER) */
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
                    const q8_t xl = (live && c < vc) ? x[l][c][aa] : (q8_t)0;
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
        /* End of a run: GATHER quantizes (or keeps) the position's sums,
         * OUTER adds the run to its tap accumulators. */
        const bool run_end = outer ? (ox == g.ow - 1 && oy == g.rows - 1)
                                   : (tx == nx - 1 && ty == ny - 1 && sub == g.gct - 1);
        if (run_end && outer) {
            for (int r = 0; r < PE_ROWS; r++) {
#pragma HLS UNROLL
                for (int c = 0; c < PE_COLS; c++) {
#pragma HLS UNROLL
                    tacc[r][c][wrun] += pe_wrap<PE_RUN_BITS>(part[r][c]);
                    part[r][c] = 0;
                }
            }
        }
        if (run_end && !outer) {
            q_lanes ql = {0, 0, 0, 0};   /* the run's L x R (pair: 2 L x R) outputs meet the statistics as one update */
            for (int h = 0; h < 1 + PE_POS_PAIRS; h++) {
#pragma HLS UNROLL
                /* h = 1: the pair's second position (pidx even: the same word of out, maskb) */
                const bool on = h == 0 || pr;
                const int ph = pidx + h;
                for (int l = 0; l < PE_LANES; l++) {
#pragma HLS UNROLL
                    for (int r = 0; r < PE_ROWS; r++) {
#pragma HLS UNROLL
                        wide_t v = (wide_t)(h == 0 ? acc[l][r] : acc1[l][r]);
                        if (h == 0)
                            acc[l][r] = 0;
                        else
                            acc1[l][r] = 0;
                        if (on) {
                            /* pairs run with one group (g.pairs): only the
                             * first position reaches racc */
                            if (h == 0 && !g.first)
                                v += (wide_t)racc[l][r][g.roff + pidx];
                            if (h == 0 && !g.last)
                                racc[l][r][g.roff + pidx] = v;
                            bool clamped;   /* |acc| < 2^47, |bias| <= 2^62 */
                            const q8_t o = conv_epilogue(v, g.bias, btab[tl][r], g.relu, g.mask,
                                                         maskb[l][r][ph], g.sh_out, clamped);
                            if (g.last && l < g.vb && r < vr_t)
                                q_lanes_add(ql, v, o, clamped);
                            if (g.last)
                                out[l][r][ph] = o;
                        }
                    }
                }
            }
            q_stats_merge(st, ql);
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
                    wrun++;
                    if (brun) {
                        /* block mode: the next row tile, its errors */
                        brun = false;
                        tl++;
                        ebase += npos;
                    } else if (++kx == g.k_w) {
                        kx = 0;
                        ay_k += g.sw;
                        if (++ky == g.k_h) {
                            ky = 0;
                            ay_k = 0;
                            sub++;
                            asub += g.slot;
                            if (sub == g.gct) {   /* the tile's taps done */
                                sub = 0;
                                asub = 0;
                                if (g.btap) {
                                    brun = true;
                                } else {
                                    tl++;
                                    ebase += npos;
                                }
                            }
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
                wx = xr[ox].k0;
                ax = xr[ox].src0;
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
                            nx = xr[ox].n > 0 ? xr[ox].n : 1;
                            wy = yr[oy].k0;
                            ay = yr[oy].src0;
                            wx = xr[ox].k0;
                            ax = xr[ox].src0;
                        }
                    }
                }
            }
        }
    }
}
