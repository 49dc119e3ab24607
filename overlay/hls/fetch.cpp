/* Instruction fetch/decode and validation (see fetch.h). */
#include "fetch.h"
#include "agu.h"
#include "conv.h"

#define ACC_LIMIT ((uint64_t)1 << 47)
#define PRODUCT_MAX (127ULL * 127ULL)

void fetch_insn(const ddr_t *ddr, uint32_t prog, uint32_t index, ctrain_insn_t &insn) {
    uint8_t raw[CTRAIN_INSN_BYTES];
    /* Registers: the decode below reads every byte at once (agu_rd_bytes: II 1). */
#pragma HLS ARRAY_PARTITION variable=raw type=complete
    agu_rd_bytes(ddr, prog + CTRAIN_INSN_BYTES * index, raw, CTRAIN_INSN_BYTES);
    uint32_t w[CTRAIN_INSN_BYTES / 4];
decode:
    for (int i = 0; i < CTRAIN_INSN_BYTES / 4; i++) {
#pragma HLS UNROLL
        w[i] = (uint32_t)raw[4 * i] | ((uint32_t)raw[4 * i + 1] << 8) |
               ((uint32_t)raw[4 * i + 2] << 16) | ((uint32_t)raw[4 * i + 3] << 24);
    }
    insn.op = w[0];      insn.flags = w[1];   insn.n = w[2];       insn.c_in = w[3];
    insn.h_in = w[4];    insn.w_in = w[5];    insn.c_out = w[6];   insn.h_out = w[7];
    insn.w_out = w[8];   insn.k_h = w[9];     insn.k_w = w[10];    insn.stride = w[11];
    insn.pad = w[12];    insn.count = w[13];  insn.count_w = w[14];
    insn.src = w[15];    insn.src2 = w[16];   insn.src3 = w[17];   insn.aux = w[18];
    insn.dst = w[19];    insn.dst2 = w[20];   insn.stats = w[21];
    insn.e_src = w[22];  insn.e_src2 = w[23]; insn.e_src3 = w[24]; insn.e_dst = w[25];
    insn.e_par = w[26];  insn.tile_g = w[27]; insn.tile_br = w[28]; insn.tile_rb = w[29];
    for (int i = 0; i < 2; i++) {
#pragma HLS UNROLL
        insn.reserved[i] = w[30 + i];
    }
}

uint32_t check_program(uint32_t prog, uint32_t n_insn, uint32_t table, uint32_t table_len,
                       uint32_t ddr_size, uint32_t &fault_addr) {
    if (prog % 4 != 0 || (uint64_t)prog + (uint64_t)CTRAIN_INSN_BYTES * n_insn > ddr_size) {
        fault_addr = prog;
        return FAULT_PROGRAM;
    }
    if (table % 4 != 0 || (uint64_t)table + 4ULL * table_len > ddr_size ||
        table_len > CTRAIN_MAX_TABLE) {
        fault_addr = table;
        return FAULT_PROGRAM;
    }
    fault_addr = 0;
    return FAULT_NONE;
}

static uint32_t allowed_flags(uint32_t op) {
    switch (op) {
    case OP_CONV_FP: return FLAG_RELU | FLAG_BIAS;
    case OP_CONV_EB: return FLAG_RELU_MASK;
    case OP_CONV_WG: return FLAG_BIAS;
    case OP_POOL_BP: return FLAG_RELU_MASK;
    case OP_SCONV_FP: return FLAG_RELU | FLAG_BIAS;
    case OP_SCONV_EB: return FLAG_RELU_MASK;
    case OP_SCONV_WG: return FLAG_BIAS;
    case OP_BN_FP: return FLAG_RELU;
    case OP_BN_BP: return FLAG_RELU_MASK;
    case OP_ADD: return FLAG_RELU | FLAG_RELU_MASK;
    case OP_AVGPOOL_BP: return FLAG_RELU_MASK;
    default: return 0;
    }
}

