/*
 * Pynq-Z2 (xc7z020clg400-1): 220 DSP48E1, 140 BRAM36, 0 URAM, 53200 LUTs.
 * Every fact of the board lives here: the HLS build, the Tcl flows
 * (scripts/board.tcl) and the driver (ctrain.boards) read these #defines.
 */
#ifndef CTRAIN_BOARD_CFG_H
#define CTRAIN_BOARD_CFG_H

#define CTRAIN_BOARD_NAME "pynq_z2"
/* $BOARD on the board's PYNQ image; aliases: older or variant names. */
#define CTRAIN_PYNQ_NAME "Pynq-Z2"
#define CTRAIN_PYNQ_ALIASES ""
#define CTRAIN_PART "xc7z020clg400-1"
/* Vivado board files that carry the PS preset (DDR, MIO, clocks). */
#define CTRAIN_BOARD_PART "tul.com.tw:pynq-z2:part0:1.0"
/* PS kind (zynq7: processing_system7, zynqmp: zynq_ultra_ps_e) and the HP port the m_axi uses. */
#define CTRAIN_PS "zynq7"
#define CTRAIN_HP_PORT "S_AXI_HP0"
#define CTRAIN_CLOCK_MHZ 100
/* The clock a full-chip int8 DSP array closes on this part, for the chip's
 * int8 peak (ctrain.resources.peaks; docs/overlay.md): the DPU's 300 MHz on -2
 * UltraScale+ scaled by the DSP Fmax of a -1 Zynq-7000 (DS187: 464 MHz) over a
 * -2 UltraScale+ (DS925: 775 MHz). */
#define CTRAIN_PART_CLOCK_MHZ 180

/* PE array: rows produce output channels, columns reduce input channels. */
#define CTRAIN_PE_ROWS 4
#define CTRAIN_PE_COLS 4
/* Batch lanes sharing each weight (pe_array.h). */
#define CTRAIN_PE_LANES 2
/* Dense buffers (pe_array.h): weights or WG tap accumulators per PE, column
 * operand bytes per lane and column, band positions per lane and row; the
 * smallest legal (MAX_KERNEL^2 rounded up, MAX_KERNEL x MAX_DIM, MAX_DIM):
 * the chip's BRAM is the limit (docs/overlay.md "Resource estimate"). */
#define CTRAIN_CONV_WCAP 512
#define CTRAIN_CONV_ACT 5632
#define CTRAIN_CONV_OUT 512
/* 1: the dense column operands (act, the largest dense buffer) are bound to
 * URAM (boards that have it); 0: BRAM. */
#define CTRAIN_CONV_URAM 0
/* 1: the max pool's input band buffer (stream_pool's pin: two word-parity
 * banks) is bound to URAM (boards short of BRAM); 0: BRAM. */
#define CTRAIN_POOL_URAM 0
/* 1: the tiled max pool's bands are a DATAFLOW loop (stream.h, session 22):
 * its own ping-pong channels beside the band buffers, +4 BRAM36 paid by the
 * dense unit's row and column tables at 32 bits an entry (pe_range).  CNV
 * dense at batch 64: the iteration 377.30M -> 375.03M (93.7 -> 94.3%). */
#define CTRAIN_POOL_DATAFLOW 1
/* The DATAFLOW bands' room: half of POOL_BAND (7168), not stream.h's whole
 * band. Its 64-bit banks, both buffers of a channel together, would grow
 * from 449 to 897 words, past the 512 of their RAMB18s: +4 BRAM36 (87.5%). */
#define CTRAIN_POOL_TILE 3584

/* Elements per burst of the element-wise units (RELU, UPDATE, BN, index check). */
#define CTRAIN_CHUNK 256
/* One SGD lane (update.h): the DSPs are short for more (each lane's four
 * 32 x 32-bit products are 16), and UPDATE's reads (13 bytes an element and
 * four burst latencies a chunk) take more than a cycle an element anyway. */
#define CTRAIN_UPDATE_LANES 1
/* BN's chunk (stream.h): 8 banks of 2 x 8192 / 8 bytes, one RAMB18 each
 * (as at 2048; LUTRAM at 256), each read burst's latency over 1024 beats.
 * CNV 80% at batch 64: stream 9.04M -> 4.41M cycles; BRAM +12 BRAM36. */
#define CTRAIN_BN_CHUNK 8192

/* Sparse unit (docs/overlay.md): kept weights per PE row on chip, window
 * positions per batch lane, output positions per x tile. */
