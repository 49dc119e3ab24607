/*
 * Sparse convolution unit: SCONV_FP, SCONV_EB and SCONV_WG on an R x C array
 * whose pipelined loops iterate over kept weights only (docs/overlay.md,
 * "Sparse unit").
 *
 *   PE rows    R channels the op produces (FP, WG: c_out; EB: c_in), each
 *              walking its own list of kept weights: its CSR row (FP, WG) or
 *              the transposed index's columns of its input channel (EB).
 *   PE columns C batch lanes: the same kept weight applied to C images.
 *
 * Each step, PE row r takes kept weight t of its list (value, channel, ky,
 * kx) and PE (r, c) multiplies it by its lane's input at that tap, read from
 * an on-chip window of the input rows.  Trip counts scale with the longest
 * list of a row tile, not with c_out * c_in * k_h * k_w.
 */
#ifndef CTRAIN_SCONV_H
#define CTRAIN_SCONV_H

#include "types.h"
#include "fetch.h"
#include "quant.h"

#define SP_ENTRIES CTRAIN_SPARSE_ENTRIES  /* kept weights per PE row per chunk */
#define SP_WIN CTRAIN_SPARSE_WIN          /* window positions per batch lane */
#define SP_XT CTRAIN_SPARSE_XT            /* output positions per x tile */
#define SP_COPIES ((PE_ROWS + 1) / 2)     /* window copies: two PE rows per copy */
#define SP_TILES MAX_RTILES              /* row tiles of the widest layer */
#define SP_RTILES 32                      /* row tiles of a layer in resident mode */

/* A reduction's sum of int8 products (one output: at most CTRAIN_MAX_CH x
 * CTRAIN_MAX_KERNEL^2 < 2^18 products of |p| <= 2^14): 32 bits and a sign,
 * and one for the bound's rounding. */
#define SP_RED_BITS 34
static_assert((long long)CTRAIN_MAX_CH * CTRAIN_MAX_KERNEL * CTRAIN_MAX_KERNEL <= (1LL << 18),
              "a reduction's sum fits SP_RED_BITS");
typedef ap_int<SP_RED_BITS> sp_red_t;

/* Position-parallel path (sconv.cpp): PE_LANES x PE_ROWS x PE_COLS output
 * positions share one kept weight per cycle.  Buffer depths per bank (one
 * bank per PE): window words (CTRAIN_CHIP_LUT / 8 bytes per ping-pong copy:
 * the window banks are distributed RAM, the BRAM is the dense unit's),
 * output (or error) words (64, 128 from 256 PEs), and the kept weights of a chunk of rows on chip
 * (CTRAIN_CHIP_LUT / 48, distributed RAM too).  A board's header may
 * override them. */
#define SP_PES (CTRAIN_PE_LANES * CTRAIN_PE_ROWS * CTRAIN_PE_COLS)
#ifndef CTRAIN_SPARSE_WDEPTH
#define CTRAIN_SPARSE_WDEPTH ((CTRAIN_CHIP_LUT / 8 / SP_PES + 63) / 64 * 64)
#endif
#ifndef CTRAIN_SPARSE_ODEPTH
#define CTRAIN_SPARSE_ODEPTH (64 * (1 + SP_PES / 256))
#endif
#ifndef CTRAIN_SPARSE_LIST
#define CTRAIN_SPARSE_LIST (CTRAIN_CHIP_LUT / 48)
#endif
/* 1: the position-parallel path's per-entry lists (value, window word and
 * bank: one read per step) and WG accumulators (one read-modify-write per
 * kept weight) are BRAM, on chips whose LUTs the window banks need and whose
 * BRAM the dense unit leaves some of; 0: distributed RAM. */
#ifndef CTRAIN_SPARSE_LIST_BRAM
#define CTRAIN_SPARSE_LIST_BRAM 0
#endif
/* Bytes of the values array per block of EB's value lookup (sconv.cpp
 * spp_values), at least CTRAIN_SPARSE_LIST (the block buffer is also the
 * lists' value staging): a board with BRAM to spare sets more, the buffer
 * then in BRAM, so a layer's values take fewer blocks. */
#ifndef CTRAIN_SPARSE_VALS
#define CTRAIN_SPARSE_VALS CTRAIN_SPARSE_LIST
#endif
/* 1: the position-parallel path's list staging (columns, rows, positions,
 * gradients: partitioned by the beat) in BRAM; 0: distributed RAM. */