static bool is_conv(uint32_t op) { return op == OP_CONV_FP || op == OP_CONV_EB || op == OP_CONV_WG; }
static bool is_pool(uint32_t op) { return op == OP_POOL_FP || op == OP_POOL_BP; }
static bool is_bn(uint32_t op) { return op == OP_BN_FP || op == OP_BN_BP; }
static bool is_avg(uint32_t op) { return op == OP_AVGPOOL_FP || op == OP_AVGPOOL_BP; }
static bool in_range(uint32_t v, uint32_t hi) { return v >= 1 && v <= hi; }

/* Kernel (at most k_max), stride, padding and the output-size formula on both axes. */
static bool window_ok(const ctrain_insn_t &f, uint32_t pad, uint32_t k_max = CTRAIN_MAX_KERNEL) {
    /* inline: its three calls share validation's one divider */
#pragma HLS INLINE
    if (!in_range(f.k_h, k_max) || !in_range(f.k_w, k_max) ||
        !in_range(f.stride, CTRAIN_MAX_STRIDE))
        return false;
    uint32_t k_min = f.k_h < f.k_w ? f.k_h : f.k_w;
    if (pad > CTRAIN_MAX_PAD || pad >= k_min)
        return false;
    int64_t span_h = (int64_t)f.h_in + 2 * (int64_t)pad - f.k_h;
    int64_t span_w = (int64_t)f.w_in + 2 * (int64_t)pad - f.k_w;
    if (span_h < 0 || (int64_t)f.h_out != span_h / f.stride + 1)
        return false;
    if (span_w < 0 || (int64_t)f.w_out != span_w / f.stride + 1)
        return false;
    return true;
}

/* Batch, channels and spatial sizes within the limits (pooling: c_out == c_in). */
static bool tensor_ok(const ctrain_insn_t &f, bool pool) {
    bool dims = in_range(f.h_in, CTRAIN_MAX_DIM) && in_range(f.w_in, CTRAIN_MAX_DIM) &&
                in_range(f.h_out, CTRAIN_MAX_DIM) && in_range(f.w_out, CTRAIN_MAX_DIM);
    bool ch = in_range(f.c_in, CTRAIN_MAX_CH) && in_range(f.c_out, CTRAIN_MAX_CH);
    return dims && ch && in_range(f.n, CTRAIN_MAX_BATCH) && (!pool || f.c_out == f.c_in);
}

/* Products summed into one accumulator (an upper bound for EB), as for the
 * dense op (SCONV_* take their dense op's bound). */
static uint64_t terms_per_output(const ctrain_insn_t &f) {
    /* called after tensor_ok and window_ok: every factor within its ISA limit,
     * n * h_out <= 2^19, so each product is as narrow as those limits */
    const dim_t kk = (dim_t)f.k_h * (dim_t)f.k_w;
    if (f.op == OP_CONV_FP || f.op == OP_SCONV_FP) return (uint32_t)((dim_t)f.c_in * kk);
    if (f.op == OP_CONV_EB || f.op == OP_SCONV_EB) return (uint32_t)((dim_t)f.c_out * kk);
    const ap_uint<20> nh = (dim_t)f.n * (dim_t)f.h_out;
    return (uint64_t)(nh * (ap_uint<10>)f.w_out);
}

static bool shape_ok(const ctrain_insn_t &f) {
    if (is_conv(f.op) || is_sparse(f.op)) {
        if (!(tensor_ok(f, false) && window_ok(f, f.pad) &&
              terms_per_output(f) * PRODUCT_MAX < ACC_LIMIT))
            return false;
        if (is_conv(f.op))
            return true;
        const uint64_t cols = sparse_cols(f);
        /* c_out < 2^12 and, once checked, cols <= 2^16: a 12 x 17-bit product */
        return cols <= CTRAIN_MAX_SPARSE_COLS && f.count >= 1 &&
               f.count <= (uint64_t)((ap_uint<12>)f.c_out * (ap_uint<17>)cols);
    }
    if (is_bn(f.op))
        return tensor_ok(f, true) && f.h_out == f.h_in && f.w_out == f.w_in;
    if (is_pool(f.op))
        return f.pad == 0 && tensor_ok(f, true) && window_ok(f, 0);
    if (is_avg(f.op))   /* the window may be as large as the map (global pooling) */
        return f.pad == 0 && tensor_ok(f, true) && window_ok(f, 0, CTRAIN_MAX_DIM);
    if (f.op == OP_RELU_FP || f.op == OP_RELU_BP || f.op == OP_ADD)
        return in_range(f.count, CTRAIN_MAX_COUNT);
    if (f.op == OP_UPDATE)
        return in_range(f.count, CTRAIN_MAX_COUNT) && f.count_w <= f.count;
    return true;   /* HALT */
}

