/*
 * ZCU104 (xczu7ev-ffvc1156-2-e): 1728 DSP48E2, 312 BRAM36, 96 URAM, 230400 LUTs.
 * Every fact of the board lives here: the HLS build, the Tcl flows
 * (scripts/board.tcl) and the driver (ctrain.boards) read these #defines.
 */
#ifndef CTRAIN_BOARD_CFG_H
#define CTRAIN_BOARD_CFG_H

#define CTRAIN_BOARD_NAME "zcu104"
/* $BOARD on the board's PYNQ image; aliases: older or variant names. */
#define CTRAIN_PYNQ_NAME "ZCU104"
#define CTRAIN_PYNQ_ALIASES ""
#define CTRAIN_PART "xczu7ev-ffvc1156-2-e"
/* Vivado board files that carry the PS preset (DDR, MIO, clocks). */
#define CTRAIN_BOARD_PART "xilinx.com:zcu104:part0:1.1"
/* PS kind (zynq7: processing_system7, zynqmp: zynq_ultra_ps_e) and the HP port the m_axi uses. */
#define CTRAIN_PS "zynqmp"
#define CTRAIN_HP_PORT "S_AXI_HP0_FPD"
#define CTRAIN_CLOCK_MHZ 150
/* The clock a full-chip int8 DSP array closes on this part, for the chip's
 * int8 peak (ctrain.resources.peaks; docs/overlay.md): Xilinx's int8 DPU (2 x
 * B4096) on the ZCU104 (UG1354: 300 MHz). */
#define CTRAIN_PART_CLOCK_MHZ 300

/* PE array: rows produce output channels, columns reduce input channels.
 * 3 x 16 x 8 (384 int8 products): the largest whose dense CNV FP/EB/WG
 * efficiency stays >= 60% and whole iteration >= 45% (batch 64: 78/72/79%,
 * 51%) and which fits; 4 x 16 x 8 drops the iteration to 43%, 2 x 16 x 12 and
 * 2 x 24 x 8 exceed the BRAM or LUT margin (docs/overlay.md "Sizes"). */
#define CTRAIN_PE_ROWS 16
#define CTRAIN_PE_COLS 8
/* Batch lanes sharing each weight (pe_array.h). */
#define CTRAIN_PE_LANES 3
/* Dense buffers (pe_array.h): column operand bytes per lane and column, band
 * positions per lane and row: the smallest legal (MAX_KERNEL x MAX_DIM,
 * MAX_DIM): the chip's BRAM is the limit (docs/overlay.md "Resource
 * estimate"). Weights 1024 a PE, twice WG's tap accumulators (CONV_TCAP: 48
 * bits each where a weight is 8, so the taps keep the smallest legal 512):
 * FP's and EB's block mode keeps more row tiles of a deep layer on chip and
 * re-reads its column operands less often (session 31; +16 BRAM36). */
#define CTRAIN_CONV_WCAP 1024
#define CTRAIN_CONV_TCAP 512
#define CTRAIN_CONV_ACT 5632
#define CTRAIN_CONV_OUT 512
/* 1: the dense column operands (act, the largest dense buffer) are bound to
 * URAM (boards that have it); 0: BRAM. */
#define CTRAIN_CONV_URAM 1
/* 1: the max pool's input band buffer (stream_pool's pin: two word-parity
 * banks) is bound to URAM (boards short of BRAM); 0: BRAM. */
#define CTRAIN_POOL_URAM 0
/* 1: the tiled max pool's bands are a DATAFLOW loop (stream.h, session 22):
 * its own ping-pong channels beside the band buffers (+8 BRAM36; CNV dense at batch 64: POOL_FP/BP 2.39M -> 1.02M cycles, the iteration
 * 25.66M -> 24.29M (57.4 -> 60.7% efficiency)). */
#define CTRAIN_POOL_DATAFLOW 1

