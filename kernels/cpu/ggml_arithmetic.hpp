// ggml_arithmetic: the exact float arithmetic of llama.cpp's x86 CPU backend (ggml built for
// AVX-512, as llama-cpp-python builds it on this machine), written as plain scalar C++.
//
// Why: the engine quantizes activations to 8 bits before every matmul, as llama.cpp does. That
// rounding is discontinuous, so a last-bit difference anywhere upstream (a sum taken in another
// order, another exp polynomial) flips some activation's rounding, and on the default model the
// flips grow through 30 layers into 0.1-0.2 logits: enough to change the argmax at ~3% of
// positions. Agreeing with llama.cpp on tokens (tests/engine/test_llama_oracle.cpp) therefore
// means doing the same operations in the same order, bit for bit. Every kernel table (reference,
// AVX2, AVX-512) follows the orders written here; tools/trace-diff checks them op by op
// against llama.cpp's own intermediate tensors.
//
// The orders, as ggml has them (the vendored llama.cpp of llama-cpp-python 0.3.36):
//  - hsum8: a 256-bit horizontal sum, ((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7)).
//  - reduce16: GCC's _mm512_reduce_add_ps, which is hsum8(a[0..8) + a[8..16)).
//  - quantized dots (Q4_0/Q4_1/Q8_0 weights x 8-bit activations): 8 lanes, lane l holding the
//    exact integer sum over elements 4l..4l+3 of each 32-block, accumulated across blocks as
//    acc_l = fma(d_w * d_a, lane_l, acc_l) (d_w * d_a is exact: two fp16 values); then hsum8;
//    Q4_1 adds its own chain of m_w * s_a at the end.
//  - exp: ggml_v_expf, a degree-5 polynomial on a range-reduced argument (below).
//  - rms_norm: sum of squares in double, scale = 1/sqrtf(mean + eps), y = (x * scale) * w.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

namespace troupe::kernels::ggml_arith {

inline float hsum8(const float a[8]) {
  return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
}

inline float reduce16(const float a[16]) {
  float h[8];
  for (int i = 0; i < 8; ++i) h[i] = a[i] + a[i + 8];
  return hsum8(h);
}

// ggml_v_expf: x = n ln2 + b (n an integer, ln2 split in two for precision), exp(b) by a
// degree-5 polynomial, scaled by 2^n. |n| > 192 saturates to 0 (n <= 0) or +inf.
inline float expf(float x) {
  const float shifter = 0x1.8p23f;
  const float z = std::fma(x, 0x1.715476p+0f, shifter);
  const float n = z - shifter;
  const float b = std::fma(-n, 0x1.7f7d1cp-20f, std::fma(-n, 0x1.62e4p-1f, x));
  if (std::fabs(n) > 192.0f)  // x = -inf gives 0, +inf gives +inf, as ggml's blend
    return n <= 0.0f ? 0.0f : std::numeric_limits<float>::infinity();
  const float u = b * b;
  const float j = std::fma(std::fma(std::fma(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u,
                                    std::fma(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                           u, std::fma(0x1.ffffecp-1f, b, 1.0f));
  return std::ldexp(j, static_cast<int>(n));  // exact scaling, as vscalefps
}

// ggml_v_silu: x / (1 + exp(0 - x)).
inline float silu(float x) { return x / (1.0f + expf(0.0f - x)); }

// ggml_compute_forward_rms_norm_f32 (+ the fused weight multiply).
inline void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i] * x[i]);
  const float mean = static_cast<float>(sum / static_cast<double>(n));
  const float scale = 1.0f / std::sqrt(mean + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale * w[i];
}

}  // namespace troupe::kernels::ggml_arith
