/*
 * Selects the per-board configuration at compile time: -DCTRAIN_BOARD_ZCU104
 * or -DCTRAIN_BOARD_PYNQ_Z2 (the default when neither is given).
 */
#ifndef CTRAIN_BOARD_H
#define CTRAIN_BOARD_H

#if defined(CTRAIN_BOARD_ZCU104)
#include "zcu104.h"
#else
#include "pynq_z2.h"
#endif

#endif
