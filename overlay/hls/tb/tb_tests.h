/* The testbench's tests (tb_hand.cpp, tb_ref_tests.cpp, tb_faults.cpp),
 * run by main in ctrain_tb.cpp. */
#ifndef CTRAIN_TB_TESTS_H
#define CTRAIN_TB_TESTS_H

#include <cstdint>

#include "tb_helpers.h"

namespace tb {

/* 1. hand-computed */
void test_hand_conv_fp();
void test_hand_rounding_and_saturation();
void test_hand_pool_bp_first_max();
void test_hand_update();
void test_hand_sparse();
void test_hand_bn();
void test_hand_add();
void test_hand_avgpool();
/* The hand case's 4-input, 2-output sparse layer (the fault cases corrupt it). */
SparseIndex hand_index();
ctrain_insn_t hand_sparse(uint32_t op, uint32_t flags);

/* 2. reference cases */
void test_ref_conv(uint32_t op, uint32_t flags, int max_ch);
void test_ref_pool(uint32_t op, uint32_t flags);
void test_ref_add(uint32_t flags);
void test_ref_avgpool(uint32_t op, uint32_t flags, bool global);
void test_ref_relu(uint32_t op, bool in_place);
void test_ref_update();

/* 3. faults */
void test_faults();
void test_graph_faults();

}  // namespace tb

#endif
