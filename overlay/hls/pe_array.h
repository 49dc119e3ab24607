/*
 * PE array: PE_LANES x PE_ROWS x PE_COLS int8 multipliers, fully unrolled,
 * one step per cycle (docs/overlay.md "PE array mapping").  Lanes are batch
 * images sharing the weights, rows the channels a phase produces (FP, WG:
 * c_out; EB: c_in), columns the channels it reduces (FP, WG: c_in; EB:
 * c_out).  Each step multiplies a row operand a by a column operand
 * x[l][c] = src[l][c][position shifted by the tap]:
 *
 *   PE_GATHER  (FP, EB)  a = w[r][c][tap]; lane l, row r adds sum_c a*x to a
 *                        register; order: position > column tile > valid
 *                        taps, so a position's sum is complete when its run
 *                        ends and is quantized there, R x LANES per cycle
 *                        (the epilogue at PE-row width)
 *   PE_OUTER   (WG)      a = err[l][r][position]; PE (r,c) adds sum_l a*x to
 *                        a register; order: column tile > tap > position, the
 *                        register added to tap accumulator (r,c,tap) when
 *                        the run ends
 *
 * One flat pipelined loop (pass_step) walks every step of one band of one
 * lane tile (II=1, one pipeline fill per band).
 */
#ifndef CTRAIN_PE_ARRAY_H
#define CTRAIN_PE_ARRAY_H

#include "types.h"
#include "quant.h"
#include "mac_array.h"

enum pe_mode { PE_GATHER = 0, PE_SCATTER = 1, PE_OUTER = 2 };

/* Buffer capacities (configurable per board; defaults below). */
#ifndef CTRAIN_CONV_WCAP
/* Weights (FP/EB) per PE: the column tiles of one group times k_h*k_w
 * (>= CTRAIN_MAX_KERNEL^2). */
#define CTRAIN_CONV_WCAP 512
#endif
#ifndef CTRAIN_CONV_TCAP
/* WG's tap accumulators per PE (>= CTRAIN_MAX_KERNEL^2 + 1, the bias tap):
 * 48 bits each where a weight is 8, so a board may hold fewer of them than
 * weights (conv_make_plan's `cap`). */
#define CTRAIN_CONV_TCAP CTRAIN_CONV_WCAP
#endif
#ifndef CTRAIN_CONV_ACT
/* Column-operand bytes per lane and column bank: the group's channels of one
 * band of source rows (>= CTRAIN_MAX_KERNEL * CTRAIN_MAX_DIM). */
#define CTRAIN_CONV_ACT 6144
#endif
#ifndef CTRAIN_CONV_OUT
/* Positions per lane and row of one band: outputs (FP/EB), errors (WG). */
#define CTRAIN_CONV_OUT 1024
#endif
#ifndef CTRAIN_CONV_URAM
/* 1: the dense column operands (act) in URAM (conv.cpp); 0: BRAM. */
#define CTRAIN_CONV_URAM 0
#endif
#ifndef CTRAIN_CONV_BANDS_BRAM
/* 1: the dense unit's two band buffers (conv.cpp obuf, the quantized
 * outputs, and rowb, WG's errors and EB's masks) in BRAM, on a board whose
 * LUTs are shorter than its BRAM; 0: distributed RAM. */
#define CTRAIN_CONV_BANDS_BRAM 0
#endif
#ifndef CTRAIN_TAP_ACC_DSP
/* 1: WG's tap accumulation (pe_tap_add, 48 bits a PE) in DSP slices, on a
 * board with slices to spare and LUTs short; 0: fabric adders. */
#define CTRAIN_TAP_ACC_DSP 0
#endif
#ifndef CTRAIN_TREE_DSP
/* 1: the PE array's adder trees over columns (GATHER) and the position
 * path's over its PEs (WG) in DSP slices, on a board with slices to spare
 * and LUTs short; 0: fabric adders. */
#define CTRAIN_TREE_DSP 0
#endif
#ifndef CTRAIN_CONV_RB
/* Row tiles per block of the block mode (conv.h): the depth of the bias
 * table (one RAM64 deep of distributed RAM). */
#define CTRAIN_CONV_RB 64
#endif
#define CONV_WCAP CTRAIN_CONV_WCAP
#define CONV_TCAP CTRAIN_CONV_TCAP
#define CONV_RB CTRAIN_CONV_RB
#define CONV_ACT CTRAIN_CONV_ACT
#define CONV_OUT CTRAIN_CONV_OUT
/* The control path multiplies these sizes as dim_t (types.h): each must fit. */
static_assert(CONV_WCAP < 32768 && CONV_TCAP < 32768 && CONV_ACT < 32768 && CONV_OUT < 32768 &&
                  CTRAIN_MAX_CH < 32768 && CTRAIN_MAX_DIM * CTRAIN_MAX_STRIDE < 32768 &&
                  CTRAIN_MAX_BATCH < 32768 && CTRAIN_MAX_KERNEL * CTRAIN_MAX_DIM < 32768,
              "a control-path size does not fit dim_t");
