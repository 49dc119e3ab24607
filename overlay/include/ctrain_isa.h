/*
 * CTrain ISA: the one definition of the instruction layout, opcodes, flags,
 * statistics record, fault codes and AXI-lite register map.
 *
 * Included by the HLS top (overlay/hls), by host_lib, and read by Python
 * through cffi: everything between the cdef markers below must stay plain
 * declarations that cffi's ffi.cdef() accepts (no #include, no #if, no
 * expressions in #define).  docs/isa.md gives the meaning of every field per
 * opcode; docs/numeric.md the arithmetic.
 */
#ifndef CTRAIN_ISA_H
#define CTRAIN_ISA_H

#include <stdint.h>

/* @cdef-begin */

#define CTRAIN_ISA_VERSION 1
#define CTRAIN_INSN_BYTES 128
#define CTRAIN_STATS_BYTES 32
#define CTRAIN_ALIGN 64

/* Limits of the PE array and its on-chip buffers: the compiler rejects
 * models beyond them, the engines fault on instructions beyond them. */
#define CTRAIN_MAX_KERNEL 11
#define CTRAIN_MAX_STRIDE 4
#define CTRAIN_MAX_PAD 5
#define CTRAIN_MAX_DIM 512
#define CTRAIN_MAX_CH 2048
#define CTRAIN_MAX_BATCH 1024
#define CTRAIN_MAX_COUNT 16777216
#define CTRAIN_MAX_TABLE 4096
#define CTRAIN_MAX_SPARSE_COLS 65536  /* c_in*k_h*k_w of a sparse layer (16-bit column index) */
/* AVGPOOL_*: out = sum * R >> (CTRAIN_AVG_SHIFT + ...), R = round(2^CTRAIN_AVG_SHIFT / (k_h*k_w)) */
#define CTRAIN_AVG_SHIFT 30

/* Hyper-parameter block of OP_UPDATE: six consecutive table entries from
 * slot e_par. */
#define CTRAIN_PAR_LR_M 0
#define CTRAIN_PAR_LR_S 1
#define CTRAIN_PAR_MU_M 2
#define CTRAIN_PAR_MU_S 3
#define CTRAIN_PAR_WD_M 4
#define CTRAIN_PAR_WD_S 5
#define CTRAIN_PAR_COUNT 6

enum ctrain_opcode {
    OP_INVALID = 0, /* zeroed memory never executes silently */
    OP_HALT = 1,
    OP_CONV_FP = 2,
    OP_CONV_EB = 3,
    OP_CONV_WG = 4,
    OP_UPDATE = 5,
    OP_RELU_FP = 6,
    OP_RELU_BP = 7,
    OP_POOL_FP = 8,
    OP_POOL_BP = 9,
    OP_SCONV_FP = 10,   /* CONV_FP with weights as values + sparse index */
    OP_SCONV_EB = 11,   /* CONV_EB through the transposed index */
    OP_SCONV_WG = 12,   /* CONV_WG computing only the kept weights' gradients */
    OP_BN_FP = 13,      /* frozen batch norm: per-channel x*A + B */
    OP_BN_BP = 14,      /* its backward: err*A */
    OP_ADD = 15,        /* residual sum of two int8 tensors (forward; the fork's error sum in backward) */
    OP_AVGPOOL_FP = 16, /* average pooling (k_h x k_w window, stride; global when the window is the map) */
    OP_AVGPOOL_BP = 17, /* its backward: each window's error spread over the window */
    OP_COUNT = 18
};

enum ctrain_flag {
    FLAG_RELU = 1,      /* CONV_FP: ReLU on the output stream, before stats */
    FLAG_BIAS = 2,      /* CONV_FP adds bias; CONV_WG writes the bias gradient */
    FLAG_RELU_MASK = 4  /* CONV_EB, POOL_BP, ADD: zero errors where the aux activation is <= 0 */
};

enum ctrain_fault {
    FAULT_NONE = 0,
    FAULT_OPCODE = 1,   /* unknown opcode or flag bits */
    FAULT_SHAPE = 2,    /* shape beyond the PE array's limits or inconsistent */
    FAULT_BOUNDS = 3,   /* operand outside the DDR window */
    FAULT_ALIGN = 4,    /* operand address not aligned to its element size */
    FAULT_SLOT = 5,     /* parameter-table slot beyond the table */
    FAULT_PROGRAM = 6,  /* instruction stream itself outside the DDR window */
    FAULT_OVERLAP = 7,  /* a written operand overlaps another operand */
    FAULT_INDEX = 8,    /* a sparse index entry out of range or out of order */
    FAULT_TILE = 9      /* a dense tiling (tile_g, tile_br) beyond the board's buffers */
};

/* Control register bits (Vitis HLS ap_ctrl_hs) */
#define CTRL_AP_START 1
#define CTRL_AP_DONE 2
#define CTRL_AP_IDLE 4
#define CTRL_AP_READY 8

