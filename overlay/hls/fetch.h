/*
 * Instruction fetch/decode and validation (docs/isa.md "Validation"; mirrors
 * driver/ctrain/validate.py check by check, in the same order, with the same
 * fault codes and fault addresses).
 */
#ifndef CTRAIN_FETCH_H
#define CTRAIN_FETCH_H

#include "types.h"

/* Table slots an opcode reads (bit per slot field). */
enum {
    SLOT_SRC = 1,
    SLOT_SRC2 = 2,
    SLOT_SRC3 = 4,
    SLOT_DST = 8,
    SLOT_PAR = 16
};

/* Exponents (table entries) an instruction runs with; unused ones are 0. */
struct insn_exps {
    int32_t src, src2, src3, dst;
    int32_t par[CTRAIN_PAR_COUNT];
};

/* Fetches instruction `index` (128 bytes, one burst) and decodes its words. */
void fetch_insn(const ddr_t *ddr, uint32_t prog, uint32_t index, ctrain_insn_t &insn);

/* FAULT_PROGRAM check before the first instruction; sets fault_addr. */
uint32_t check_program(uint32_t prog, uint32_t n_insn, uint32_t table, uint32_t table_len,
                       uint32_t ddr_size, uint32_t &fault_addr);

/* Validates one instruction completely; returns its fault (FAULT_NONE to run).
 * Reads DDR only for a sparse instruction's index block (FAULT_INDEX). */
uint32_t validate_insn(const ddr_t *ddr, const ctrain_insn_t &insn, uint32_t ddr_size,
                       uint32_t table_len, uint32_t &fault_addr);

static inline bool is_sparse(uint32_t op) {
    return op == OP_SCONV_FP || op == OP_SCONV_EB || op == OP_SCONV_WG;
}

/* K = c_in * k_h * k_w: columns of a sparse layer's weight matrix.  Called on
 * shape-checked instructions only (shape_ok calls it after tensor_ok and
 * window_ok): c_in * k_h <= 2048 x 11 fits dim_t, so both products are 16 x 16
 * bits. */
static inline uint32_t sparse_cols(const ctrain_insn_t &f) {
    const dim_t ckh = (dim_t)f.c_in * (dim_t)f.k_h;
    return (uint32_t)(ckh * (dim_t)f.k_w);
}

/* The index block at aux of a sparse instruction: ctrain_isa.h's layout. */
typedef ctrain_index_layout_t sparse_index_t;

static inline sparse_index_t index_layout(const ctrain_insn_t &f) {
    return ctrain_index_layout(f.c_out, sparse_cols(f), f.count);   /* shape-checked f */
}

/* SLOT_* bits of the slots a (valid) instruction reads. */
uint32_t slots_used(const ctrain_insn_t &insn);

/* The used slots' values from the on-chip copy of the table (read once per
 * run, before the first instruction: later writes to it are not seen). */
void load_exps(const int32_t tab[CTRAIN_MAX_TABLE], const ctrain_insn_t &insn, insn_exps &e);

#endif
