/*
 * C-sim only (never synthesised): the caller's DDR window, plain bytes, to
 * and from the top's port, an array of CTRAIN_DDR_BEAT-byte beats (types.h).
 * The C-sim engine entry (csim_api.cpp) and the testbench both call the top
 * through these, with the signature synthesis and co-simulation see.
 */
#ifndef CTRAIN_CSIM_PORT_H
#define CTRAIN_CSIM_PORT_H

#include "types.h"

/* Beats that hold a window of `size` bytes, plus one spare. */
static inline uint64_t csim_port_beats(uint64_t size) { return size / CTRAIN_DDR_BEAT + 1; }

/* win[0 .. size) -> port[0 .. beats); lanes past the window are zero. */
void csim_window_to_port(const uint8_t *win, uint64_t size, ddr_t *port, uint64_t beats);

/* port -> win[0 .. size): exactly the window's bytes are written. */
void csim_port_to_window(const ddr_t *port, uint8_t *win, uint64_t size);

#endif