uint32_t slots_used(const ctrain_insn_t &f) {
    switch (f.op) {
    case OP_HALT: return 0;
    case OP_RELU_FP: case OP_RELU_BP: case OP_POOL_FP: case OP_POOL_BP: return SLOT_SRC;
    case OP_AVGPOOL_FP: case OP_AVGPOOL_BP: return SLOT_SRC | SLOT_DST;
    case OP_CONV_FP:
    case OP_SCONV_FP:
        return SLOT_SRC | SLOT_SRC2 | SLOT_DST | ((f.flags & FLAG_BIAS) ? SLOT_SRC3 : 0);
    case OP_BN_FP: return SLOT_SRC | SLOT_SRC2 | SLOT_SRC3 | SLOT_DST;
    case OP_UPDATE: return SLOT_SRC | SLOT_SRC2 | SLOT_DST | SLOT_PAR;
    default: return SLOT_SRC | SLOT_SRC2 | SLOT_DST;
    }
}

/* Operand table in the order ALIGN and BOUNDS are checked. */
enum { OPD_SRC, OPD_SRC2, OPD_SRC3, OPD_AUX, OPD_DST, OPD_DST2, OPD_STATS, OPD_COUNT };

struct operand {
    bool used;
    uint32_t addr;
    uint64_t bytes;
    uint32_t align;
};

static void set_opd(operand o[OPD_COUNT], int i, uint32_t addr, uint64_t bytes, uint32_t align) {
    o[i].used = true;
    o[i].addr = addr;
    o[i].bytes = bytes;
    o[i].align = align;
}