/* the rule's one column tile always fits: a kernel's weights, a kernel's
 * taps and WG's bias tap */
static_assert(CONV_WCAP >= CTRAIN_MAX_KERNEL * CTRAIN_MAX_KERNEL &&
                  CONV_TCAP >= CTRAIN_MAX_KERNEL * CTRAIN_MAX_KERNEL + 1,
              "CONV_WCAP or CONV_TCAP below a kernel's taps");
/* the pass loop's tripcount bounds its entries by CONV_WCAP */
static_assert(CONV_TCAP <= CONV_WCAP, "CONV_TCAP above CONV_WCAP");

typedef q8_t pe_weights_t[PE_ROWS][PE_COLS][CONV_WCAP];
typedef q8_t pe_cols_t[PE_LANES][PE_COLS][CONV_ACT];
typedef q8_t pe_rows_t[PE_LANES][PE_ROWS][CONV_OUT];
/* PE register sums: ap_int<48> in synthesis; C-sim holds the same values
 * (validation keeps them below 2^47) in int64_t, for speed. */
#ifdef __SYNTHESIS__
typedef ap_int<48> pe_sum_t;   /* acc_t */
#else
typedef int64_t pe_sum_t;
#endif
/* The sums before those, as narrow as their bounds (products |p| <= 2^14):
 * a column tile's adder tree (GATHER: PE_COLS products), a position's
 * lanes (OUTER with PE_POS_PAIRS: PE_LANES products) and a tap's run
 * (OUTER: PE_LANES products a position, at most CONV_OUT positions, the
 * error rows' depth).  Synthesis: ap_int of those widths.  The C-sim keeps
 * them in int and int64_t for speed and wraps them to the same widths where
 * synthesis holds them (pe_wrap): a bound that failed would be a mismatch
 * against the numpy engine, not a silent difference. */
#define PE_COL_BITS (CTRAIN_CLOG2(PE_COLS) + 16)
#define PE_LANE_BITS (CTRAIN_CLOG2(PE_LANES) + 16)
#define PE_RUN_BITS (CTRAIN_CLOG2(PE_LANES * CONV_OUT) + 16)
#ifdef __SYNTHESIS__
typedef ap_int<PE_COL_BITS> pe_col_t;
typedef ap_int<PE_LANE_BITS> pe_lane_t;
typedef ap_int<PE_RUN_BITS> pe_run_t;
#else
typedef int pe_col_t;
typedef int pe_lane_t;
typedef int64_t pe_run_t;
#endif

/* v as a B-bit two's complement value holds it (the C-sim's narrow sums). */
template <int B>
static inline int64_t pe_wrap(int64_t v) {
#pragma HLS INLINE
#ifdef __SYNTHESIS__
    return v;   /* the type already has B bits */
#else
    return (int64_t)((uint64_t)v << (64 - B)) >> (64 - B);
#endif
}
/* OUTER, a run's end: its sum added to its tap accumulator, a
 * read-modify-write of tacc.  Where the board has DSP slices to spare
 * (CTRAIN_TAP_ACC_DSP) the 48-bit add is a slice's ALU, as wide as
 * pe_sum_t (C takes the read, A:B the run's sum, P the write), not a fabric
 * carry chain.  Every run writes a different accumulator (pe_array's
 * DEPENDENCE), so the slice's registers lengthen the loop, not its II. */
static inline pe_sum_t pe_tap_add(pe_sum_t t, pe_run_t v) {
#pragma HLS INLINE
    const pe_sum_t s = t + pe_wrap<PE_RUN_BITS>(v);
#if CTRAIN_TAP_ACC_DSP
    /* the sum in a DSP slice: the board's LUTs are scarcer than its slices */
#pragma HLS BIND_OP variable=s op=add impl=dsp
#endif
    return s;
}
/* GATHER's epilogue (bias, ReLU or mask, quantizer, statistics) is one PE
 * row wide: a run's PE_LANES x PE_ROWS sums (PE_POS_PAIRS: two positions'
 * worth) wait in a hold register and leave through PE_ROWS epilogue lanes,
 * one (position, lane) slice a cycle over the PE_EPI_SLICES cycles after
 * the run, while the next run accumulates; a run shorter than that waits
 * (pe_array; the cycle model's `pe` loop counts the waits and the last
 * run's slices). */
#define PE_EPI_SLICES ((1 + PE_POS_PAIRS) * PE_LANES)
typedef pe_sum_t pe_rowacc_t[PE_LANES][PE_ROWS][CONV_OUT];
typedef pe_sum_t pe_tapacc_t[PE_ROWS][PE_COLS][CONV_TCAP];
/* GATHER biases of the pass's row tiles (FP: raw biases shifted to e_acc; else 0) */
typedef wide_t pe_bias_t[CONV_RB][PE_ROWS];

