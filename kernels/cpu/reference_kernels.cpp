// The oracle: plain scalar kernels, written for obviousness rather than speed, in llama.cpp's
// x86 arithmetic order (ggml_arithmetic.hpp): the fast kernels must give the same bits, and
// llama.cpp gives them too.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/cpu/ggml_arithmetic.hpp"
#include "kernels/cpu/k_quant_reference.hpp"
#include "kernels/cpu/kernel_table.hpp"
#include "memory/dequantize.hpp"
#include "memory/float16.hpp"
#include "memory/quant_blocks.hpp"

namespace troupe::kernels {

namespace {

// llama.cpp's x86 Q8_1 quantizer (quantize_row_q8_1 in ggml's arch/x86/quants.c, which the
// engine must match: not the generic one): q = round-half-even(x * (127 / max|x|)),
// d = fp16(max|x| / 127), s = fp16(d * sum(q)); unpacked into an act row.
void quantize_row_act(const float* x, uint8_t* y, int64_t k) {
  const int64_t nb = k / 32;
  auto* d = reinterpret_cast<float*>(y + nb * 32);
  for (int64_t b = 0; b < nb; ++b) {
    const float* xb = x + 32 * b;
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(xb[j]));
    const float db = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    int32_t sum = 0;
    auto* qs = reinterpret_cast<int8_t*>(y + 32 * b);
    for (int j = 0; j < 32; ++j) {
      qs[j] = static_cast<int8_t>(std::nearbyint(xb[j] * id));  // default mode: ties to even
      sum += qs[j];
    }
    d[b] = fp16_round(db);
    d[nb + b] = fp16_round(db * static_cast<float>(sum));
    std::memcpy(y + nb * 40 + 4 * b, &sum, 4);
  }
}

struct act_row {
  const int8_t* qs;
  const float* d;
  const float* s;
  act_row(const uint8_t* a, int64_t nb)
      : qs(reinterpret_cast<const int8_t*>(a)),
        d(reinterpret_cast<const float*>(a + nb * 32)),
        s(d + nb) {}
};

// The quantized dots in ggml's x86 order (ggml_arithmetic.hpp): 8 lanes of 4 elements per
// block, acc_l = fma(d_w * d_a, lane_l, acc_l) over the blocks, then hsum8.
// `unpack(b, q)` writes weight block b's 32 elements as signed integers and returns its scale.
template <class Unpack>
float lane_dot(int64_t k, const act_row& act, Unpack unpack) {
  float acc[8] = {};
  for (int64_t b = 0; b < k / 32; ++b) {
    int32_t q[32];
    const float d = unpack(b, q) * act.d[b];  // exact: both are fp16 values
    const int8_t* aq = act.qs + 32 * b;
    for (int l = 0; l < 8; ++l) {
      int32_t lane = 0;
      for (int j = 4 * l; j < 4 * l + 4; ++j) lane += q[j] * aq[j];
      acc[l] = std::fma(d, static_cast<float>(lane), acc[l]);
    }
  }
  return ggml_arith::hsum8(acc);
}

// 4-bit blocks: low nibbles are elements 0..15, high nibbles 16..31.
inline void unpack_nibbles(const uint8_t* qs, int32_t offset, int32_t* q) {
  for (int j = 0; j < 16; ++j) {
    q[j] = (qs[j] & 0x0F) - offset;
    q[j + 16] = (qs[j] >> 4) - offset;
  }
}

float dot_q4_0_q8_0(int64_t k, const uint8_t* w, const uint8_t* a) {
  return lane_dot(k, act_row(a, k / 32), [&](int64_t b, int32_t* q) {
    const auto blk = load_block<block_q4_0>(w + b * sizeof(block_q4_0));
    unpack_nibbles(blk.qs, 8, q);
    return fp16_to_fp32(blk.d);
  });
}

// (d*q + m) . (da*qa) = d*da*(q . qa) + m * s, s = fp16(da * sum(qa)): the m * s terms in their
// own float chain (each product exact), added after the lanes, as ggml_vec_dot_q4_1_q8_1.
float dot_q4_1_q8_1(int64_t k, const uint8_t* w, const uint8_t* a) {
  const act_row act(a, k / 32);
  float summs = 0.0f;
  const float lanes = lane_dot(k, act, [&](int64_t b, int32_t* q) {
    const auto blk = load_block<block_q4_1>(w + b * sizeof(block_q4_1));
    unpack_nibbles(blk.qs, 0, q);
    summs += fp16_to_fp32(blk.m) * act.s[b];
    return fp16_to_fp32(blk.d);
  });
  return lanes + summs;
}

float dot_q8_0_q8_0(int64_t k, const uint8_t* w, const uint8_t* a) {
  return lane_dot(k, act_row(a, k / 32), [&](int64_t b, int32_t* q) {
    const auto blk = load_block<block_q8_0>(w + b * sizeof(block_q8_0));
    for (int j = 0; j < 32; ++j) q[j] = blk.qs[j];
    return fp16_to_fp32(blk.d);
  });
}

// 5-bit blocks: the nibbles as 4-bit blocks, bit 4 of element j is bit j of qh.
inline void unpack_q5(const uint8_t* qs, const uint8_t qh_bytes[4], int32_t offset, int32_t* q) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, 4);
  unpack_nibbles(qs, 0, q);
  for (int j = 0; j < 32; ++j) q[j] = (q[j] | static_cast<int32_t>(((qh >> j) & 1u) << 4)) - offset;
}