static void operands(const ctrain_insn_t &f, operand o[OPD_COUNT]) {
    for (int i = 0; i < OPD_COUNT; i++) {
#pragma HLS UNROLL
        o[i].used = false;
        o[i].addr = 0;
        o[i].bytes = 0;
        o[i].align = 1;
    }
    /* f passed shape_ok: batch, channels and sizes within the ISA limits, so
     * n * c < 2^21, h * w <= 2^18, c_out * c_in <= 2^22, k_h * k_w <= 121 */
    const ap_uint<22> nc_in = (dim_t)f.n * (dim_t)f.c_in;
    const ap_uint<22> nc_out = (dim_t)f.n * (dim_t)f.c_out;
    const ap_uint<19> hw_in = (dim_t)f.h_in * (dim_t)f.w_in;
    const ap_uint<19> hw_out = (dim_t)f.h_out * (dim_t)f.w_out;
    const ap_uint<23> cc = (dim_t)f.c_out * (dim_t)f.c_in;
    const ap_uint<7> kk = (dim_t)f.k_h * (dim_t)f.k_w;
    uint64_t act_in = (uint64_t)(nc_in * hw_in);
    uint64_t act_out = (uint64_t)(nc_out * hw_out);
    uint64_t weights = (uint64_t)(cc * kk);
    bool bias = (f.flags & FLAG_BIAS) != 0;
    bool mask = (f.flags & FLAG_RELU_MASK) != 0;
    uint64_t cnt = f.count, cnt_w = f.count_w;
    switch (f.op) {
    case OP_CONV_FP:
        set_opd(o, OPD_SRC, f.src, act_in, 1);
        set_opd(o, OPD_SRC2, f.src2, weights, 1);
        if (bias) set_opd(o, OPD_SRC3, f.src3, 4 * (uint64_t)f.c_out, 4);
        set_opd(o, OPD_DST, f.dst, act_out, 1);
        break;
    case OP_CONV_EB:
        set_opd(o, OPD_SRC, f.src, act_out, 1);
        set_opd(o, OPD_SRC2, f.src2, weights, 1);
        if (mask) set_opd(o, OPD_AUX, f.aux, act_in, 1);
        set_opd(o, OPD_DST, f.dst, act_in, 1);
        break;
    case OP_CONV_WG:
        set_opd(o, OPD_SRC, f.src, act_out, 1);
        set_opd(o, OPD_SRC2, f.src2, act_in, 1);
        set_opd(o, OPD_DST, f.dst, 4 * weights, 4);
        if (bias) set_opd(o, OPD_DST2, f.dst2, 4 * (uint64_t)f.c_out, 4);
        break;
    case OP_UPDATE:
        set_opd(o, OPD_SRC, f.src, 4 * cnt, 4);
        set_opd(o, OPD_SRC2, f.src2, 4 * cnt, 4);
        set_opd(o, OPD_SRC3, f.src3, 4 * cnt, 4);
        set_opd(o, OPD_AUX, f.aux, cnt_w, 1);   /* checked even when count_w == 0 */
        set_opd(o, OPD_DST, f.dst, cnt_w, 1);
        break;
    case OP_RELU_FP:
        set_opd(o, OPD_SRC, f.src, cnt, 1);
        set_opd(o, OPD_DST, f.dst, cnt, 1);
        break;
    case OP_RELU_BP:
        set_opd(o, OPD_SRC, f.src, cnt, 1);
        set_opd(o, OPD_AUX, f.aux, cnt, 1);
        set_opd(o, OPD_DST, f.dst, cnt, 1);
        break;
    case OP_POOL_FP:
        set_opd(o, OPD_SRC, f.src, act_in, 1);
        set_opd(o, OPD_DST, f.dst, act_out, 1);
        break;
    case OP_POOL_BP:
        set_opd(o, OPD_SRC, f.src, act_out, 1);
        set_opd(o, OPD_AUX, f.aux, act_in, 1);
        set_opd(o, OPD_DST, f.dst, act_in, 1);
        break;
    case OP_SCONV_FP:
        set_opd(o, OPD_SRC, f.src, act_in, 1);
        set_opd(o, OPD_SRC2, f.src2, cnt, 1);
        if (bias) set_opd(o, OPD_SRC3, f.src3, 4 * (uint64_t)f.c_out, 4);
        set_opd(o, OPD_AUX, f.aux, index_layout(f).size, 4);
        set_opd(o, OPD_DST, f.dst, act_out, 1);
        break;
    case OP_SCONV_EB:
        set_opd(o, OPD_SRC, f.src, act_out, 1);
        set_opd(o, OPD_SRC2, f.src2, cnt, 1);
        if (mask) set_opd(o, OPD_SRC3, f.src3, act_in, 1);
        set_opd(o, OPD_AUX, f.aux, index_layout(f).size, 4);
        set_opd(o, OPD_DST, f.dst, act_in, 1);
        break;
    case OP_SCONV_WG:
        set_opd(o, OPD_SRC, f.src, act_out, 1);
        set_opd(o, OPD_SRC2, f.src2, act_in, 1);
        set_opd(o, OPD_AUX, f.aux, index_layout(f).size, 4);
        set_opd(o, OPD_DST, f.dst, 4 * cnt, 4);
        if (bias) set_opd(o, OPD_DST2, f.dst2, 4 * (uint64_t)f.c_out, 4);
        break;
    case OP_BN_FP:
        set_opd(o, OPD_SRC, f.src, act_in, 1);
        set_opd(o, OPD_SRC2, f.src2, 4 * (uint64_t)f.c_in, 4);
        set_opd(o, OPD_SRC3, f.src3, 4 * (uint64_t)f.c_in, 4);
        set_opd(o, OPD_DST, f.dst, act_in, 1);
        break;
    case OP_BN_BP:
        set_opd(o, OPD_SRC, f.src, act_in, 1);
        set_opd(o, OPD_SRC2, f.src2, 4 * (uint64_t)f.c_in, 4);
        if (mask) set_opd(o, OPD_AUX, f.aux, act_in, 1);
        set_opd(o, OPD_DST, f.dst, act_in, 1);
        break;
    case OP_ADD:
        set_opd(o, OPD_SRC, f.src, cnt, 1);
        set_opd(o, OPD_SRC2, f.src2, cnt, 1);
        if (mask) set_opd(o, OPD_AUX, f.aux, cnt, 1);
        set_opd(o, OPD_DST, f.dst, cnt, 1);
        break;
    case OP_AVGPOOL_FP:
        set_opd(o, OPD_SRC, f.src, act_in, 1);
        set_opd(o, OPD_DST, f.dst, act_out, 1);
        break;
    case OP_AVGPOOL_BP:
        set_opd(o, OPD_SRC, f.src, act_out, 1);
        if (mask) set_opd(o, OPD_AUX, f.aux, act_in, 1);
        set_opd(o, OPD_DST, f.dst, act_in, 1);
        break;
    default:   /* HALT touches nothing, not even stats */
        return;
    }
    set_opd(o, OPD_STATS, f.stats, CTRAIN_STATS_BYTES, 8);
}

