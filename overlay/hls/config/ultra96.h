/*
 * Ultra96-V2 (xczu3eg-sbva484-1-i): 360 DSP48E2, 216 BRAM36.  A 12x12 PE
 * array (144 MACs) at a 150 MHz pl_clk0.
 */
#ifndef CTRAIN_BOARD_CFG_H
#define CTRAIN_BOARD_CFG_H

#define CTRAIN_BOARD_NAME "ultra96"
#define CTRAIN_PART "xczu3eg-sbva484-1-i"
#define CTRAIN_CLOCK_MHZ 150

#define CTRAIN_PE_ROWS 12
#define CTRAIN_PE_COLS 12

#define CTRAIN_CHUNK 256

#define CTRAIN_SPARSE_ENTRIES 1024
#define CTRAIN_SPARSE_WIN 2048
#define CTRAIN_SPARSE_XT 64

/* Bytes per beat of the m_axi data port (the PS port it connects to: 128-bit S_AXI_HP0_FPD). */
#define CTRAIN_DDR_BEAT 16

#endif
