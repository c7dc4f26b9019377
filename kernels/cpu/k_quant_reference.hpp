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
//
// llama.cpp does not run Q4_K through that vec_dot everywhere: on x86 with AVX2 its CPU backend
// repacks a Q4_K matrix with a multiple of 8 rows into interleaved 8-row blocks at load
// (ggml-cpu repack.cpp, "CPU_REPACK") and multiplies with ggml_gemv/gemm_q4_K_8x8_q8_K, whose
// order is another: per output, one chain over the blocks,
//    acc = fma(float(S), d_w * d_a, acc),  S = sum_s sc[s] * (w . a over sub-block s)
//    acc_m = fma(float(M), dmin_w * d_a, acc_m),  M = sum_s mn[s] * (activation sum of s)
// and y = acc - acc_m (dot_q4_k_x8: its gemv, for tokens past the last multiple of 4 of a
// mul_mat); its gemm (the tokens in groups of 4) takes the same two chains one step per 64
// elements (sub-blocks 2p and 2p+1) instead of per block (dot_q4_k_x8x4). Its activation
// quantizer for those groups (ggml_quantize_mat_q8_K_4x8) agrees with quantize_row_q8_K except
// when a block holds both +max and -max, where it takes the positive one for the sign of d.
//
// The SIMD variants (k_quant_simd.inl) must give the same bits; tests/kernels hold both to
// golden values from ggml itself.
#pragma once

#include <cstdint>

namespace troupe::kernels::k_quant_ref {

// w: one row of k / 256 weight blocks; a: one act_k row (kernel_table.hpp). REQUIRES k % 256 == 0.
float dot_q4_k(int64_t k, const uint8_t* w, const uint8_t* a);
float dot_q5_k(int64_t k, const uint8_t* w, const uint8_t* a);
float dot_q6_k(int64_t k, const uint8_t* w, const uint8_t* a);
float dot_q4_k_x8(int64_t k, const uint8_t* w, const uint8_t* a);
float dot_q4_k_x8x4(int64_t k, const uint8_t* w, const uint8_t* a);

// x: [k] float -> one act_k row (quantize_row_q8_k). REQUIRES k % 256 == 0.
void quantize_row_act_k(const float* x, uint8_t* y, int64_t k);

}  // namespace troupe::kernels::k_quant_ref