/* Elements per burst of the element-wise units (RELU, UPDATE, BN, index check). */
#define CTRAIN_CHUNK 512
/* One SGD lane (update.h): UPDATE's 512-element chunks take 1.35 cycles an
 * element to read (13 bytes and four burst latencies), so more lanes would
 * buy no cycle. */
#define CTRAIN_UPDATE_LANES 1
/* UPDATE's own chunk (update.h, session 22): each burst's latency over
 * twice the beats of CTRAIN_CHUNK, in the RAMs its 512 took.  CNV dense at
 * batch 64: UPDATE 2.09M -> 1.68M cycles (74.0 -> 91.8%), the iteration
 * 23.79M -> 23.39M (61.9 -> 63.0%); no BRAM more, +0.5K LUT (2048: 97.1%
 * for +26 BRAM36, 83.8% of the chip). */
#define CTRAIN_UPDATE_CHUNK 1024
/* BN's chunk (stream.h): each read burst's latency over 1024 beats, in
 * block RAM since session 22 (the dense unit's wbuf gave back 16 BRAM36;
 * 2048 in distributed RAM before, which had taken CNV 80% at batch 64 from
 * stream 4.84M to 3.06M cycles).  CNV dense at batch 64: stream 2.78M ->
 * 2.28M cycles, the iteration 24.29M -> 23.79M (60.7 -> 61.9%); +24 BRAM36,
 * -3.1K LUT. */
#define CTRAIN_BN_CHUNK 16384
#define CTRAIN_BN_LUTRAM 0

/* Sparse unit (docs/overlay.md): kept weights per PE row on chip, window
 * positions per batch lane, output positions per x tile. */
#define CTRAIN_SPARSE_ENTRIES 2048
#define CTRAIN_SPARSE_WIN 2048
#define CTRAIN_SPARSE_XT 64
/* 1: the sparse array's int8 products are LUT multipliers (BIND_OP
 * impl=fabric) where the DSP slices are too few for two arrays; 0: DSPs. */
#define CTRAIN_SPARSE_MUL_LUT 0
/* 1: the sparse unit's entry lists and per-entry accumulators are bound to
 * URAM (boards that have it and run short of BRAM); 0: BRAM. */
#define CTRAIN_SPARSE_URAM 1
/* The position-parallel sparse path's output rows per PE bank: 64 keeps its
 * 2 x 384 banks in 12K LUTs each (the default, 128, takes twice that and the
 * chip's LUTs past the margin at this array size). */
#define CTRAIN_SPARSE_ODEPTH 64
/* The position-parallel path's stepped lists in BRAM, 7680 kept weights per
 * chunk (the LUT default, 4800, cut CNV's fourth convolution into seven
 * chunks, each reloading the window; at 7680 the 32 rows its output buffer
 * takes fit one): 11.5 BRAM36, while the WG accumulators stay in
 * distributed RAM (in BRAM they would take the BRAM past the margin).
 * CNV 80% FP+EB+WG: 0.364 -> 0.347 of dense (with the WG plan's pairs).
 * 5120 since session 13 (the LUTs its staging and accumulators take went to
 * the bursts' lane <-> bank selects the estimate now counts). */
#define CTRAIN_SPARSE_LIST 5120
#define CTRAIN_SPARSE_LIST_BRAM 1
#define CTRAIN_SPARSE_ACC_BRAM 0
/* EB's value lookup in 32 KB blocks of BRAM (16 banks of one RAMB18, 8
 * BRAM36; the default, 7680 bytes in LUTs, scanned CNV's fourth convolution's
 * values four times per chunk and its fifth's eight), paid for by the chunk
 * table in LUTs (1.5 BRAM36 for 1K LUTs): BRAM 82.9 -> 84.9%, LUT 81.1 ->
 * 80.7%.  CNV 80%: its fifth convolution (128 -> 256) now runs sparse
 * (the compiler's choice), iteration efficiency (kept MACs) 32.3 -> 32.9%. */
#define CTRAIN_SPARSE_VALS 32768
#define CTRAIN_SPARSE_CSTART_BRAM 0