/* GATHER: the valid taps of one swept row (column) of the band: their
 * count, the weight offset of the first (ky0 * k_w; kx0) and the act offset
 * of its source row within the band ((sy0 - sy_lo) * sw; sx0); 0, 0, 0
 * without one (conv.cpp make_ranges).  As narrow as those bounds: a table
 * entry is 32 bits, one RAMB18 of 512 entries. */
struct pe_range {
    uint8_t n;      /* <= CTRAIN_MAX_KERNEL */
    uint8_t k0;     /* < CTRAIN_MAX_KERNEL^2 */
    int16_t src0;   /* < CONV_ACT */
};
static_assert(CTRAIN_MAX_KERNEL * CTRAIN_MAX_KERNEL <= 255 && CONV_ACT <= 32767,
              "pe_range's fields hold a tap count, a tap offset and an act offset");

/* Geometry and epilogue of one pass (one band of one lane tile). */
struct pe_pass {
    int mode;            /* pe_mode */
    int k_h, k_w, kk;
    int tstep;           /* tap step between valid taps: 1 (FP), stride (EB) */
    int dsrc;            /* source step per tap step: +1 (FP), -1 (EB) */
    int stride, pad;     /* OUTER: source = position * stride + tap - pad */
    int y0, rows, ow;    /* band: swept rows [y0, y0 + rows), row width */
    int gct;             /* column tiles in the group */
    int wbase;           /* GATHER: the row tile's first weight entry */
    int tiles, wstep;    /* GATHER: row tiles of the pass (block mode), weight entries per tile */
    int roff;            /* GATHER: the item's partial sums' offset in racc (its unit's in the chunk) */
    int vc_last;         /* valid columns of the group's last column tile */
    int slot;            /* act bytes per channel of the group (a band of source rows) */
    int sy_lo, sh, sw;   /* first source row loaded; source plane height, width */
    /* GATHER epilogue */
    bool first, last;    /* first / last group of the band */
    bool relu, mask;
    bool bias;           /* FP with FLAG_BIAS: add btab[tile][r] */
    bool bias_sum;       /* OUTER: add the errors to bias[r] (WG bias gradient) */
    bool btap;           /* OUTER in block mode: a bias tap run after each tile's taps */
    int sh_out;
    int vb, vr;          /* valid lanes and rows (GATHER: of the last row tile) */
    bool pairs;          /* GATHER: positions in pairs (PE_POS_PAIRS, one group; xpd) */
    bool wpairs;         /* OUTER: taps in pairs (PE_POS_PAIRS, a tile of 2+ taps, rows x ow >= 2) */
    /* Steps: GATHER gct * (sum over the tiles' band rows of max(1, valid
     * ky) * the row's column steps: the sum over columns of max(1, valid
     * kx), a position without a valid tap taking one masked step, a pair
     * the union of its taps and its second none, by the parity of the
     * row's first output index); OUTER tiles * (runs + btap) * rows * ow,
     * runs = gct * kk, or with wpairs ceil(gct * kk / 2) and one more step
     * for the last pair's second tap. */
    uint32_t total;
};

/* xpd: GATHER with PE_POS_PAIRS (mac_array.h), per column ox of the band
 * whether positions ox and ox + 1 can run as a pair (both have valid taps;
 * EB only at stride 1), used where ox's output index is even: a pair runs
 * over the union of their taps, two products per unit, ox + 1's source
 * `stride` further (FP; EB one further), and ends both positions' runs.
 * btab: GATHER, the biases of row tile t of the pass at btab[t] (added at
 * the last group); bias: OUTER with bias_sum, the WG bias gradients, summed
 * over the errors of the first run.  GATHER with several tiles walks
 * position > column tile > tap per row tile, the row tiles outermost: tile
 * t's weights at wbase + t * wstep, its outputs at t * (rows * ow) + pos.
 * OUTER with several tiles (block mode) walks tile > column tile > tap >
 * position, tile t's errors at t * (rows * ow) + pos, its tap accumulators
 * after the previous tile's (gct * kk, and with btap one more: the run of
 * the bias tap, column operand 1 in column 0, sums the tile's errors, its
 * bias gradient, in column 0 of that accumulator). */
void pe_array(const pe_weights_t w, const pe_cols_t x, const pe_rows_t err,
              const pe_range yr[CTRAIN_MAX_DIM], const pe_range xr[CTRAIN_MAX_DIM],
              const bool xpd[CTRAIN_MAX_DIM], const pe_rows_t maskb, const pe_pass &g, const pe_bias_t btab, wide_t bias[PE_ROWS],
              pe_rowacc_t racc, pe_rows_t out, pe_tapacc_t tacc, q_stats &st);

#endif