/* Operands the opcode writes (UPDATE reads and writes master and momentum). */
static bool written(uint32_t op, int i) {
    if (op == OP_UPDATE)
        return i == OPD_SRC2 || i == OPD_SRC3 || i == OPD_DST || i == OPD_STATS;
    return i == OPD_DST || i == OPD_DST2 || i == OPD_STATS;
}

/* FAULT_OVERLAP: the first pair (each operand against the ones before it)
 * where a written operand shares bytes with another nonempty one, except
 * in-place ReLU (dst == src, same size); returns the later operand, or -1.
 * Without this rule the result would depend on the order tiles stream. */
static int overlapping(uint32_t op, const operand o[OPD_COUNT]) {
    const bool relu = op == OP_RELU_FP || op == OP_RELU_BP;
    for (int j = 1; j < OPD_COUNT; j++) {
        for (int i = 0; i < j; i++) {
            if (!o[i].used || !o[j].used || o[i].bytes == 0 || o[j].bytes == 0)
                continue;
            if (!written(op, i) && !written(op, j))
                continue;
            const uint64_t ai = o[i].addr, aj = o[j].addr;
            if (!(ai < aj + o[j].bytes && aj < ai + o[i].bytes))
                continue;
            if (relu && i == OPD_SRC && j == OPD_DST && ai == aj && o[i].bytes == o[j].bytes)
                continue;
            return j;
        }
    }
    return -1;
}

/* FAULT_INDEX over one pointer array (rowptr or tptr, `count` entries at
 * addr): entry 0 must be 0, each entry at least its predecessor, the last one
 * `total`.  Streams CTRAIN_CHUNK entries per beat-wide burst; returns the
 * index of the first bad entry, or -1. */
static int64_t first_bad_ptr(const ddr_t *ddr, uint32_t addr, uint32_t count, uint32_t total) {
    uint32_t buf[CTRAIN_CHUNK];
    /* partitioned by the beat: the pointers arrive a beat per cycle */
#pragma HLS ARRAY_PARTITION variable=buf type=cyclic factor=AGU_LANES(4)
    uint32_t prev = 0;
ptr_chunk:
    for (uint32_t i0 = 0; i0 < count; i0 += CTRAIN_CHUNK) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CHUNKS_OF(CTRAIN_MAX_SPARSE_COLS + 1)
        const uint32_t len = CHUNK_LEN(count, i0, CTRAIN_CHUNK);
        agu_rd_wide<uint32_t, CTRAIN_CHUNK, 4>(ddr, addr + 4 * i0, buf, len);
        int64_t bad = -1;
        CTRAIN_LOOP(ew, 1, (len + AGU_LANES(4) - 1) / AGU_LANES(4));
    ptr_check:
        for (uint32_t i = 0; i < len; i += AGU_LANES(4)) {
        /* a beat's pointers per cycle, each against its predecessor */
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_CHUNK/AGU_LANES(4)
            uint32_t p = prev;
            for (int j = 0; j < AGU_LANES(4); j++) {
#pragma HLS UNROLL
                if (i + j < len) {
                    const uint32_t k = i0 + i + j, v = buf[i + j];
                    const bool wrong = (k == 0 && v != 0) || (k > 0 && v < p) ||
                                       (k == count - 1 && v != total);
                    if (wrong && bad < 0)
                        bad = k;
                    p = v;
                }
            }
            prev = p;
        }
        if (bad >= 0)
            return bad;
    }
    return -1;
}

