/*
 * Testbench helpers: the check macro, a DDR image with typed access, running
 * the top on it as synthesis sees it, instruction builders, a deterministic
 * generator and the sparse index block of docs/isa.md.
 */
#ifndef CTRAIN_TB_HELPERS_H
#define CTRAIN_TB_HELPERS_H

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "ctrain_top.h"

namespace tb {

extern int failures;
extern int checks;

#define CHECK(cond, ...)                                       \
    do {                                                       \
        checks++;                                              \
        if (!(cond)) {                                         \
            failures++;                                        \
            std::printf("FAIL %s:%d: ", __FILE__, __LINE__);   \
            std::printf(__VA_ARGS__);                          \
            std::printf("\n");                                 \
        }                                                      \
    } while (0)


/* ---------------------------------------------------------------- DDR image */

struct Image {
    std::vector<uint8_t> ddr;
    uint32_t top = 0;

    explicit Image(uint32_t size) : ddr(size, 0xA5) {}   /* garbage everywhere */

    /* Reserves n bytes at a 64-byte boundary. */
    uint32_t alloc(uint32_t n) {
        uint32_t at = (top + 63) & ~63u;
        top = at + n;
        return at;
    }
    uint32_t put8(const std::vector<int8_t> &v) {
        uint32_t at = alloc((uint32_t)v.size());
        std::memcpy(&ddr[at], v.data(), v.size());
        return at;
    }
    uint32_t put32(const std::vector<int32_t> &v) {
        uint32_t at = alloc(4 * (uint32_t)v.size());
        for (size_t i = 0; i < v.size(); i++)
            for (int b = 0; b < 4; b++)
                ddr[at + 4 * i + b] = (uint8_t)((uint32_t)v[i] >> (8 * b));
        return at;
    }
    int8_t i8(uint32_t at) const { return (int8_t)ddr[at]; }
    int32_t i32(uint32_t at) const {
        uint32_t v = 0;
        for (int b = 0; b < 4; b++)
            v |= (uint32_t)ddr[at + b] << (8 * b);
        return (int32_t)v;
    }
    int64_t i64(uint32_t at) const {
        return (int64_t)((uint64_t)(uint32_t)i32(at) | ((uint64_t)(uint32_t)i32(at + 4) << 32));
    }
};

struct Stats {
    int64_t max_abs;
    int32_t exp;
    uint32_t sat, nnz, count;
};

Stats read_stats(const Image &m, uint32_t at);

struct Result {
    uint32_t status, pc, fault_addr;
};

/* Runs the top itself, with the signature synthesis and co-simulation see:
 * the image goes into an array of CTRAIN_PORT_DEPTH beats (co-simulation maps
 * `depth` beats of it), and comes back after the run. */
Result top(std::vector<uint8_t> &ddr, uint32_t prog, uint32_t n_insn, uint32_t table,
           uint32_t table_len, uint32_t ddr_size);

/* Writes the program and table into the image and runs the top on it. */
Result run(Image &m, const std::vector<ctrain_insn_t> &prog, const std::vector<int32_t> &table,
           uint32_t prog_at = UINT32_MAX, uint32_t table_at = UINT32_MAX);

/* A build without the sparse unit's row-tile path (CTRAIN_SPARSE_ROWS 0,
 * sconv.h) refuses an SCONV_* instruction only that path runs: FAULT_TILE
 * at its pc, fault_addr 0, nothing written.  True when r is such a refusal,
 * after checking it is one: the build has no row-tile path, and each output
 * span (address, bytes) and the 32-byte statistics record keep the image's
 * fill (0xA5); the caller then skips the results.  Counts both outcomes
 * (sparse_ran, sparse_refused) for main's summary. */
struct Span {
    uint32_t at, bytes;
};
extern int sparse_ran, sparse_refused;
bool refused(const Result &r, const Image &m, uint32_t pc, const std::vector<Span> &outs,
             uint32_t stats, const char *what);

ctrain_insn_t insn(uint32_t op, uint32_t flags = 0);
ctrain_insn_t halt();

/* ---------------------------------------------------------------- random data */

/* A deterministic generator (xorshift) so the testbench needs no seed file. */
uint32_t rnd();
int rnd_in(int lo, int hi);
std::vector<int8_t> rnd8(size_t n, int lo = -128, int hi = 127);
std::vector<int32_t> rnd32(size_t n, int bits);
/* The generator's state (printed at the end: the same cases ran). */
uint64_t rnd_state();

/* ---------------------------------------------------------------- sparse index */

/* The index block of docs/isa.md: CSR and transposed index of the kept
 * weights, and their values in CSR order. */
struct SparseIndex {
    std::vector<uint32_t> rowptr, tptr, tpos;
    std::vector<uint16_t> col, trow;
    std::vector<int8_t> vals;
};

/* Index of the entries (rows[p], cols[p]) given in CSR order, with values. */
SparseIndex make_index(int R, int K, const std::vector<int> &rows, const std::vector<int> &cols,
                       const std::vector<int8_t> &vals);

/* Writes the block (odd Z: a garbage padding halfword); returns its address. */
uint32_t put_index(Image &m, const SparseIndex &ix);

/* Offsets of the parts inside the block: ctrain_index_layout (ctrain_isa.h). */

/* ---------------------------------------------------------------- convolution shapes */

struct Conv {
    int n, ci, h, w, co, ho, wo, kh, kw, s, p;
};

Conv rnd_conv(int max_ch);
ctrain_insn_t conv_insn(uint32_t op, uint32_t flags, const Conv &c);

inline size_t at4(int n, int ch, int y, int x, int C, int H, int W) {
    return (((size_t)n * C + ch) * H + y) * W + x;
}

}  // namespace tb

#endif