// ggml_vec_dot_q5_0_q8_0 has Q4_0's shape: fma(d_w * d_a, lane, acc) per block.
float dot_q5_0_q8_0(int64_t k, const uint8_t* w, const uint8_t* a) {
  return lane_dot(k, act_row(a, k / 32), [&](int64_t b, int32_t* q) {
    const auto blk = load_block<block_q5_0>(w + b * sizeof(block_q5_0));
    unpack_q5(blk.qs, blk.qh, 16, q);
    return fp16_to_fp32(blk.d);
  });
}

// ggml_vec_dot_q5_1_q8_1 has Q4_1's shape: lanes, plus the m * s chain added at the end.
float dot_q5_1_q8_1(int64_t k, const uint8_t* w, const uint8_t* a) {
  const act_row act(a, k / 32);
  float summs = 0.0f;
  const float lanes = lane_dot(k, act, [&](int64_t b, int32_t* q) {
    const auto blk = load_block<block_q5_1>(w + b * sizeof(block_q5_1));
    unpack_q5(blk.qs, blk.qh, 0, q);
    summs += fp16_to_fp32(blk.m) * act.s[b];
    return fp16_to_fp32(blk.d);
  });
  return lanes + summs;
}

// Float weights: dequantize one element at a time and accumulate in double.
template <float (*load)(const uint8_t*, int64_t)>
float dot_float(int64_t k, const uint8_t* w, const uint8_t* a) {
  double sum = 0.0;
  for (int64_t i = 0; i < k; ++i) {
    float x;
    std::memcpy(&x, a + i * 4, 4);
    sum += static_cast<double>(load(w, i)) * x;
  }
  return static_cast<float>(sum);
}

float load_f32(const uint8_t* w, int64_t i) {
  float x;
  std::memcpy(&x, w + i * 4, 4);
  return x;
}
float load_f16(const uint8_t* w, int64_t i) {
  uint16_t h;
  std::memcpy(&h, w + i * 2, 2);
  return fp16_to_fp32(h);
}
float load_bf16(const uint8_t* w, int64_t i) {
  uint16_t h;
  std::memcpy(&h, w + i * 2, 2);
  return bf16_to_fp32(h);
}

template <float (*dot)(int64_t, const uint8_t*, const uint8_t*)>
void gemm(int64_t k, const uint8_t* w, uint64_t w_row_bytes, int64_t n_rows, const uint8_t* a,
          uint64_t a_row_bytes, int64_t n_tokens, float* y, int64_t ldy) {
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t r = 0; r < n_rows; ++r)
      y[t * ldy + r] = dot(k, w + r * w_row_bytes, a + t * a_row_bytes);
}

