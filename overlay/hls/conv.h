/*
 * Convolution unit: CONV_FP, CONV_EB and CONV_WG on the one PE array
 * (pe_array.h; docs/overlay.md "PE array mapping").
 *
 * Tiling (conv_make_plan; ctrain.tiling.conv_plan mirrors it): the
 * instruction's tile_g and tile_br fields, which the compiler chooses per
 * layer and phase with the cycle model (0: the largest that fits, below):
 *   row tiles of PE_ROWS channels (FP, WG: c_out; EB: c_in), outermost;
 *   groups of `g` column tiles of PE_COLS channels (FP, WG: c_in; EB:
 *   c_out) whose weights (FP, EB) or tap accumulators (WG) stay on chip:
 *   g * k_h * k_w <= CONV_WCAP;
 *   lane tiles of PE_LANES images sharing each weight;
 *   bands of `br` swept rows (FP, WG: output rows; EB: input-error rows)
 *   whose outputs (or WG errors) fit CONV_OUT per lane and row and whose
 *   source rows for the group fit CONV_ACT per lane and column bank.
 * With one group, a row tile's weights are loaded once and serve the whole
 * batch and every row; WG accumulates its tile over the whole batch on chip.
 * FP, EB with several groups walk chunks of `cu` units (lane tile, band)
 * whose partial sums fit racc side by side (cu * br * ow <= CONV_OUT):
 * chunk > group > unit, a group's weights loaded once per chunk and reused
 * by its units (cu = 1: every item loads its group's weights).
 * EB with one group loads the weights of `rb` row tiles at once (one burst
 * per c_out channel of rb * PE_ROWS * k_h * k_w bytes, its transposed rows
 * being contiguous there): rb * ct * k_h * k_w <= CONV_WCAP.
 * Block mode (bm: FP, EB with one group and one band, the fully connected
 * layers and small planes): blocks of `rb` row tiles whose weights fit
 * CONV_WCAP (and outputs CONV_OUT, biases CONV_RB) are loaded once, then
 * each lane tile's column operand is loaded once and the PE pass walks
 * every row tile of the block: block > items (lane tiles) > row tiles, the
 * matrix product over the batch with the block's weights reused by every
 * image (docs/overlay.md "PE array mapping").  WG with one band runs in
 * block mode with any groups: a pass per block and group accumulates the
 * group's taps of the block's rb row tiles (rb x (g x k_h x k_w + bias
 * tap) <= CONV_TCAP), so a lane tile's column operand is read once per
 * block and group, not once per row tile (a deep layer with one output
 * position re-read its activations for every row tile).
 *
 * Dataflow: per row tile (FP, EB) or (row tile, group) (WG) the items
 * (lane tile, band, group) run as a ping-pong pipeline: load item i+1 ||
 * compute item i || store item i-1.  With CTRAIN_CONV_DATAFLOW (every
 * board header) it is a DATAFLOW loop of three processes (conv_items,
 * types.h CTRAIN_PIPE_*) whose weights are loaded before it: FP, EB with
 * several groups run one such loop per chunk and group.  Without it, the
 * stages are called one after another in one loop body (a hand-pipelined
 * region, CTRAIN_REGION_*: what overlapping them would save is planned,
 * not counted) and weights may stage through the idle act buffer.
 */
#ifndef CTRAIN_CONV_H
#define CTRAIN_CONV_H

#include "types.h"
#include "fetch.h"
#include "pe_array.h"
#include "quant.h"

/* The item loop a DATAFLOW loop (set per board; conv.cpp conv_items): its
 * compute process is a module of its own, so it needs CTRAIN_MAC_SHARED 0. */
#ifndef CTRAIN_CONV_DATAFLOW
#define CTRAIN_CONV_DATAFLOW 0
#endif

struct conv_plan {
    int rows, cols;     /* produced / reduced channels */
    int oh, ow;         /* swept plane (FP, WG: h_out x w_out; EB: h_in x w_in) */
    int sh, sw;         /* column operand's plane (FP, WG: h_in x w_in; EB: h_out x w_out) */
    int ct, g, groups;  /* column tiles, per group, groups */
    int br, bands;      /* swept rows per band, bands */
    int slot;           /* act bytes per channel of a band: source rows x sw */
    int rb;             /* row tiles per block: block mode (bm), or EB with one group and
                         * several bands; else 1 */
    bool bm;            /* one band, FP/EB one group (WG any): block > items > row tiles */
    int cu;             /* FP/EB with several groups: units (lane tile, band) per chunk, whose
                         * partial sums fit racc; items chunk > group > unit, so a group's
                         * weights load once per chunk, not per item; else 1 */
    bool fits;          /* within CONV_WCAP, CONV_ACT and CONV_OUT (else FAULT_TILE) */
};

/* The tiling of a shape-checked CONV_* instruction (its fields or the rule). */
conv_plan conv_make_plan(const ctrain_insn_t &f);

void conv_unit(ddr_t *ddr, ddr_t *ddr1, const ctrain_insn_t &f, const insn_exps &e, q_stats &st);

/* Stores the WG bias gradients of vr output channels from r0 at dst2 (conv_store.cpp). */
void conv_store_bias(ddr_t *ddr, const wide_t gb[PE_ROWS], int vr, int r0, uint32_t dst2,
                     int sh_b, q_stats &st);

#endif
