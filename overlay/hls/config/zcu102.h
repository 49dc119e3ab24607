/*
 * ZCU102 (xczu9eg-ffvb1156-2-e): 2520 DSP48E2, 912 BRAM36.  A 32x32 PE array
 * (1024 MACs) at a 200 MHz pl_clk0.
 */
#ifndef CTRAIN_BOARD_CFG_H
#define CTRAIN_BOARD_CFG_H

#define CTRAIN_BOARD_NAME "zcu102"
#define CTRAIN_PART "xczu9eg-ffvb1156-2-e"
#define CTRAIN_CLOCK_MHZ 200

#define CTRAIN_PE_ROWS 32
#define CTRAIN_PE_COLS 32

#define CTRAIN_CHUNK 1024

#define CTRAIN_SPARSE_ENTRIES 2048
#define CTRAIN_SPARSE_WIN 2048
#define CTRAIN_SPARSE_XT 64

/* Bytes per beat of the m_axi data port (the PS port it connects to: 128-bit S_AXI_HP0_FPD). */
#define CTRAIN_DDR_BEAT 16

#endif