#define CTRAIN_SPARSE_ENTRIES 1024
#define CTRAIN_SPARSE_WIN 2048
#define CTRAIN_SPARSE_XT 64
/* 1: the sparse array's int8 products are LUT multipliers (BIND_OP
 * impl=fabric) where the DSP slices are too few for two arrays; 0: DSPs. */
#define CTRAIN_SPARSE_MUL_LUT 1
/* 1: the sparse unit's entry lists and per-entry accumulators are bound to
 * URAM (boards that have it and run short of BRAM); 0: BRAM. */
#define CTRAIN_SPARSE_URAM 0
/* The position-parallel sparse path (sconv.h): its products on the shared
 * MAC array (mac_array.h; they were LUT multipliers before it was shared),
 * its stepped lists in BRAM, and the LUTs that frees on window words per PE
 * bank and kept weights per list chunk: 640 and 2048 (768 did not fit the
 * LUTs then); an 80%-pruned CNV's FP+EB+WG 0.60 -> 0.34 of dense (ctrain
 * perf --model cnv --sparsity 0.8).  768 since session 12, in the LUTs the
 * later sessions freed (the shared WG kernel store among them): LUT 80.1% ->
 * 83.9%; CNV-80% at batch 64 205.74M -> 196.42M cycles, FP+EB+WG 0.39 ->
 * 0.37 of dense (832 would take 85.9%).  512 since session 13, when the
 * estimate began to count the lane <-> bank selects of the buffers' bursts
 * (docs/overlay.md "Resource estimate": 768 took 90.2% of the LUTs by that
 * count) and the pair loop became a DATAFLOW loop here too (below): its
 * window reloads hidden, CNV-80% 196.42M -> 157.77M cycles (LUT 84.0%). */
#define CTRAIN_SPARSE_LIST_BRAM 1
#define CTRAIN_SPARSE_WDEPTH 512
#define CTRAIN_SPARSE_LIST 2048

/* Bytes per beat of the m_axi data port (the width of the PS port it connects to). */
#define CTRAIN_DDR_BEAT 8
/* Peak GB/s of the DDR behind that port: DDR3-1066, 32 bit. */
#define CTRAIN_DDR_GBPS 4.264

/* The chip's resources (ctrain.resources checks the estimate against them). */
#define CTRAIN_CHIP_DSP 220
#define CTRAIN_CHIP_BRAM36 140
#define CTRAIN_CHIP_URAM 0
#define CTRAIN_CHIP_LUT 53200
#define CTRAIN_DSP_KIND "DSP48E1"
/* int8 products per DSP slice: 2 packs two sharing an operand into one
 * DSP48E2 multiply (hls/mac2.h, Xilinx WP486); 1 on DSP48E1. */
#define CTRAIN_DSP_INT8 1

/* The sparse position path's pair loop a DATAFLOW loop (sconv.h), so the
 * MAC array is one instance per caller (mac_array.h); the position path's
 * share of it LUT multipliers (CTRAIN_SPARSE_POS_MUL_LUT: 16 products, 1K
 * LUTs), since a second array's 32 DSP48E1 would take the DSPs to 97%. */
#define CTRAIN_MAC_SHARED 0
#define CTRAIN_SPARSE_DATAFLOW 1
/* The position path's FP/WG list decode a kept weight a cycle (sconv.h
 * CTRAIN_SPARSE_DECODE, 4 by default since session 35): two lanes take
 * +5 DSP slices and +0.5 BRAM36 (85.0%), four 86.4% and 87.1%, over the
 * margin; this board meets the sparse bars without them. */
#define CTRAIN_SPARSE_DECODE 1
/* The dense unit's item loop a DATAFLOW loop (conv.h): load, compute and
 * store overlap, a row tile's staged weights its first pseudo-items. */
#define CTRAIN_CONV_DATAFLOW 1
#define CTRAIN_SPARSE_POS_MUL_LUT 1

/* The position path's quantizers (sconv.h): 8, so a tile of 32 drains in
 * 4 steps, which its lists' steps hide but for the shortest: at the default
 * 16, 5.3K more LUTs by the estimate (177.4K -> 172.0K with 8) for 0.015%
 * of CNV's 80%-pruned iteration (130.14M -> 130.16M cycles), 0.3% of
 * LeNet-5's, none of a dense one (`ctrain perf`; 4 would save 2.8K more
 * for 2% of LeNet-5's). */
#define CTRAIN_SPARSE_QUANT 8

#endif