void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
  ggml_arith::rms_norm(x, w, y, n, eps);
}

void silu_mul(const float* gate, const float* up, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = ggml_arith::silu(gate[i]) * up[i];
}

void softmax(float* x, int64_t n) {
  float max = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) max = std::fmax(max, x[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

// llama.cpp's attention without flash attention, op by op (ggml_arithmetic.hpp says why):
//   kq  = mul_mat(K, fp16(q))            scores, fp16 x fp16 products summed in float
//   w   = softmax(kq * scale)            ggml_v_expf, sum in double per 16 lanes
//   out = mul_mat(V^T, fp16(w))          fp16 x fp16 products summed in float
// The summation order of both products depends on how llama.cpp ran the step: a step of one
// token goes through ggml_vec_dot_f16 (4 x 16 lanes, slot = index mod 64), a step of several
// through llamafile's tinyBLAS (16 lanes, slot = index mod 16; only when the length is a
// multiple of 16 for scores, of 4 for head_dim). `single` picks the first: the engine sets it
// for tokens it sampled itself (decode steps), so prompts and decodes both match.
struct f16_rows {
  const uint16_t* pages;
  const int32_t* block_table;
  int32_t block_size, n_head_kv, kv_head, head_dim;
  const uint16_t* operator()(int32_t p) const {
    const int64_t block = block_table[p / block_size];
    return pages + ((block * n_head_kv + kv_head) * block_size + p % block_size) * head_dim;
  }
};

// sum_i x(i) * y(i), i < n, as ggml_vec_dot_f16 (AVX-512: 4 accumulators of 16 lanes over
// steps of 64, pairwise reduction, leftovers in double). Products of fp16 values are exact.
template <class X, class Y>
float dot_vec_f16_order(int64_t n, X x, Y y) {
  float acc[4][16] = {};
  const int64_t np = n - n % 64;
  for (int64_t i = 0; i < np; ++i) acc[(i % 64) / 16][i % 16] += x(i) * y(i);
  float r[16];
  for (int l = 0; l < 16; ++l) r[l] = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
  double sum = ggml_arith::reduce16(r);
  for (int64_t i = np; i < n; ++i) sum += static_cast<double>(x(i) * y(i));
  return static_cast<float>(sum);
}

// The same sum as llamafile's tinyBLAS (one accumulator of 16 lanes, then reduce16).
// REQUIRES n % 16 == 0.
template <class X, class Y>
float dot_tinyblas_order(int64_t n, X x, Y y) {
  float acc[16] = {};
  for (int64_t i = 0; i < n; ++i) acc[i % 16] += x(i) * y(i);
  return ggml_arith::reduce16(acc);
}

void attention_query(const float* q, const f16_rows& k_row, const f16_rows& v_row, int32_t n_pos,
                     int32_t head_dim, float scale, bool single, float* out) {
  std::vector<float> qh(static_cast<size_t>(head_dim)), w(static_cast<size_t>(n_pos));
  for (int32_t d = 0; d < head_dim; ++d) qh[d] = fp16_round(q[d]);
  const bool kq_tiny = !single && head_dim % 16 == 0;
  const bool kqv_tiny = !single && head_dim % 4 == 0;
  float max = -std::numeric_limits<float>::infinity();
  for (int32_t p = 0; p < n_pos; ++p) {
    const uint16_t* k = k_row(p);
    auto kx = [&](int64_t i) { return fp16_to_fp32(k[i]); };
    auto qx = [&](int64_t i) { return qh[static_cast<size_t>(i)]; };
    const float s = kq_tiny ? dot_tinyblas_order(head_dim, kx, qx) : dot_vec_f16_order(head_dim, kx, qx);
    w[p] = s * scale;
    max = std::max(max, w[p]);
  }
  // ggml_vec_soft_max_f32: 16 values at a time (masked positions are exp(-inf) = 0), each
  // group's float sum added in double.
  double sum = 0.0;
  for (int32_t p0 = 0; p0 < n_pos; p0 += 16) {
    float e[16] = {};
    for (int32_t i = 0; i < 16 && p0 + i < n_pos; ++i) e[i] = w[p0 + i] = ggml_arith::expf(w[p0 + i] - max);
    sum += ggml_arith::reduce16(e);
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int32_t p = 0; p < n_pos; ++p) w[p] = fp16_round(w[p] * inv);
  // V^T . w: row d of V^T is V[.][d]; positions past n_pos (llama.cpp's masked, padded ones)
  // have weight 0 and change no sum, so the orders only need n_pos rounded up to their step.
  const int64_t n = (n_pos + 63) / 64 * 64;
  std::vector<float> vt(static_cast<size_t>(n), 0.0f), wz(static_cast<size_t>(n), 0.0f);
  std::copy(w.begin(), w.end(), wz.begin());
  std::vector<const uint16_t*> v_rows(static_cast<size_t>(n_pos));
  for (int32_t p = 0; p < n_pos; ++p) v_rows[p] = v_row(p);
  auto wx = [&](int64_t p) { return wz[static_cast<size_t>(p)]; };
  for (int32_t d = 0; d < head_dim; ++d) {
    for (int32_t p = 0; p < n_pos; ++p) vt[p] = fp16_to_fp32(v_rows[p][d]);
    auto vx = [&](int64_t p) { return vt[static_cast<size_t>(p)]; };
    out[d] = kqv_tiny ? dot_tinyblas_order(n, vx, wx) : dot_vec_f16_order(n, vx, wx);
  }
}

void attention(const attention_tile& a) {
  const f16_rows k_row{a.k_pages, a.block_table, a.block_size, a.n_head_kv, a.kv_head, a.head_dim};
  const f16_rows v_row{a.v_pages, a.block_table, a.block_size, a.n_head_kv, a.kv_head, a.head_dim};
  for (int32_t i = 0; i < a.n_tok; ++i)
    for (int32_t g = 0; g < a.n_group; ++g) {
      const int64_t off = i * a.tok_stride + static_cast<int64_t>(g) * a.head_dim;
      attention_query(a.q + off, k_row, v_row, a.positions[i] + 1, a.head_dim, a.scale,
                      a.single_token_order != nullptr && a.single_token_order[i] != 0,
                      a.out + off);
    }
}

const kernel_table reference_table = {
    .name = "reference",
    .quantize_row_act = &quantize_row_act,
    .gemm_f32 = &gemm<&dot_float<&load_f32>>,
    .gemm_f16 = &gemm<&dot_float<&load_f16>>,
    .gemm_bf16 = &gemm<&dot_float<&load_bf16>>,
    .gemm_q4_0 = &gemm<&dot_q4_0_q8_0>,
    .gemm_q4_1 = &gemm<&dot_q4_1_q8_1>,
    .gemm_q8_0 = &gemm<&dot_q8_0_q8_0>,
    .gemm_q5_0 = &gemm<&dot_q5_0_q8_0>,
    .gemm_q5_1 = &gemm<&dot_q5_1_q8_1>,
    .quantize_row_act_k = &k_quant_ref::quantize_row_act_k,
    .gemm_q4_k = &gemm<&k_quant_ref::dot_q4_k>,
    .gemm_q4_k_x8 = &gemm<&k_quant_ref::dot_q4_k_x8>,
    .gemm_q4_k_x8x4 = &gemm<&k_quant_ref::dot_q4_k_x8x4>,
    .gemm_q5_k = &gemm<&k_quant_ref::dot_q5_k>,
    .gemm_q6_k = &gemm<&k_quant_ref::dot_q6_k>,
    .rms_norm = &rms_norm,
    .silu_mul = &silu_mul,
    .softmax = &softmax,
    .attention = &attention,
};

}  // namespace

const kernel_table& reference_kernels() { return reference_table; }

}  // namespace troupe::kernels