/* The position-parallel sparse path's window words per PE bank (sconv.h's default,
 * CHIP_LUT / 8 / SP_P rounded up to 64, leaves LUTs unused here): 128 since
 * session 13, within the 85% margin with the bursts' lane <-> bank selects
 * counted (192 and 7680-entry lists: 92.6%); with the pair loop's DATAFLOW
 * an 80%-pruned CNV's iteration is 21.00M cycles (20.57M before). */
#define CTRAIN_SPARSE_WDEPTH 128

/* Bytes per beat of the m_axi data port (the width of the PS port it connects to). */
#define CTRAIN_DDR_BEAT 16
/* Peak GB/s of the DDR behind that port: DDR4-2400, 64 bit. */
#define CTRAIN_DDR_GBPS 19.2

/* The chip's resources (ctrain.resources checks the estimate against them). */
#define CTRAIN_CHIP_DSP 1728
#define CTRAIN_CHIP_BRAM36 312
#define CTRAIN_CHIP_URAM 96
#define CTRAIN_CHIP_LUT 230400
#define CTRAIN_DSP_KIND "DSP48E2"
/* int8 products per DSP slice: 2 packs two sharing an operand into one
 * DSP48E2 multiply (hls/mac2.h, Xilinx WP486); 1 on DSP48E1. */
#define CTRAIN_DSP_INT8 2

/* The sparse position path's pair loop a DATAFLOW loop (sconv.h), its
 * load, steps and store overlapped; its compute process a module of its
 * own, so the MAC array is one instance per caller (mac_array.h): the DSPs
 * this chip has to spare pay for it, and the operand selects sharing took
 * go back to the LUTs. */
#define CTRAIN_MAC_SHARED 0
#define CTRAIN_SPARSE_DATAFLOW 1
/* The dense unit's item loop a DATAFLOW loop (conv.h): load, compute and
 * store overlap, a row tile's staged weights its first pseudo-items. */
#define CTRAIN_CONV_DATAFLOW 1
/* The position path's quantizers (sconv.h): 32, so a tile drains in 12
 * steps (a pair's two in 23): at the default 16 (24 and 47) CNV's
 * 80%-pruned iteration took 21.18M cycles, its efficiency on kept MACs
 * 27.8%, under half the dense 55.8%; at 32 21.01M and 28.1%, for 6.4K LUTs
 * by the estimate. */
#define CTRAIN_SPARSE_QUANT 32

/* The position PEs' products as multiply-accumulates, a DSP each (sconv.h):
 * the chip's DSPs to spare pay for the PEs' fabric accumulators. */
#define CTRAIN_SPARSE_POS_MACC 1

/* No row-tile path (sconv.h CTRAIN_SPARSE_ROWS): an array of its own (56K
 * LUTs) that the compiler's cycle model picks for no convolution of the
 * built-in models at 50-80% sparsity; only for fully connected layers at
 * 80-95% (CNV at 90% 3.0% longer without it, at 95% 7.2%; the MLP 40-100%),
 * while the dense unit loads weights lane by lane (docs/overlay.md "Board
 * configurations"); such layers run dense. */
#define CTRAIN_SPARSE_ROWS 0

/* The position path's list staging (partitioned by the beat) in BRAM
 * (sconv.h CTRAIN_SPARSE_STAGE_BRAM): 7.7K fewer LUTs by the estimate for 10
 * BRAM36 (233.5 -> 243.5 of 312, 78%), binding only (session 28). */
#define CTRAIN_SPARSE_STAGE_BRAM 1

/* DSP slices for WG's 48-bit tap accumulation (pe_array.h
 * CTRAIN_TAP_ACC_DSP): a slice's ALU per PE instead of a fabric adder, in
 * slices the chip has to spare; the same bits and cycles (binding only).
 * The adder trees (CTRAIN_TREE_DSP) would need more slices than it has. */
#define CTRAIN_TAP_ACC_DSP 1

#endif
