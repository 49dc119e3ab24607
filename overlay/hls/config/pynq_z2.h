/*
 * Pynq-Z2 (xc7z020clg400-1): 220 DSP48E1, 140 BRAM36.  An 8x8 PE array uses 64
 * MACs (int8 x int8 fits one DSP each, or LUTs) and leaves room for the
 * line buffers; 100 MHz is the PS FCLK0 the block design provides.
 */
#ifndef CTRAIN_BOARD_CFG_H
#define CTRAIN_BOARD_CFG_H

#define CTRAIN_BOARD_NAME "pynq_z2"
#define CTRAIN_PART "xc7z020clg400-1"
#define CTRAIN_CLOCK_MHZ 100

/* PE array: rows produce output channels, columns reduce input channels. */
#define CTRAIN_PE_ROWS 8
#define CTRAIN_PE_COLS 8

/* Elements per burst of the element-wise units (RELU, UPDATE, BN, index check). */
#define CTRAIN_CHUNK 256

/* Sparse unit (docs/overlay.md): kept weights per PE row on chip, window
 * positions per batch lane, output positions per x tile. */
#define CTRAIN_SPARSE_ENTRIES 1024
#define CTRAIN_SPARSE_WIN 2048
#define CTRAIN_SPARSE_XT 64

/* Bytes per beat of the m_axi data port (the PS port it connects to: 64-bit S_AXI_HP0). */
#define CTRAIN_DDR_BEAT 8

#endif
