/*
 * Ultra96-V2 (xczu3eg-sbva484-1-i): 360 DSP48E2, 216 BRAM36, 0 URAM, 70560 LUTs.
 * Every fact of the board lives here: the HLS build, the Tcl flows
 * (scripts/board.tcl) and the driver (ctrain.boards) read these #defines.
 */
#ifndef CTRAIN_BOARD_CFG_H
#define CTRAIN_BOARD_CFG_H

#define CTRAIN_BOARD_NAME "ultra96"
/* $BOARD on the board's PYNQ image; aliases: older or variant names. */
#define CTRAIN_PYNQ_NAME "Ultra96V2"
#define CTRAIN_PYNQ_ALIASES "Ultra96"
#define CTRAIN_PART "xczu3eg-sbva484-1-i"
/* Vivado board files that carry the PS preset (DDR, MIO, clocks). */
#define CTRAIN_BOARD_PART "avnet.com:ultra96v2:part0:1.2"
/* PS kind (zynq7: processing_system7, zynqmp: zynq_ultra_ps_e) and the HP port the m_axi uses. */
#define CTRAIN_PS "zynqmp"
#define CTRAIN_HP_PORT "S_AXI_HP0_FPD"
#define CTRAIN_CLOCK_MHZ 150
/* The clock a full-chip int8 DSP array closes on this part, for the chip's
 * int8 peak (ctrain.resources.peaks; docs/overlay.md): the DPU's 300 MHz on -2
 * UltraScale+ scaled by DS925's DSP48E2 Fmax of -1 over -2 (645 / 775 MHz). */
#define CTRAIN_PART_CLOCK_MHZ 250

/* PE array: rows produce output channels, columns reduce input channels. */
#define CTRAIN_PE_ROWS 4
#define CTRAIN_PE_COLS 8
/* Batch lanes sharing each weight (pe_array.h). */
#define CTRAIN_PE_LANES 2
/* Dense buffers (pe_array.h): column operand bytes per lane and column, band
 * positions per lane and row: the smallest legal (MAX_KERNEL x MAX_DIM,
 * MAX_DIM): the chip's BRAM is the limit (docs/overlay.md "Resource
 * estimate"). Weights 1024 a PE, twice WG's tap accumulators (CONV_TCAP: 48
 * bits each where a weight is 8, so the taps keep the smallest legal 512):
 * FP's and EB's block mode keeps more row tiles of a deep layer on chip and
 * re-reads its column operands less often (session 31; +4 BRAM36). */
#define CTRAIN_CONV_WCAP 1024
#define CTRAIN_CONV_TCAP 512
#define CTRAIN_CONV_ACT 5632
#define CTRAIN_CONV_OUT 512
/* 1: the dense column operands (act, the largest dense buffer) are bound to
 * URAM (boards that have it); 0: BRAM. */
#define CTRAIN_CONV_URAM 0
/* 1: the max pool's input band buffer (stream_pool's pin: two word-parity
 * banks) is bound to URAM (boards short of BRAM); 0: BRAM. */
#define CTRAIN_POOL_URAM 0
/* 1: the tiled max pool's bands are a DATAFLOW loop (stream.h, session 22):
 * its own ping-pong channels beside the band buffers (+8 BRAM36; CNV dense at batch 64: the iteration 108.59M -> 107.22M
 * (81.4 -> 82.5% efficiency)). */
#define CTRAIN_POOL_DATAFLOW 1

/* Elements per burst of the element-wise units (RELU, UPDATE, BN, index check). */
#define CTRAIN_CHUNK 256
/* One SGD lane (update.h): the DSPs are short for more (each lane's four
 * 32 x 32-bit products are 16), and UPDATE's reads (13 bytes an element and
 * four burst latencies a chunk) take more than a cycle an element anyway. */
#define CTRAIN_UPDATE_LANES 1
/* UPDATE's own chunk (update.h, session 22): each burst's latency over
 * more beats, in the RAMs CTRAIN_CHUNK's took.  CNV dense at batch 64:
 * UPDATE 2.90M -> 1.68M cycles (53.2 -> 91.8%), the iteration
 * 107.22M -> 106.00M (82.5 -> 83.4%); no BRAM more, +0.5K LUT. */
#define CTRAIN_UPDATE_CHUNK 1024
/* BN's chunk (stream.h) in distributed RAM (the BRAM is at 82%): each
 * read burst's latency over 128 beats, not 32 (512 until session 33).
 * CNV at batch 64: BN_FP + BN_BP 3.56M -> 1.76M cycles in both runs, the
 * 80% run's efficiency 41.9 -> 43.8% against half the dense run's 87.1%
 * (issue 13's bar); LUT +2.3K. */
#define CTRAIN_BN_CHUNK 2048
#define CTRAIN_BN_LUTRAM 1

/* Sparse unit (docs/overlay.md): kept weights per PE row on chip (512: the
 * BRAM for the pooling buffers' banks), window positions per batch lane,
 * output positions per x tile. */
#define CTRAIN_SPARSE_ENTRIES 512
#define CTRAIN_SPARSE_WIN 2048
#define CTRAIN_SPARSE_XT 64
/* 1: the sparse array's int8 products are LUT multipliers (BIND_OP
 * impl=fabric) where the DSP slices are too few for two arrays; 0: DSPs. */
#define CTRAIN_SPARSE_MUL_LUT 0
/* 1: the sparse unit's entry lists and per-entry accumulators are bound to
 * URAM (boards that have it and run short of BRAM); 0: BRAM. */
