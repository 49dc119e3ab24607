/*
 * ZCU102 (xczu9eg-ffvb1156-2-e): 2520 DSP48E2, 912 BRAM36, 0 URAM, 274080 LUTs.
 * Every fact of the board lives here: the HLS build, the Tcl flows
 * (scripts/board.tcl) and the driver (ctrain.boards) read these #defines.
 */
#ifndef CTRAIN_BOARD_CFG_H
#define CTRAIN_BOARD_CFG_H

#define CTRAIN_BOARD_NAME "zcu102"
/* $BOARD on the board's PYNQ image; aliases: older or variant names. */
#define CTRAIN_PYNQ_NAME "ZCU102"
#define CTRAIN_PYNQ_ALIASES ""
#define CTRAIN_PART "xczu9eg-ffvb1156-2-e"
/* Vivado board files that carry the PS preset (DDR, MIO, clocks). */
#define CTRAIN_BOARD_PART "xilinx.com:zcu102:part0:3.4"
/* PS kind (zynq7: processing_system7, zynqmp: zynq_ultra_ps_e) and the HP port the m_axi uses. */
#define CTRAIN_PS "zynqmp"
#define CTRAIN_HP_PORT "S_AXI_HP0_FPD"
#define CTRAIN_CLOCK_MHZ 200
/* The clock a full-chip int8 DSP array closes on this part, for the chip's
 * int8 peak (ctrain.resources.peaks; docs/overlay.md): Xilinx's int8 DPU (3 x
 * B4096) on the ZCU102 (UG1354: 281 MHz). */
#define CTRAIN_PART_CLOCK_MHZ 281

/* PE array: rows produce output channels, columns reduce input channels. */
#define CTRAIN_PE_ROWS 16
#define CTRAIN_PE_COLS 16
/* Batch lanes sharing each weight (pe_array.h). */
#define CTRAIN_PE_LANES 2
/* Dense buffers (pe_array.h): column operand bytes per lane and column, band
 * positions per lane and row. ACT the smallest legal (MAX_KERNEL x MAX_DIM):
 * the chip's BRAM is the limit (docs/overlay.md "Resource estimate"). OUT
 * 1024 since session 12, not the legal 512 (MAX_DIM): a band holds a whole
 * 30x30 or 32x32 plane, so CNV's 64-channel layers write their outputs (FP)
 * and errors (EB) in one burst per lane over the PE rows' contiguous planes,
 * not one per channel and band with a read-merge of the partial beats at
 * each end (900-byte planes; L0 FP and L1 EB: 12,288 merges and 8,192 bursts
 * each). Cost: +16,384 LUTs (the output and row-operand banks, LUTRAM), paid
 * by one shared instance of the kernel-gradient store (ctrain_top.cpp:
 * -16,320 LUTs of its 256:1 selects), and +21 BRAM36 (the row accumulators),
 * paid by EB's value block below. CNV dense at batch 64: FP / EB / WG 55.2 /
 * 59.5 / 60.6% -> 70.9 / 75.6 / 69.1% (iteration 53.8 -> 65.0%). Weights
 * 1024 a PE, twice WG's tap accumulators (CONV_TCAP: 48 bits each where a
 * weight is 8, so the taps keep the smallest legal 512): FP's and EB's block
 * mode keeps more row tiles of a deep layer on chip and re-reads its column
 * operands less often (session 31; +32 BRAM36). */
#define CTRAIN_CONV_WCAP 1024
#define CTRAIN_CONV_TCAP 512
#define CTRAIN_CONV_ACT 5632
#define CTRAIN_CONV_OUT 1024
/* 1: the dense column operands (act, the largest dense buffer) are bound to
 * URAM (boards that have it); 0: BRAM. */
#define CTRAIN_CONV_URAM 0
/* 1: the max pool's input band buffer (stream_pool's pin: two word-parity
 * banks) is bound to URAM (boards short of BRAM); 0: BRAM. */
#define CTRAIN_POOL_URAM 0
/* 1: the tiled max pool's bands are a DATAFLOW loop (stream.h): its own
 * ping-pong channels beside the band buffers (+8 BRAM36 on this board's
 * 16-byte beat); CNV 80% at batch 64: POOL_FP/BP 2.39M -> 1.02M cycles, the iteration
 * 14.33M -> 12.96M (316 -> 350 equivalent GOP/s). */
#define CTRAIN_POOL_DATAFLOW 1

/* Elements per burst of the element-wise units (RELU, ADD, AVGPOOL bands,
 * index check).  512, not 1024, since session 9: the second data port's
 * adapter and the dense block mode's bias table took the LUTs to 85.2%; 512
 * halves the RELU/ADD/AVGPOOL LUTRAM buffers (-2,560 LUTs, 84.3%).  Cost, batch
 * 64: CNV-80% 9.78M -> 9.82M cycles, ResNet-20 dense 22.19M -> 23.44M (its
 * ADD and ReLU bursts; a chunk of ADD's own would recover most of it). */
#define CTRAIN_CHUNK 512
/* UPDATE's and BN's own chunks (update.h, stream.h): each burst's 64-cycle
 * latency over more beats.  UPDATE at 2048 reads 13 bytes an element in
 * 0.95 cycles (at 1024: 1.08, above its one element per cycle: its lanes
 * paid nothing), 4 SGD lanes (the default); BN at 16384 (16 banks of 2048
 * bytes: one RAMB18 each, as at 4096).  CNV 80% at batch 64: UPDATE 1.20M
 * -> 1.06M cycles, the stream processor 3.65M -> 2.56M; BRAM +50 BRAM36. */
