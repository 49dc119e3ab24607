/*
 * Syntax-check shim (make check only, never in a real build): the open-source
 * ap_types headers stop with #error when __SYNTHESIS__ is defined, so the
 * check hides the macro while they are parsed and restores it for the HLS
 * sources, whose synthesis branch is then compiled as Vitis HLS would see it
 * (the types themselves are the C-sim ones).  ap_int_special.h and ap_fixed_special.h are skipped: its
 * forward declaration of std::complex clashes with libc++ (the clang that the
 * ziglang package ships), and the sources use no complex ap_int or ap_fixed.
 */
#pragma push_macro("__SYNTHESIS__")
#undef __SYNTHESIS__
#define __AP_INT_SPECIAL_H__
#define __AP_FIXED_SPECIAL_H__
#include_next <ap_int.h>
#pragma pop_macro("__SYNTHESIS__")
