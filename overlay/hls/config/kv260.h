/*
 * Kria KV260 (K26 SOM) (xck26-sfvc784-2LV-c): 1248 DSP48E2, 144 BRAM36, 64 URAM, 117120 LUTs.
 * Every fact of the board lives here: the HLS build, the Tcl flows
 * (scripts/board.tcl) and the driver (ctrain.boards) read these #defines.
 */
#ifndef CTRAIN_BOARD_CFG_H
#define CTRAIN_BOARD_CFG_H

#define CTRAIN_BOARD_NAME "kv260"
/* $BOARD on the board's PYNQ image; aliases: older or variant names. */
#define CTRAIN_PYNQ_NAME "KV260"
#define CTRAIN_PYNQ_ALIASES ""
#define CTRAIN_PART "xck26-sfvc784-2LV-c"
/* Vivado board files that carry the PS preset (DDR, MIO, clocks). */
#define CTRAIN_BOARD_PART "xilinx.com:kv260_som:part0:1.4"
/* PS kind (zynq7: processing_system7, zynqmp: zynq_ultra_ps_e) and the HP port the m_axi uses. */
#define CTRAIN_PS "zynqmp"
#define CTRAIN_HP_PORT "S_AXI_HP0_FPD"
#define CTRAIN_CLOCK_MHZ 150
/* The clock a full-chip int8 DSP array closes on this part, for the chip's
 * int8 peak (ctrain.resources.peaks; docs/overlay.md): Xilinx's int8 DPU
 * (B3136) on the K26 (Kria NLP-SmartVision accelerator notes: 300 MHz). */
#define CTRAIN_PART_CLOCK_MHZ 300

/* PE array: rows produce output channels, columns reduce input channels.
 * 2 x 6 x 8 (96 int8 products): the chip's 144 BRAM36 and 64 URAM bind, not
 * its DSPs; 2 x 8 x 8 needs 130 BRAM36 (the WG tap accumulators, R x C x 48
 * bit per tap), 3 x 6 x 8 60 URAM (the column operand bands, L x C), both
 * past the 15% margin (docs/overlay.md "Sizes"). */
#define CTRAIN_PE_ROWS 6
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
#define CTRAIN_CONV_URAM 1
/* 1: the max pool's input band buffer (stream_pool's pin: two word-parity
 * banks) is bound to URAM (boards short of BRAM); 0: BRAM. */
#define CTRAIN_POOL_URAM 1
/* 1: the tiled max pool's bands are a DATAFLOW loop (stream.h, session 22):
 * its own ping-pong channels beside the band buffers (+4 BRAM36, +4 URAM; CNV dense at batch 64: the iteration 74.44M -> 73.07M
 * (79.2 -> 80.7% efficiency)). */
#define CTRAIN_POOL_DATAFLOW 1

/* Elements per burst of the element-wise units (RELU, UPDATE, BN, index check). */
#define CTRAIN_CHUNK 512
/* One SGD lane (update.h): UPDATE's 512-element chunks take 1.35 cycles an
 * element to read (13 bytes and four burst latencies), so more lanes would
 * buy no cycle. */
#define CTRAIN_UPDATE_LANES 1
/* UPDATE's own chunk (update.h, session 22): each burst's latency over
 * more beats, in the RAMs CTRAIN_CHUNK's took.  CNV dense at batch 64:
 * UPDATE 2.09M -> 1.68M cycles (74.0 -> 91.8%), the iteration
 * 73.07M -> 72.67M (80.7 -> 81.1%); no BRAM more, +0.5K LUT. */
#define CTRAIN_UPDATE_CHUNK 1024
/* BN's chunk (stream.h) in distributed RAM (the BRAM is the PE array's):
 * each read burst's latency over 256 beats.  CNV 80% at batch 64: stream
 * 4.84M -> 2.77M cycles; LUT +5.4K. */
#define CTRAIN_BN_CHUNK 4096
#define CTRAIN_BN_LUTRAM 1

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

/* The position-parallel sparse path's window words per PE bank (sconv.h's default,
 * CHIP_LUT / 8 / SP_P rounded up to 64, leaves LUTs unused here): 256, the
 * most within the 85% margin since the estimate counts the bursts' lane <->
 * bank selects (session 13; 384 took 90.2%); with the pair loop's DATAFLOW
 * an 80%-pruned CNV's iteration is 42.55M cycles (55.63M before, at 384,
 * hand-pipelined; ctrain perf --model cnv --sparsity 0.8). */