/* FAULT_INDEX over `count` uint16 (wide = false) or uint32 entries at addr that
 * must each be below `limit`; returns the first bad one's index, or -1. */
static int64_t first_not_below(const ddr_t *ddr, uint32_t addr, uint32_t count, bool wide,
                               uint32_t limit) {
    uint32_t buf32[CTRAIN_CHUNK];
    uint16_t buf16[CTRAIN_CHUNK];
    /* partitioned by a beat of uint16: the entries arrive a beat per cycle
     * and are checked AGU_LANES(2) per cycle */
#pragma HLS ARRAY_PARTITION variable=buf32 type=cyclic factor=AGU_LANES(2)
#pragma HLS ARRAY_PARTITION variable=buf16 type=cyclic factor=AGU_LANES(2)
    /* the banks in block RAM: the LUTs of the small boards are spent */
#pragma HLS BIND_STORAGE variable=buf32 type=ram_2p impl=bram
#pragma HLS BIND_STORAGE variable=buf16 type=ram_2p impl=bram
below_chunk:
    for (uint32_t i0 = 0; i0 < count; i0 += CTRAIN_CHUNK) {
#pragma HLS LOOP_TRIPCOUNT min=1 max=CHUNKS_OF(CTRAIN_MAX_COUNT)
        const uint32_t len = CHUNK_LEN(count, i0, CTRAIN_CHUNK);
        if (wide)
            agu_rd_wide<uint32_t, CTRAIN_CHUNK, 4>(ddr, addr + 4 * i0, buf32, len);
        else
            agu_rd_wide<uint16_t, CTRAIN_CHUNK, 2>(ddr, addr + 2 * i0, buf16, len);
        int64_t bad = -1;
        CTRAIN_LOOP(ew, 1, (len + AGU_LANES(2) - 1) / AGU_LANES(2));
    below_check:
        for (uint32_t i = 0; i < len; i += AGU_LANES(2)) {
        /* AGU_LANES(2) entries per cycle, the first bad one kept */
#pragma HLS PIPELINE II=1
#pragma HLS LOOP_TRIPCOUNT min=1 max=CTRAIN_CHUNK/AGU_LANES(2)
            for (int j = 0; j < AGU_LANES(2); j++) {
#pragma HLS UNROLL
                if (i + j < len) {
                    const uint32_t v = wide ? buf32[i + j] : (uint32_t)buf16[i + j];
                    if (v >= limit && bad < 0)
                        bad = i0 + i + j;
                }
            }
        }
        if (bad >= 0)
            return bad;
    }
    return -1;
}

/* FAULT_INDEX (docs/isa.md): every entry of the index block at aux, part by
 * part in memory order (rowptr, col, tptr, tpos, trow), before anything is
 * written; fault_addr is the first bad entry's address. */
