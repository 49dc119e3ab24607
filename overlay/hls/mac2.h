/*
 * Two int8 products that share an operand, from one multiplier (Xilinx WP486,
 * "Deep Learning with INT8 Optimization on Xilinx Devices"): on a DSP48E2 the
 * 27-bit pre-adder port holds b1 * 2^18 + b0, the 18-bit port holds a, and
 * the one product a*b1 * 2^18 + a*b0 carries both:
 *
 *   low 18 bits, signed   = a*b0      (|a*b0| <= 2^14 fits a signed 18-bit field)
 *   product >> 18 (floor) = a*b1 - 1 when a*b0 < 0, so adding bit 17 of the
 *                           low field (its sign) gives a*b1.
 *
 * Bit-exact against two plain products for all 2^24 operand triples
 * (tests/test_tb_exhaustive.py runs tb/mac2_tb.cpp).  CTRAIN_DSP_INT8 (config header)
 * says how many int8 products one DSP slice makes on the board: 2 on
 * DSP48E2 (UltraScale+), 1 on DSP48E1 (7-series: b1 * 2^18 needs 26 bits of
 * its 25-bit port), where mul2 is two plain products.  ctrain.resources
 * counts a mul2 as one DSP on a packing board, two otherwise.
 */
#ifndef CTRAIN_MAC2_H
#define CTRAIN_MAC2_H

#include "types.h"

/* p0 = a * b0, p1 = a * b1, exactly. */
static inline void mul2(q8_t a, q8_t b0, q8_t b1, prod_t &p0, prod_t &p1) {
#pragma HLS INLINE
#if CTRAIN_DSP_INT8 == 2
    const ap_int<27> packed = ((ap_int<27>)b1 << 18) + (ap_int<27>)b0;   /* A:D pre-adder */
    /* one DSP48E2: the 27x8 product, not LUTs */
    const ap_int<35> wide = packed * (ap_int<8>)a;
#pragma HLS BIND_OP variable=wide op=mul impl=dsp
    const ap_int<18> lo = wide(17, 0);
    p0 = lo;
    p1 = (wide >> 18) + (ap_uint<1>)lo[17];
#else
    p0 = (prod_t)a * (prod_t)b0;
    p1 = (prod_t)a * (prod_t)b1;
#endif
}

#endif
