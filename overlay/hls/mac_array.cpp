/* The MAC array (see mac_array.h). */
#include "mac_array.h"
#include "mac2.h"

void mac_array(const q8_t a[MAC_DENSE_UNITS], const q8_t b0[MAC_DENSE_UNITS],
               const q8_t b1[MAC_DENSE_UNITS], prod_t p0[MAC_DENSE_UNITS],
               prod_t p1[MAC_DENSE_UNITS]) {
    /* one module, shared by its two callers (execute's ALLOCATION) */
#pragma HLS INLINE off
    /* a step of its callers' II=1 loops: a set of operands every cycle */
#pragma HLS PIPELINE II=1
    /* every unit's operands and products are its own wires */
#pragma HLS ARRAY_PARTITION variable=a type=complete
#pragma HLS ARRAY_PARTITION variable=b0 type=complete
#pragma HLS ARRAY_PARTITION variable=b1 type=complete
#pragma HLS ARRAY_PARTITION variable=p0 type=complete
#pragma HLS ARRAY_PARTITION variable=p1 type=complete
mac_units:
    for (int u = 0; u < MAC_DENSE_UNITS; u++) {
#pragma HLS UNROLL
        mul2(a[u], b0[u], b1[u], p0[u], p1[u]);
    }
}

#if CTRAIN_DSP_INT8 != 2   /* !PE_POS_PAIRS: units of the position path only */
void mac_array_sp(const q8_t a[MAC_SP_UNITS], const q8_t b0[MAC_SP_UNITS],
                  const q8_t b1[MAC_SP_UNITS], prod_t p0[MAC_SP_UNITS], prod_t p1[MAC_SP_UNITS]) {
    /* the array's other units, one module beside mac_array */
#pragma HLS INLINE off
    /* a step of sp_steps' II=1 loop */
#pragma HLS PIPELINE II=1
    /* every unit's operands and products are its own wires */
#pragma HLS ARRAY_PARTITION variable=a type=complete
#pragma HLS ARRAY_PARTITION variable=b0 type=complete
#pragma HLS ARRAY_PARTITION variable=b1 type=complete
#pragma HLS ARRAY_PARTITION variable=p0 type=complete
#pragma HLS ARRAY_PARTITION variable=p1 type=complete
mac_sp_units:
    for (int u = 0; u < MAC_SP_UNITS; u++) {
#pragma HLS UNROLL
#if CTRAIN_DSP_INT8 == 2
        mul2(a[u], b0[u], b1[u], p0[u], p1[u]);
#else
        (void)b1;
        p0[u] = (prod_t)a[u] * (prod_t)b0[u];
        p1[u] = 0;
#endif
    }
}

#endif

#if CTRAIN_SPARSE_POS_MUL_LUT
void mac_array_pos(const q8_t a[MAC_DENSE_UNITS], const q8_t b0[MAC_DENSE_UNITS],
                   const q8_t b1[MAC_DENSE_UNITS], prod_t p0[MAC_DENSE_UNITS],
                   prod_t p1[MAC_DENSE_UNITS]) {
    /* the position path's units of mac_array, in LUTs (mac_array.h) */
#pragma HLS INLINE off
    /* a step of sp_steps' II=1 loop */
#pragma HLS PIPELINE II=1
    /* every unit's operands and products are its own wires */
#pragma HLS ARRAY_PARTITION variable=a type=complete
#pragma HLS ARRAY_PARTITION variable=b0 type=complete
#pragma HLS ARRAY_PARTITION variable=b1 type=complete
#pragma HLS ARRAY_PARTITION variable=p0 type=complete
#pragma HLS ARRAY_PARTITION variable=p1 type=complete
mac_pos_units:
    for (int u = 0; u < MAC_DENSE_UNITS; u++) {
#pragma HLS UNROLL
        (void)b1;
        prod_t m = (prod_t)a[u] * (prod_t)b0[u];
        /* a LUT multiplier: the DSPs are the dense unit's */
#pragma HLS BIND_OP variable=m op=mul impl=fabric
        p0[u] = m;
        p1[u] = 0;
    }
}
#endif
