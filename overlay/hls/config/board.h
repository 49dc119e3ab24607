/*
 * Selects the per-board configuration at compile time: -DCTRAIN_BOARD_ZCU104,
 * -DCTRAIN_BOARD_ZCU102, -DCTRAIN_BOARD_ULTRA96 or -DCTRAIN_BOARD_PYNQ_Z2 (the
 * default when none is given).
 */
#ifndef CTRAIN_BOARD_H
#define CTRAIN_BOARD_H

#if defined(CTRAIN_BOARD_ZCU104)
#include "zcu104.h"
#elif defined(CTRAIN_BOARD_ZCU102)
#include "zcu102.h"
#elif defined(CTRAIN_BOARD_ULTRA96)
#include "ultra96.h"
#else
#include "pynq_z2.h"
#endif

#endif