static uint32_t check_index(const ddr_t *ddr, const ctrain_insn_t &f, uint32_t &fault_addr) {
    /* the parts are checked one after another: one instance of each checker */
#pragma HLS ALLOCATION function instances=first_bad_ptr limit=1
#pragma HLS ALLOCATION function instances=first_not_below limit=1
    const sparse_index_t ix = index_layout(f);
    const uint32_t rows = f.c_out, cols = sparse_cols(f), z = f.count;
    int64_t bad = first_bad_ptr(ddr, f.aux + ix.rowptr, rows + 1, z);
    if (bad >= 0) {
        fault_addr = f.aux + ix.rowptr + 4 * (uint32_t)bad;
        return FAULT_INDEX;
    }
    bad = first_not_below(ddr, f.aux + ix.col, z, false, cols);
    if (bad >= 0) {
        fault_addr = f.aux + ix.col + 2 * (uint32_t)bad;
        return FAULT_INDEX;
    }
    bad = first_bad_ptr(ddr, f.aux + ix.tptr, cols + 1, z);
    if (bad >= 0) {
        fault_addr = f.aux + ix.tptr + 4 * (uint32_t)bad;
        return FAULT_INDEX;
    }
    bad = first_not_below(ddr, f.aux + ix.tpos, z, true, z);
    if (bad >= 0) {
        fault_addr = f.aux + ix.tpos + 4 * (uint32_t)bad;
        return FAULT_INDEX;
    }
    bad = first_not_below(ddr, f.aux + ix.trow, z, false, rows);
    if (bad >= 0) {
        fault_addr = f.aux + ix.trow + 2 * (uint32_t)bad;
        return FAULT_INDEX;
    }
    return FAULT_NONE;
}

uint32_t validate_insn(const ddr_t *ddr, const ctrain_insn_t &f, uint32_t ddr_size,
                       uint32_t table_len, uint32_t &fault_addr) {
    fault_addr = 0;
    /* 1. opcode and flags */
    if (f.op == OP_INVALID || f.op >= OP_COUNT || (f.flags & ~allowed_flags(f.op)) != 0)
        return FAULT_OPCODE;
    /* 2. shape */
    if (!shape_ok(f))
        return FAULT_SHAPE;
    /* 2b. the dense tiling within the board's buffers (conv_make_plan's fits) */
    if (is_conv(f.op) && !conv_make_plan(f).fits)
        return FAULT_TILE;
    /* 3. slots, in header order; UPDATE's block must fit from e_par to e_par + 5 */
    uint32_t used = slots_used(f);
    const uint32_t slot_val[5] = {f.e_src, f.e_src2, f.e_src3, f.e_dst, f.e_par};
    const uint64_t slot_top[5] = {f.e_src, f.e_src2, f.e_src3, f.e_dst,
                                  (uint64_t)f.e_par + CTRAIN_PAR_COUNT - 1};
    for (int i = 0; i < 5; i++) {
        if ((used & (1u << i)) && slot_top[i] >= table_len) {
            fault_addr = slot_val[i];
            return FAULT_SLOT;
        }
    }
    /* 4. alignment, then 5. bounds, each over src, src2, src3, aux, dst, dst2, stats */
    operand o[OPD_COUNT];
    operands(f, o);
    for (int i = 0; i < OPD_COUNT; i++) {
        if (o[i].used && o[i].addr % o[i].align != 0) {
            fault_addr = o[i].addr;
            return FAULT_ALIGN;
        }
    }
    for (int i = 0; i < OPD_COUNT; i++) {
        if (o[i].used && (uint64_t)o[i].addr + o[i].bytes > ddr_size) {
            fault_addr = o[i].addr;
            return FAULT_BOUNDS;
        }
    }
    /* 6. overlap */
    const int clash = overlapping(f.op, o);
    if (clash >= 0) {
        fault_addr = o[clash].addr;
        return FAULT_OVERLAP;
    }
    /* 7. sparse index contents */
    if (is_sparse(f.op))
        return check_index(ddr, f, fault_addr);
    return FAULT_NONE;
}

void load_exps(const int32_t tab[CTRAIN_MAX_TABLE], const ctrain_insn_t &f, insn_exps &e) {
    uint32_t used = slots_used(f);
    e.src = (used & SLOT_SRC) ? tab[f.e_src] : 0;
    e.src2 = (used & SLOT_SRC2) ? tab[f.e_src2] : 0;
    e.src3 = (used & SLOT_SRC3) ? tab[f.e_src3] : 0;
    e.dst = (used & SLOT_DST) ? tab[f.e_dst] : 0;
par:
    for (int i = 0; i < CTRAIN_PAR_COUNT; i++) {
        e.par[i] = (used & SLOT_PAR) ? tab[f.e_par + i] : 0;
    }
}
