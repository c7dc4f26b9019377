// The reference (scalar) dot products of the K-quant weights against Q8_K activations, in the
// exact float order of llama.cpp's x86 code (ggml-cpu arch/x86/quants.c, its __AVX2__ branch,
// which the AVX-512 build runs too):
//
//  - per 256-block, 8 int32 lanes: lane l sums, over the block's eight 32-element chunks c, the
//    chunk's integer scale times sum(w[32c + e] * a[32c + e], e = 4l..4l+3) (exact integers);
//    Q6_K then subtracts 32 * (bsums[2l] * sc[2l] + bsums[2l+1] * sc[2l+1]) from lane l, its
//    -32 offset applied through the activation sums of that lane's own two 16-groups;
//  - acc_l = fma(d_a * d_w, float(lane_l), acc_l) over the blocks (d_a * d_w rounded: d_a is
//    a float), then hsum8 (ggml_arithmetic.hpp);
//  - the mins of Q4_K: 4 float lanes, lane l = fma(-d_a * dmin_w, float(mn[2l] * S[2l] +
//    mn[2l+1] * S[2l+1]), lane l) with S[c] the activation sum of chunk c; reduced as
//    (m0 + m2) + (m1 + m3) and added after hsum8;
//  - the mins of Q5_K: one scalar chain summs = fma(-d_a * dmin_w, float(sum_c mn[c] * S[c]),
//    summs) (GCC contracts ggml's `summs += dmin * isum`), added after hsum8.
// The SIMD variants (k_quant_simd.inl) must give the same bits; tests/kernels hold both to
// golden values from ggml itself.
#pragma once

#include <cstdint>

namespace troupe::kernels::k_quant_ref {

// w: one row of k / 256 weight blocks; a: one act_k row (kernel_table.hpp). REQUIRES k % 256 == 0.
float dot_q4_k(int64_t k, const uint8_t* w, const uint8_t* a);
float dot_q5_k(int64_t k, const uint8_t* w, const uint8_t* a);
float dot_q6_k(int64_t k, const uint8_t* w, const uint8_t* a);

// x: [k] float -> one act_k row (quantize_row_q8_k). REQUIRES k % 256 == 0.
void quantize_row_act_k(const float* x, uint8_t* y, int64_t k);

}  // namespace troupe::kernels::k_quant_ref