#define CTRAIN_SPARSE_WDEPTH 256

/* Bytes per beat of the m_axi data port (the width of the PS port it connects to). */
#define CTRAIN_DDR_BEAT 16
/* Peak GB/s of the DDR behind that port: DDR4-2400, 64 bit. */
#define CTRAIN_DDR_GBPS 19.2

/* The chip's resources (ctrain.resources checks the estimate against them). */
#define CTRAIN_CHIP_DSP 1248
#define CTRAIN_CHIP_BRAM36 144
#define CTRAIN_CHIP_URAM 64
#define CTRAIN_CHIP_LUT 117120
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
/* The position path's FP/WG list decode two kept weights a cycle (sconv.h
 * CTRAIN_SPARSE_DECODE, session 35): four lanes bank the lists four ways,
 * +3.5 BRAM36 (85.1%, over the margin); two take +1.5 (83.7%). */
#define CTRAIN_SPARSE_DECODE 2
/* The dense unit's item loop a DATAFLOW loop (conv.h): load, compute and
 * store overlap, a row tile's staged weights its first pseudo-items. */
#define CTRAIN_CONV_DATAFLOW 1

/* The position PEs' products as multiply-accumulates, a DSP each (sconv.h):
 * the chip's DSPs to spare pay for the PEs' fabric accumulators. */
#define CTRAIN_SPARSE_POS_MACC 1

/* No row-tile path (sconv.h CTRAIN_SPARSE_ROWS): its own array, lists and
 * window (45K LUTs, 103 DSPs, 21 BRAM36, 12 URAM in the estimate) that the
 * compiler's cycle model picks for no layer of the built-in models at
 * 50-90% sparsity but the MLP's (CNV, ResNet-20, VGG-small, LeNet-5: the
 * same cycles without it); at 90-95% for fully connected layers (CNV at 95%
 * 0.5% longer without it, the MLP 6% / 24%), which then run dense
 * (docs/overlay.md "Board configurations"). */
#define CTRAIN_SPARSE_ROWS 0

/* The position path's stepped lists, WG accumulators and chunk table in
 * BRAM (sconv.h CTRAIN_SPARSE_LIST_BRAM), which the row-tile path's going
 * freed: 8.0K fewer LUTs by the estimate for 11.5 BRAM36 (97 -> 108.5 of
 * 144), the same cycles (binding only); the dense unit's band buffers in
 * BRAM too (CTRAIN_CONV_BANDS_BRAM) would need 145. */
#define CTRAIN_SPARSE_LIST_BRAM 1

/* The position path's list staging (partitioned by the beat) in BRAM too
 * (sconv.h CTRAIN_SPARSE_STAGE_BRAM): 3.8K fewer LUTs for 8 BRAM36 (-> 116.5,
 * 81%), binding only. */
#define CTRAIN_SPARSE_STAGE_BRAM 1

/* Since session 31 4880 kept weights a position-path list chunk (twice the
 * default CHIP_LUT / 48; lists and staging in BRAM, +11.5 BRAM36): fewer
 * chunks, so fewer reloads of each item's window; CNV-80% FP+EB+WG 0.452
 * -> 0.437 of dense.  The chunk's WG accumulators (two banks of 2440 x 48
 * bit) go to URAM, which the chip has to spare (sconv.h
 * CTRAIN_SPARSE_ACC_URAM: 9 BRAM36 for 2 URAM), to keep the BRAM under 85%. */
#define CTRAIN_SPARSE_LIST 4880
#define CTRAIN_SPARSE_ACC_URAM 1

/* Since session 32 128 output rows per position-path PE bank (sconv.h
 * CTRAIN_SPARSE_ODEPTH, default 64 below 256 PEs): a chunk takes twice the
 * rows (SP_OD / T), so each item's window is read half as often; CNV-80%
 * FP+EB+WG 0.437 -> 0.410 of dense, +7.0K LUTs (the output and row banks'
 * LUTRAM). */
#define CTRAIN_SPARSE_ODEPTH 128

/* DSP slices for fabric adders (pe_array.h): WG's 48-bit tap accumulation
 * (CTRAIN_TAP_ACC_DSP) and the PE array's and position path's adder trees
 * (CTRAIN_TREE_DSP) in the slices two thirds of which nothing else uses;
 * the same bits and cycles (binding only). */
#define CTRAIN_TAP_ACC_DSP 1
#define CTRAIN_TREE_DSP 1

#endif
