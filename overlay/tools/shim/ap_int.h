/*
 * Syntax-check shim (make check only, never in a real build): the open-source
 * ap_types headers stop with #error when __SYNTHESIS__ is defined, so the
 * check hides the macro while they are parsed and restores it for the HLS
 * sources, whose synthesis branch is then compiled as Vitis HLS would see it
 * (the types themselves are the C-sim ones).
 */
#pragma push_macro("__SYNTHESIS__")
#undef __SYNTHESIS__
#include_next <ap_int.h>
#pragma pop_macro("__SYNTHESIS__")
