/*
 * ctrain_top: loads the parameter table on chip, then fetches, validates and
 * executes instructions until HALT, a fault or the end of the program.
 */
#include "ctrain_top.h"
#include "agu.h"
#include "conv.h"
#include "eltwise.h"
#include "fetch.h"
#include "mac_array.h"
#include "quant.h"
#include "sconv.h"
#include "stream.h"
#include "update.h"

#ifndef __SYNTHESIS__
/* C-sim only: counters of the running instruction, and where to record them. */
ctrain_iters_t ctrain_iters_now;
static ctrain_iters_t *trace_buf = 0;
static uint32_t trace_cap = 0;

void ctrain_csim_trace(ctrain_iters_t *buf, uint32_t cap) {
    trace_buf = buf;
    trace_cap = buf ? cap : 0;
}

static void trace_clear(void) {
    const ctrain_iters_t zero = {};
    for (uint32_t i = 0; i < trace_cap; i++)
        trace_buf[i] = zero;
    ctrain_iters_now = zero;
}

static void trace_record(uint32_t index) {
    const ctrain_iters_t zero = {};
    if (index < trace_cap)
        trace_buf[index] = ctrain_iters_now;
    ctrain_iters_now = zero;
}
#define TRACE_CLEAR() trace_clear()
#define TRACE_RECORD(i) trace_record(i)
#else
#define TRACE_CLEAR() ((void)0)
#define TRACE_RECORD(i) ((void)0)
#endif

/* Runs one validated instruction (not HALT) and writes its statistics;
 * FAULT_NONE, or the fault of a unit that refused it before writing
 * anything (sconv_unit's FAULT_TILE), its statistics then unwritten. */
static uint32_t execute(ddr_t *ddr, ddr_t *ddr1, const int32_t tab[CTRAIN_MAX_TABLE],
                    const ctrain_insn_t &f) {
    /* One FSM for the units: conv_unit, sconv_unit (and its position path,
     * spp_unit) are inlined here, so the calls below are in one scope. */
#pragma HLS INLINE off
#if CTRAIN_MAC_SHARED
    /* One MAC array (mac_array.h), shared by the dense unit's PE loop and
     * the position-parallel sparse path's: one instruction runs at a time. */
#pragma HLS ALLOCATION function instances=mac_array limit=1
#endif
    /* spp_unit's item helpers: one instance for its three stages. */
#pragma HLS ALLOCATION function instances=spp_item_of limit=1
#pragma HLS ALLOCATION function instances=spp_rows_rd limit=1
#pragma HLS ALLOCATION function instances=spp_rows_wr limit=1
    /* the dense unit's kernel-gradient store (conv_store_grads): its call
     * sites (one group, a row tile's halves on two ports, or a row at a
     * time) never run together; each instance is a (rows x columns):1
     * select per word of a beat */
#pragma HLS ALLOCATION function instances=wr_kernels limit=1
    /* the dense unit's row bursts (conv.cpp rows_rd): one instance for the
     * load stage's two call sites (WG's errors, EB's masks: one or the
     * other); the store stage's own rows_wr */
#pragma HLS ALLOCATION function instances=rows_rd limit=1
    insn_exps e;
    load_exps(tab, f, e);
    q_stats st;
    q_stats_clear(st);
    wide_t exp = e.src;   /* RELU_*, POOL_*: the input's exponent */
    switch (f.op) {
    case OP_CONV_FP:
    case OP_CONV_EB:
    case OP_CONV_WG:   /* one call site: one convolution unit, one PE array */
        conv_unit(ddr, ddr1, f, e, st);
        exp = f.op == OP_CONV_WG ? (wide_t)e.dst : (wide_t)e.src + e.src2;
        break;
    case OP_UPDATE:
        update_unit(ddr, ddr1, f, e, st);
        exp = e.src2;
        break;
    case OP_RELU_FP:
    case OP_RELU_BP:
        stream_relu(ddr, ddr1, f, st);
        break;
    case OP_SCONV_FP:
    case OP_SCONV_EB:
    case OP_SCONV_WG:
        if (const uint32_t refused = sconv_unit(ddr, f, e, st))
            return refused;   /* its fault: nothing written, no statistics */
        exp = f.op == OP_SCONV_WG ? (wide_t)e.dst : (wide_t)e.src + e.src2;
        break;
    case OP_BN_FP:
    case OP_BN_BP:
        stream_bn(ddr, ddr1, f, e, st);
        exp = (wide_t)e.src + e.src2;
        break;
    case OP_ADD:
        eltwise_add(ddr, ddr1, f, e, st);
        exp = e.src < e.src2 ? e.src : e.src2;
        break;
    case OP_AVGPOOL_FP:
    case OP_AVGPOOL_BP:
        eltwise_avgpool(ddr, f, e, st);
        exp = (wide_t)e.src - CTRAIN_AVG_SHIFT;
        break;
    case OP_POOL_FP:
    default:   /* OP_POOL_FP, OP_POOL_BP: validation let nothing else through */
        stream_pool(ddr, f, st);
        break;
    }
    q_stats_store(ddr, f.stats, st, (int32_t)(uint32_t)exp);   /* exp wraps to 32 bits */
    return FAULT_NONE;
}

