/*
 * The MAC array: the design's one array of int8 multipliers for the dense
 * unit and the sparse unit's position-parallel path, MAC_UNITS packed units
 * (mac2.h: unit u makes a[u] * b0[u] and a[u] * b1[u], one DSP48E2 on a
 * packing board, two multipliers on DSP48E1).  The position path (sconv.cpp
 * sp_steps, one kept weight or its error shared by a PE's two inputs) uses a
 * unit per PE, L x R x C; the dense unit (pe_array) every unit on a
 * packing board (PE_POS_PAIRS: FP and EB two positions, WG two taps, a
 * step), else the first L x R/2 x C (rows r and r + 1 sharing their column
 * operand).  So the array is mac_array, the units both feed, and on a
 * DSP48E1 board mac_array_sp, the units only the position path feeds.
 * Units run one instruction at a time, so
 * execute() (ctrain_top.cpp) limits mac_array to one instance that both
 * call sites share (ALLOCATION; the units are inlined into execute, so both
 * calls are in its scope): each of its inputs takes a 2:1 select between
 * the callers; mac_array_sp has one caller and no select.  Both callers
 * take every product in the step that formed its operands (the array's
 * latency is in their pipelines), so the results are the plain products:
 * bit-exact, the C-sim counters unchanged.
 */
#ifndef CTRAIN_MAC_ARRAY_H
#define CTRAIN_MAC_ARRAY_H

#include "types.h"

/* 1: mac_array is one instance for both callers (execute's ALLOCATION);
 * 0: one per call site, no selects (the two arrays of before: a board whose
 * LUTs cannot pay the selects and whose DSPs need not be freed; and every
 * board whose position path is a DATAFLOW loop, sconv.h
 * CTRAIN_SPARSE_DATAFLOW: its compute process is a module of its own). */
#ifndef CTRAIN_MAC_SHARED
#define CTRAIN_MAC_SHARED 1
#endif

#define MAC_UNITS (PE_LANES * PE_ROWS * PE_COLS)
/* 1 (DSP48E2 boards): the dense unit's FP and EB make two output positions
 * a step sharing the weight, its WG two taps sharing the error
 * (pe_array.cpp), on every unit of the array; 0: a pair of rows per unit
 * sharing the column operand, half the units
 * (on a DSP48E1 a unit is two multipliers: the board's DSPs pay for the
 * rows' pairs only). */
#define PE_POS_PAIRS (CTRAIN_DSP_INT8 == 2)
/* The units both callers feed (pe_array: a pair of positions, or of rows,
 * per unit). */
/* (x CTRAIN_DSP_INT8: every unit with PE_POS_PAIRS, half of them without) */
#define MAC_DENSE_UNITS (PE_LANES * (PE_ROWS / 2) * PE_COLS * CTRAIN_DSP_INT8)
/* The units only the position path feeds. */
#define MAC_SP_UNITS (MAC_UNITS - MAC_DENSE_UNITS)

/* p0[u] = a[u] * b0[u], p1[u] = a[u] * b1[u], exactly: units
 * [0, MAC_DENSE_UNITS) of the array. */
void mac_array(const q8_t a[MAC_DENSE_UNITS], const q8_t b0[MAC_DENSE_UNITS],
               const q8_t b1[MAC_DENSE_UNITS], prod_t p0[MAC_DENSE_UNITS],
               prod_t p1[MAC_DENSE_UNITS]);

#if CTRAIN_DSP_INT8 != 2   /* !PE_POS_PAIRS */
/* The same for units [MAC_DENSE_UNITS, MAC_UNITS); on DSP48E1, where the
 * position path makes one product per PE, p0 only (p1 is 0). */
void mac_array_sp(const q8_t a[MAC_SP_UNITS], const q8_t b0[MAC_SP_UNITS],
                  const q8_t b1[MAC_SP_UNITS], prod_t p0[MAC_SP_UNITS], prod_t p1[MAC_SP_UNITS]);
#endif

/* 1: the position path's units [0, MAC_DENSE_UNITS) are LUT multipliers of
 * its own (mac_array_pos) instead of a second mac_array: a board whose
 * position path is a DATAFLOW loop (CTRAIN_SPARSE_DATAFLOW, so no sharing)
 * and whose DSPs cannot pay a second array (the Pynq-Z2).  DSP48E1 boards
 * only: the position path makes one product per PE there (p1 is 0). */
#ifndef CTRAIN_SPARSE_POS_MUL_LUT
#define CTRAIN_SPARSE_POS_MUL_LUT 0
#endif
#if CTRAIN_SPARSE_POS_MUL_LUT
#if CTRAIN_DSP_INT8 != 1
#error "CTRAIN_SPARSE_POS_MUL_LUT: a DSP48E1 board's (one product per position PE)"
#endif
void mac_array_pos(const q8_t a[MAC_DENSE_UNITS], const q8_t b0[MAC_DENSE_UNITS],
                   const q8_t b1[MAC_DENSE_UNITS], prod_t p0[MAC_DENSE_UNITS],
                   prod_t p1[MAC_DENSE_UNITS]);
#endif

#endif
