/*
 * Selects the per-board configuration at compile time: -DCTRAIN_BOARD_<NAME>
 * with <NAME> the upper-cased header name (PYNQ_Z2, ULTRA96, AUP_ZU3, KV260,
 * ZCU104, ZCU102); Pynq-Z2 when none is given.  Adding a board: its header
 * here and a line below (tests/test_boards.py checks every header is reachable).
 */
#ifndef CTRAIN_BOARD_H
#define CTRAIN_BOARD_H

#if defined(CTRAIN_BOARD_ZCU104)
#include "zcu104.h"
#elif defined(CTRAIN_BOARD_ZCU102)
#include "zcu102.h"
#elif defined(CTRAIN_BOARD_ULTRA96)
#include "ultra96.h"
#elif defined(CTRAIN_BOARD_KV260)
#include "kv260.h"
#elif defined(CTRAIN_BOARD_AUP_ZU3)
#include "aup_zu3.h"
#else
#include "pynq_z2.h"
#endif

#endif