void ctrain_top(ddr_t *ddr, uint32_t prog, uint32_t n_insn, uint32_t table,
                uint32_t table_len, uint32_t ddr_size, uint32_t *status, uint32_t *pc,
                uint32_t *fault_addr CTRAIN_TOP_PORT1) {
    /* DDR: a burst master per data port, the PS port's width (docs/overlay.md). */
#pragma HLS INTERFACE mode=m_axi port=ddr offset=slave bundle=gmem depth=CTRAIN_PORT_DEPTH max_read_burst_length=64 max_write_burst_length=256 num_read_outstanding=16 num_write_outstanding=4
#if CTRAIN_DDR_PORTS > 1
    /* The second port: its own bundle (adapter, AXI master, HP port), same DDR. */
#pragma HLS INTERFACE mode=m_axi port=ddr1 offset=slave bundle=gmem1 depth=CTRAIN_PORT_DEPTH max_read_burst_length=64 max_write_burst_length=256 num_read_outstanding=16 num_write_outstanding=4
#pragma HLS INTERFACE mode=s_axilite port=ddr1 bundle=control offset=REG_DDR1_LO
    ddr_t *const p1 = ddr1;
#else
    ddr_t *const p1 = ddr;   /* one port: the units' second streams share it */
#endif
    /* Registers pinned at the REG_* offsets of ctrain_isa.h (Vitis's own layout). */
#pragma HLS INTERFACE mode=s_axilite port=ddr bundle=control offset=REG_DDR_LO
#pragma HLS INTERFACE mode=s_axilite port=prog bundle=control offset=REG_PROG
#pragma HLS INTERFACE mode=s_axilite port=n_insn bundle=control offset=REG_N_INSN
#pragma HLS INTERFACE mode=s_axilite port=table bundle=control offset=REG_TABLE
#pragma HLS INTERFACE mode=s_axilite port=table_len bundle=control offset=REG_TABLE_LEN
#pragma HLS INTERFACE mode=s_axilite port=ddr_size bundle=control offset=REG_DDR_SIZE
#pragma HLS INTERFACE mode=s_axilite port=status bundle=control offset=REG_STATUS
#pragma HLS INTERFACE mode=s_axilite port=pc bundle=control offset=REG_PC
#pragma HLS INTERFACE mode=s_axilite port=fault_addr bundle=control offset=REG_FAULT_ADDR
#pragma HLS INTERFACE mode=s_axilite port=return bundle=control
    TRACE_CLEAR();
    uint32_t addr = 0;
    uint32_t code = check_program(prog, n_insn, table, table_len, ddr_size, addr);
    if (code != FAULT_NONE) {
        *status = code;
        *pc = 0;
        *fault_addr = addr;
        return;
    }
    /* The on-chip copy of the table every instruction reads its exponents from. */
    int32_t tab[CTRAIN_MAX_TABLE];
    if (table_len > 0)
        agu_rd_i32<CTRAIN_MAX_TABLE>(ddr, table, tab, table_len);

    uint32_t i = 0;
run:
    for (; i < n_insn; i++) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=MAX_PROGRAM
        *pc = i; /* progress: a driver timeout reports the instruction reached */
        ctrain_insn_t f;
        fetch_insn(ddr, prog, i, f);
        code = validate_insn(ddr, f, ddr_size, table_len, addr);
        if (code != FAULT_NONE || f.op == OP_HALT) {
            TRACE_RECORD(i);
            break;
        }
        code = execute(ddr, p1, tab, f);
        TRACE_RECORD(i);
        if (code != FAULT_NONE)
            break;
    }
    *status = code;
    *pc = i;
    *fault_addr = code != FAULT_NONE ? addr : 0;
}
