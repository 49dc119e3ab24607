/*
 * C-sim testbench of ctrain_top (plain C++, no Xilinx tools needed).
 *
 * 1. Hand-computed cases (tb_hand.cpp): tiny instructions whose outputs and
 *    statistics are worked out by hand from docs/numeric.md.
 * 2. Reference cases (tb_ref_tests.cpp): every opcode on random data, checked
 *    against naive loops written straight from docs/numeric.md
 *    (tb_reference.cpp; no HLS code shared).
 * 3. Fault cases (tb_faults.cpp): every fault code with its pc and fault
 *    address, and no write by the faulting instruction.
 *
 * tb_helpers.* hold the DDR image, running the top, instruction builders, the
 * generator and the sparse index block.
 *
 * Sparse convolutions are checked as docs/numeric.md defines them: the dense
 * reference with the pruned weights zeroed (WG: at the kept positions).
 *
 * Exit status 0 when everything matches, 1 otherwise.
 */
#include <cstdio>

#include "conv.h"
#include "mac_array.h"
#include "sconv.h"
#include "stream.h"
#include "tb_helpers.h"
#include "tb_tests.h"

using namespace tb;

int main() {
    test_hand_conv_fp();
    test_hand_rounding_and_saturation();
    test_hand_pool_bp_first_max();
    test_hand_update();
    test_hand_sparse();
    test_hand_bn();
    test_hand_add();
    test_hand_avgpool();
    for (int i = 0; i < 12; i++) {
        const int max_ch = i % 3 == 0 ? 2 * (PE_ROWS > PE_COLS ? PE_ROWS : PE_COLS) + 3 : 6;
        test_ref_conv(OP_CONV_FP, (uint32_t)(i % 4) & (FLAG_RELU | FLAG_BIAS), max_ch);
        test_ref_conv(OP_CONV_EB, i % 2 ? FLAG_RELU_MASK : 0, max_ch);
        test_ref_conv(OP_CONV_WG, i % 2 ? FLAG_BIAS : 0, max_ch);
        test_ref_pool(OP_POOL_FP, 0);
        test_ref_pool(OP_POOL_BP, i % 2 ? FLAG_RELU_MASK : 0);
        test_ref_relu(OP_RELU_FP, i % 2);
        test_ref_relu(OP_RELU_BP, i % 3 == 0);
        test_ref_update();
        test_ref_conv(OP_SCONV_FP, (uint32_t)(i % 4) & (FLAG_RELU | FLAG_BIAS), max_ch);
        test_ref_conv(OP_SCONV_EB, i % 2 ? FLAG_RELU_MASK : 0, max_ch);
        test_ref_conv(OP_SCONV_WG, i % 2 ? FLAG_BIAS : 0, max_ch);
        test_ref_add((uint32_t)((i % 2) * FLAG_RELU + ((i / 2) % 2) * FLAG_RELU_MASK));
        test_ref_avgpool(OP_AVGPOOL_FP, 0, i % 3 == 0);
        test_ref_avgpool(OP_AVGPOOL_BP, i % 2 ? FLAG_RELU_MASK : 0, i % 3 == 0);
    }
    test_faults();
    test_graph_faults();
    /* a build without the row-tile path still runs sparse work: its position path */
    CHECK(sparse_ran > 0, "no sparse instruction ran (%d refused)", sparse_refused);
    std::printf("sparse instructions: %d ran, %d refused%s\n", sparse_ran, sparse_refused,
                CTRAIN_SPARSE_ROWS ? "" : " (no row-tile path)");
    /* which form of each unit this build has (make csim-shared builds the other) */
    std::printf("build: MAC array %s; item loops: dense %s, position path %s, max pool %s\n",
                CTRAIN_MAC_SHARED ? "shared" : "per caller",
                CTRAIN_CONV_DATAFLOW ? "DATAFLOW" : "hand-pipelined",
                CTRAIN_SPARSE_DATAFLOW ? "DATAFLOW" : "hand-pipelined",
                CTRAIN_POOL_DATAFLOW ? "DATAFLOW" : "hand-pipelined");
    std::printf("ctrain_tb (%s, PE %dx%d): %d checks, %d failures\n", CTRAIN_BOARD_NAME, PE_ROWS,
                PE_COLS, checks, failures);
    std::printf("rng %llx\n", (unsigned long long)rnd_state());
    std::printf(failures ? "FAIL\n" : "PASS\n");
    return failures ? 1 : 0;
}