/* AXI-lite register map of ctrain_top (bundle `control`).  Vitis HLS's own
 * layout (Vivado IP flow): 0x00-0x0C block control and interrupts, then the
 * arguments in order, a 32-bit scalar in an 8-byte slot (data, reserved), the
 * 64-bit m_axi offset in 12 (low word, high word, reserved), an ap_vld
 * output in 16 (data, its <arg>_ctrl word with <arg>_ap_vld at +4, two
 * reserved).  ctrain_top pins every argument at these offsets with
 * `s_axilite ... offset=` pragmas, so the export has this map whatever a tool
 * version's default; the driver still takes the offsets from the .hwh.
 * REG_MAP_BYTES is the slave's address space (C_S_AXI_CONTROL_ADDR_WIDTH = 7). */
#define REG_CTRL 0x00
#define REG_GIE 0x04
#define REG_IER 0x08
#define REG_ISR 0x0C
#define REG_DDR_LO 0x10
#define REG_DDR_HI 0x14
#define REG_PROG 0x1C
#define REG_N_INSN 0x24
#define REG_TABLE 0x2C
#define REG_TABLE_LEN 0x34
#define REG_DDR_SIZE 0x3C
#define REG_STATUS 0x44
#define REG_STATUS_CTRL 0x48
#define REG_PC 0x54
#define REG_PC_CTRL 0x58
#define REG_FAULT_ADDR 0x64
#define REG_FAULT_ADDR_CTRL 0x68
/* The second data port's 64-bit m_axi offset (argument ddr1, the top's last:
 * 12 bytes after FAULT_ADDR's 16-byte slot), present only in a build with
 * CTRAIN_DDR_PORTS 2; the driver writes the DDR base into it too. */
#define REG_DDR1_LO 0x74
#define REG_DDR1_HI 0x78
#define REG_MAP_BYTES 0x80

/* One instruction: 32 little-endian 32-bit words.  Addresses are byte
 * offsets from the DDR base register; e_* are parameter-table slots. */
typedef struct {
    uint32_t op;
    uint32_t flags;
    uint32_t n;
    uint32_t c_in;
    uint32_t h_in;
    uint32_t w_in;
    uint32_t c_out;
    uint32_t h_out;
    uint32_t w_out;
    uint32_t k_h;
    uint32_t k_w;
    uint32_t stride;
    uint32_t pad;
    uint32_t count;
    uint32_t count_w;
    uint32_t src;
    uint32_t src2;
    uint32_t src3;
    uint32_t aux;
    uint32_t dst;
    uint32_t dst2;
    uint32_t stats;
    uint32_t e_src;
    uint32_t e_src2;
    uint32_t e_src3;
    uint32_t e_dst;
    uint32_t e_par;
    /* CONV_FP/EB/WG tiling (docs/isa.md "Dense tiling"), chosen by the
     * compiler; 0 = the unit's own rule (the largest that fits). */
    uint32_t tile_g;    /* column tiles (PE_COLS channels) per group, at most all of them */
    uint32_t tile_br;   /* swept rows per band, at most all of them */
    uint32_t tile_rb;   /* row tiles per block (one group and one band: the block mode; EB
                         * with one group and several bands: per weight block), at most all */
    uint32_t reserved[2];
} ctrain_insn_t;

/* What every instruction reports about its output (docs/numeric.md). */
typedef struct {
    int64_t max_abs;    /* largest |output| before the final shift/saturation, unit 2^exp */
    int32_t exp;        /* exponent of max_abs's unit */
    uint32_t sat;       /* outputs clamped at the store */
    uint32_t nnz;       /* nonzero outputs stored */
    uint32_t count;     /* outputs stored */
    uint32_t reserved[2];
} ctrain_stats_t;

/* Byte offsets of the parts of a sparse layer's index block (docs/isa.md
 * "Sparse layers") and its size; ctrain_index_layout() computes them. */
typedef struct {
    uint64_t rowptr, col, tptr, tpos, trow, size;
} ctrain_index_layout_t;

/* @cdef-end */

/* The index block's layout for `rows` rows (c_out), `cols` columns
 * (c_in*k_h*k_w) and `z` kept weights: rowptr u32[rows+1], col u16[z] (a
 * padding halfword when z is odd), tptr u32[cols+1], tpos u32[z], trow
 * u16[z]. The one definition: host_lib builds blocks with it, the HLS fetch
 * and sparse units and the testbench read them with it, and Python gets it
 * through host_lib (ctrain_host_index_layout). 64-bit: a rejected
 * instruction's fields may be anything. */
static inline ctrain_index_layout_t ctrain_index_layout(uint64_t rows, uint64_t cols, uint64_t z)
{
    ctrain_index_layout_t ix;
    ix.rowptr = 0;
    ix.col = 4 * (rows + 1);
    ix.tptr = ix.col + 2 * z + 2 * (z & 1);
    ix.tpos = ix.tptr + 4 * (cols + 1);
    ix.trow = ix.tpos + 4 * z;
    ix.size = ix.trow + 2 * z;
    return ix;
}

#endif /* CTRAIN_ISA_H */
