/*
 * ZCU104 (xczu7ev-ffvc1156-2-e): 1728 DSP48E2, 312 BRAM36 + 96 URAM.  A 16x16
 * PE array (256 MACs) at the 150 MHz pl_clk0 the block design provides.
 */
#ifndef CTRAIN_BOARD_CFG_H
#define CTRAIN_BOARD_CFG_H

#define CTRAIN_BOARD_NAME "zcu104"
#define CTRAIN_PART "xczu7ev-ffvc1156-2-e"
#define CTRAIN_CLOCK_MHZ 150

#define CTRAIN_PE_ROWS 16
#define CTRAIN_PE_COLS 16

#define CTRAIN_CHUNK 512

#define CTRAIN_SPARSE_ENTRIES 2048
#define CTRAIN_SPARSE_WIN 4096
#define CTRAIN_SPARSE_XT 64

/* Bytes per beat of the m_axi data port (the PS port it connects to: 128-bit S_AXI_HP0_FPD). */
#define CTRAIN_DDR_BEAT 16

#endif