#define CTRAIN_SPARSE_URAM 0
/* The position-parallel sparse path's window words per PE bank and kept
 * weights per list chunk, its stepped lists in BRAM (sconv.h): 256 and 2048,
 * with 512 kept weights per row-tile PE row (CTRAIN_SPARSE_ENTRIES) and the
 * chunk table in LUTs (1.5 BRAM36 for 1K LUTs), take the estimate to 84.3%
 * of the LUTs and 84.7% of the BRAM.  At 320 and 1024 (83.0%, 84.5%) CNV's
 * first 64-channel convolution took eight list chunks, each reloading every
 * image's window (four bands of whole planes); at 2048 four, and the
 * narrower window (five bands) costs less than the chunks it saves: an
 * 80%-pruned CNV's FP+EB+WG 0.348 -> 0.296 of dense, iteration efficiency
 * (kept MACs) 45.8 -> 52.8% (ctrain perf --model cnv --sparsity 0.8).  4096
 * takes the LUTs and BRAM past the margin.  Since session 12 the window is
 * 320 words again, 2,048 LUTs paid by the WG kernel store's one instance
 * (ctrain_top.cpp, -2,112 LUTs): five bands of CNV's 30x30 planes become
 * four; CNV-80% at batch 64 FP+EB+WG 0.41 -> 0.37 of dense, the iteration
 * 100.99M -> 91.14M cycles (efficiency on kept MACs 35.0 -> 38.8%, dense
 * 75.7%); LUT 84.6%.  Since session 31 4096 kept weights a chunk (lists,
 * staging and accumulators in BRAM since session 28: +7.5 BRAM36, 170.5 ->
 * 178 of 216, 82.4%; +0.7K LUTs): fewer chunks, so fewer reloads of each
 * item's window; CNV-80% FP+EB+WG 0.414 -> 0.404 of dense. */
#define CTRAIN_SPARSE_WDEPTH 320
#define CTRAIN_SPARSE_LIST 4096
#define CTRAIN_SPARSE_LIST_BRAM 1
#define CTRAIN_SPARSE_CSTART_BRAM 0
/* Since session 32 128 output rows per position-path PE bank (sconv.h
 * CTRAIN_SPARSE_ODEPTH, default 64 below 256 PEs): a chunk takes twice the
 * rows (SP_OD / T), so each item's window is read half as often on CNV's
 * 28-30 wide planes (L1: T = 4, 16 -> 32 rows a chunk); CNV-80% FP+EB+WG
 * 0.404 -> 0.375 of dense, +4.9K LUTs (the output and row banks' LUTRAM). */
#define CTRAIN_SPARSE_ODEPTH 128

/* Bytes per beat of the m_axi data port (the width of the PS port it connects to). */
#define CTRAIN_DDR_BEAT 16
/* Peak GB/s of the DDR behind that port: LPDDR4-2133, 32 bit. */
#define CTRAIN_DDR_GBPS 8.533

/* The chip's resources (ctrain.resources checks the estimate against them). */
#define CTRAIN_CHIP_DSP 360
#define CTRAIN_CHIP_BRAM36 216
#define CTRAIN_CHIP_URAM 0
#define CTRAIN_CHIP_LUT 70560
#define CTRAIN_DSP_KIND "DSP48E2"
/* int8 products per DSP slice: 2 packs two sharing an operand into one
 * DSP48E2 multiply (hls/mac2.h, Xilinx WP486); 1 on DSP48E1. */
#define CTRAIN_DSP_INT8 2
/* The MAC array (mac_array.h) one instance per caller here: shared, its
 * operand selects take 768 LUTs (84.1% of them, 85.3% beside the sparse
 * path's 2048-entry lists) to free 32 DSP slices this LUT-bound chip has no
 * use for (67.5% of them used shared, 76.4% not). */
#define CTRAIN_MAC_SHARED 0
/* The sparse position path's pair loop a DATAFLOW loop (sconv.h): its
 * MAC array is already its own here. */
#define CTRAIN_SPARSE_DATAFLOW 1
/* The dense unit's item loop a DATAFLOW loop (conv.h): load, compute and
 * store overlap, a row tile's staged weights its first pseudo-items. */
#define CTRAIN_CONV_DATAFLOW 1

/* No row-tile path (sconv.h CTRAIN_SPARSE_ROWS): an array of its own (35K
 * LUTs) that the compiler's cycle model picks for no layer of the built-in
 * models at 50-80% sparsity; at 90-95% for fully connected layers and a
 * strided one (CNV 2.4% / 8.3% longer without it, ResNet-20 0.2% / 0.4%, LeNet-5
 * at 95% 11%, the MLP 38% / 144%), while the dense unit loads weights lane
 * by lane (docs/overlay.md "Board configurations"); such layers run dense. */
#define CTRAIN_SPARSE_ROWS 0

/* The position path's list staging (partitioned by the beat) in BRAM
 * (sconv.h CTRAIN_SPARSE_STAGE_BRAM): 3.1K fewer LUTs by the estimate for 6
 * BRAM36 (160.5 -> 166.5 of 216, 77%), binding only (session 28). */
#define CTRAIN_SPARSE_STAGE_BRAM 1

/* DSP slices for WG's 48-bit tap accumulation (pe_array.h
 * CTRAIN_TAP_ACC_DSP): a slice's ALU per PE instead of a fabric adder, in
 * slices the chip has to spare; the same bits and cycles (binding only).
 * The adder trees (CTRAIN_TREE_DSP) would need more slices than it has. */
#define CTRAIN_TAP_ACC_DSP 1

#endif