#define CTRAIN_UPDATE_CHUNK 2048
#define CTRAIN_BN_CHUNK 16384

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
#define CTRAIN_SPARSE_URAM 0
/* The position-parallel sparse path's output rows per PE bank: 128 keeps its
 * 2 x 512 banks in LUTRAM (the default, 192, takes 1024 RAMB18s).  Since
 * session 32 128, not 64: a chunk takes twice the rows (SP_OD / T), so each
 * item's window is read half as often; CNV-80% FP+EB+WG 0.529 -> 0.482 of
 * dense, +33.6K LUTs (the output and row banks' LUTRAM). */
#define CTRAIN_SPARSE_ODEPTH 128
/* The position-parallel path's lists in BRAM (the dense unit leaves a third
 * of it): 16384 kept weights per chunk (the LUT default, 5710, cut CNV's
 * 128-channel layers into six chunks, each reloading the window), and EB's
 * value lookup in one 64 KB block, scanned once per chunk instead of
 * gathered a byte per entry, for every layer of up to 64K kept weights.
 * CNV 80% FP+EB+WG: 0.346 -> 0.327 of dense.  128 KB (CNV's largest layer,
 * 118K kept weights at 80%) until session 12; halved for CONV_OUT's BRAM
 * (-16 BRAM36): the layers the compiler runs sparse at 80% keep at most
 * 29.5K weights (no change); with --sparse-exec always the 256-channel
 * layer's EB gathers its values: 17.88M -> 17.99M cycles. */
#define CTRAIN_SPARSE_LIST 16384
#define CTRAIN_SPARSE_LIST_BRAM 1
#define CTRAIN_SPARSE_VALS 65536
/* The lists' staging (columns, rows, positions, gradients) in BRAM too (24
 * BRAM36), so its LUTs go to the window: 256 words per bank (the default,
 * CHIP_LUT / 8 / SP_P, is 128), room for more images per item of CNV's
 * 128-channel 12x12 planes (3 at 128: one tile, the mul2's second product
 * idle).  CNV 80% FP+EB+WG 0.327 -> 0.305 of dense, iteration efficiency
 * (kept MACs) 30.0% -> 32.0% (dense 63.7%).  160 since session 13: the most
 * within the 85% margin once the estimate counts the bursts' lane <-> bank
 * selects (256: 93.8%); with the pair loop's DATAFLOW an 80%-pruned CNV's
 * iteration is 11.18M cycles, 405 equivalent GOP/s (12.96M, 350 before). */
#define CTRAIN_SPARSE_STAGE_BRAM 1
#define CTRAIN_SPARSE_WDEPTH 160

/* Bytes per beat of the m_axi data port (the width of the PS port it connects to). */
#define CTRAIN_DDR_BEAT 16
/* Peak GB/s of the DDR behind that port: DDR4-2133, 64 bit (PS DIMM). */
#define CTRAIN_DDR_GBPS 17.064
/* Data ports (m_axi bundles, each into its own PS HP port; types.h): 2, the
 * second (gmem1) into S_AXI_HP1_FPD, carrying UPDATE's master weights and
 * velocities (update.cpp) and the second input of RELU_BP, masked BN_BP and
 * ADD (agu_chunk_rd) concurrently with port 0.  Its adapter costs 1200 LUTs
 * and 4 BRAM36 by the estimate (ctrain.tools.resources).  CNV 80% at batch
 * 64: UPDATE 1.06M -> 0.64M cycles, the iteration 11.83M -> 11.40M
 * (docs/overlay.md, "Two data ports"). */
#define CTRAIN_DDR_PORTS 2
#define CTRAIN_HP_PORT1 "S_AXI_HP1_FPD"

/* The chip's resources (ctrain.resources checks the estimate against them). */
#define CTRAIN_CHIP_DSP 2520
#define CTRAIN_CHIP_BRAM36 912
#define CTRAIN_CHIP_URAM 0
#define CTRAIN_CHIP_LUT 274080
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

/* The position PEs' products as multiply-accumulates, a DSP each (sconv.h):
 * the chip's DSPs to spare pay for the PEs' fabric accumulators. */
#define CTRAIN_SPARSE_POS_MACC 1

/* No row-tile path (sconv.h CTRAIN_SPARSE_ROWS): an array of its own (77K
 * LUTs, 297 DSPs, 162 BRAM36) that the compiler's cycle model picks for no
 * convolution of the built-in models at 50-80% sparsity; only for fully
 * connected layers at 80-95% (CNV at 90% 0.4% longer without it, at 95%
 * 4.2%; the MLP up to 38%), while the dense unit loads weights lane by lane
 * (docs/overlay.md "Board configurations"); such layers run dense. */
#define CTRAIN_SPARSE_ROWS 0

/* The dense unit's band buffers in BRAM (pe_array.h): without the row-tile
 * path this chip has the BRAM (128 BRAM36) and is short of LUTs (33K). */
#define CTRAIN_CONV_BANDS_BRAM 1

/* DSP slices for WG's 48-bit tap accumulation (pe_array.h
 * CTRAIN_TAP_ACC_DSP): a slice's ALU per PE instead of a fabric adder, in
 * slices the chip has to spare; the same bits and cycles (binding only).
 * The adder trees (CTRAIN_TREE_DSP) would need more slices than it has. */
#define CTRAIN_TAP_ACC_DSP 1

#endif