#ifndef CTRAIN_SPARSE_STAGE_BRAM
#define CTRAIN_SPARSE_STAGE_BRAM 0
#endif
/* The chunk table's binding alone (sconv_unit's cstart, CTRAIN_MAX_CH + 1
 * row numbers): as the lists' unless the header says (a board whose BRAM
 * goes to a larger value block keeps it in LUTs). */
#ifndef CTRAIN_SPARSE_CSTART_BRAM
#define CTRAIN_SPARSE_CSTART_BRAM CTRAIN_SPARSE_LIST_BRAM
#endif
/* The WG accumulators' binding alone (a board whose BRAM takes the lists but
 * not their 48-bit accumulators): as the lists' unless the header says. */
#ifndef CTRAIN_SPARSE_ACC_BRAM
#define CTRAIN_SPARSE_ACC_BRAM CTRAIN_SPARSE_LIST_BRAM
#endif
/* 1: the WG accumulators in URAM instead (a board with URAM to spare and
 * BRAM short: two banks of SP_LIST / 2 x 48 bit, a URAM288 each up to 8192
 * kept weights a chunk); 0: as CTRAIN_SPARSE_ACC_BRAM says. */
#ifndef CTRAIN_SPARSE_ACC_URAM
#define CTRAIN_SPARSE_ACC_URAM 0
#endif

/* Quantizers of the position-parallel path (FP, EB): a tile's outputs are
 * quantized this many per step while the next tile accumulates (sconv.cpp
 * sp_steps); it divides the position PEs (PE_LANES x PE_ROWS x PE_COLS). */
#ifndef CTRAIN_SPARSE_QUANT
#define CTRAIN_SPARSE_QUANT 16
#endif

/* 1: each position PE's two products are two DSP slices of their own, each
 * a multiply-accumulate whose sum stays in the slice's P register (FP, EB:
 * reset at a list's first kept weight; WG: every step, so P is the product
 * the adder tree takes), instead of the MAC array's packed units
 * (mac_array, mac_array_sp) and two fabric accumulators and a sign
 * correction per PE: twice the DSPs, on chips with that many to spare. */
#ifndef CTRAIN_SPARSE_POS_MACC
#define CTRAIN_SPARSE_POS_MACC 0
#endif

/* 1: the position-parallel path's (item, sub-chunk) loop is a DATAFLOW
 * loop (sconv.cpp spp_pairs): pair k + 1 loads while pair k computes and
 * pair k - 1 stores, the window and row buffers its ping-pong channels.
 * Its compute process is a module of its own, so the MAC array cannot be
 * the one the dense unit calls (mac_array.h): requires CTRAIN_MAC_SHARED 0.
 * 0: the same stages called one after another in one loop body (the
 * overlap planned, not built). */
/* Kept weights the position path's FP/WG list decode takes a cycle
 * (sconv.cpp SPP_DL, session 35): 1, 2 or 4; each lane its divider and
 * window-offset product (DSP slices), and the decoded lists banked by it. */
#ifndef CTRAIN_SPARSE_DECODE
#define CTRAIN_SPARSE_DECODE 4
#endif

#ifndef CTRAIN_SPARSE_DATAFLOW
#define CTRAIN_SPARSE_DATAFLOW 0
#endif

/* 1: the sparse unit has its row-tile path (sconv_rows.cpp, sp_rows_unit)
 * for what the position-parallel path does not take: fully connected
 * instructions, stride > 1, planes beyond its window, a list beyond SP_LIST.
 * 0: the position path alone, on boards whose LUTs it saves where the
 * compiler's cycle model picks it only for fully connected layers at high
 * sparsity (docs/overlay.md "Board configurations"); sconv_unit refuses
 * such an instruction with FAULT_TILE before it writes anything, and the
 * compiler runs those layers dense. */
#ifndef CTRAIN_SPARSE_ROWS
#define CTRAIN_SPARSE_ROWS 1
#endif

/* Runs a validated SCONV_* instruction; FAULT_NONE, or FAULT_TILE (nothing
 * written) for one that only the row-tile path runs on a build without it. */
uint32_t sconv_unit(ddr_t *ddr, const ctrain_insn_t &f, const insn_exps &e, q_stats &st);

#endif
