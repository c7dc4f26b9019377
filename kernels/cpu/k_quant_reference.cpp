// Scalar K-quant dots in llama.cpp's x86 order (k_quant_reference.hpp says which). Written for
// obviousness: unpack a block to integers, then follow the lanes.
#include "kernels/cpu/k_quant_reference.hpp"

#include <cmath>
#include <cstring>
#include <type_traits>

#include "kernels/cpu/ggml_arithmetic.hpp"
#include "memory/dequantize.hpp"
#include "memory/float16.hpp"
#include "memory/quant_blocks.hpp"

namespace troupe::kernels::k_quant_ref {
namespace {

block_q8_k load_act(const uint8_t* a, int64_t i) {
  return load_block<block_q8_k>(a + i * static_cast<int64_t>(sizeof(block_q8_k)));
}

// The 8 exact integer lanes of one block: lane l = sum_c scale(c, l) * sum_{e=4l..4l+3}
// q[32c + e] * aq[32c + e]; `scale(c, l)` is the integer scale of chunk c's lane-l elements.
template <class Scale>
void block_lanes(const int32_t q[256], const int8_t aq[256], Scale scale, int32_t lanes[8]) {
  for (int l = 0; l < 8; ++l) {
    lanes[l] = 0;
    for (int c = 0; c < 8; ++c) {
      int32_t part = 0;
      for (int e = 4 * l; e < 4 * l + 4; ++e) part += q[32 * c + e] * aq[32 * c + e];
      lanes[l] += scale(c, l) * part;
    }
  }
}

// Q4_K / Q5_K: unsigned 4/5-bit values of a block (layout: memory/quant_blocks.hpp).
template <class Block>
void unpack_q45_k(const Block& b, int32_t q[256]) {
  for (int s = 0; s < 8; ++s) {
    const uint8_t* qs = b.qs + 32 * (s / 2);
    for (int e = 0; e < 32; ++e) {
      q[32 * s + e] = s % 2 == 0 ? (qs[e] & 0x0F) : (qs[e] >> 4);
      if constexpr (std::is_same_v<Block, block_q5_k>) q[32 * s + e] |= ((b.qh[e] >> s) & 1) << 4;
    }
  }
}

template <class Block>
float dot_q45_k(int64_t k, const uint8_t* w, const uint8_t* a) {
  constexpr bool is_q5 = std::is_same_v<Block, block_q5_k>;
  float acc[8] = {};
  float acc_m[4] = {};  // Q4_K's mins
  float summs = 0.0f;   // Q5_K's mins
  for (int64_t i = 0; i < k / 256; ++i) {
    const auto b = load_block<Block>(w + i * static_cast<int64_t>(sizeof(Block)));
    const block_q8_k act = load_act(a, i);
    const float d = act.d * fp16_to_fp32(b.d);
    const float dmin = -act.d * fp16_to_fp32(b.dmin);
    int32_t sc[8], mn[8], chunk_sum[8];
    for (int s = 0; s < 8; ++s) {
      uint8_t s8, m8;
      k_quant_scale_min(b.scales, s, &s8, &m8);
      sc[s] = s8;
      mn[s] = m8;
      chunk_sum[s] = act.bsums[2 * s] + act.bsums[2 * s + 1];
    }
    int32_t q[256], lanes[8];
    unpack_q45_k(b, q);
    block_lanes(q, act.qs, [&](int c, int) { return sc[c]; }, lanes);
    int32_t prod[4];
    for (int l = 0; l < 4; ++l) prod[l] = mn[2 * l] * chunk_sum[2 * l] + mn[2 * l + 1] * chunk_sum[2 * l + 1];
    if constexpr (is_q5) {
      summs = std::fma(dmin, static_cast<float>(prod[0] + prod[1] + prod[2] + prod[3]), summs);
    } else {
      for (int l = 0; l < 4; ++l) acc_m[l] = std::fma(dmin, static_cast<float>(prod[l]), acc_m[l]);
    }
    for (int l = 0; l < 8; ++l) acc[l] = std::fma(d, static_cast<float>(lanes[l]), acc[l]);
  }
  if constexpr (is_q5) return ggml_arith::hsum8(acc) + summs;
  return ggml_arith::hsum8(acc) + ((acc_m[0] + acc_m[2]) + (acc_m[1] + acc_m[3]));
}

// Q6_K's unsigned 6-bit value of element e (layout: memory/quant_blocks.hpp).
int32_t q6_k_value(const block_q6_k& b, int e) {
  const int h = e / 128, quarter = (e % 128) / 32, i = e % 32;
  const uint8_t lo = b.ql[64 * h + 32 * (quarter % 2) + i];
  const int32_t low4 = quarter < 2 ? (lo & 0x0F) : (lo >> 4);
  return low4 | (((b.qh[32 * h + i] >> (2 * quarter)) & 3) << 4);
}

}  // namespace

float dot_q4_k(int64_t k, const uint8_t* w, const uint8_t* a) { return dot_q45_k<block_q4_k>(k, w, a); }
float dot_q5_k(int64_t k, const uint8_t* w, const uint8_t* a) { return dot_q45_k<block_q5_k>(k, w, a); }

float dot_q6_k(int64_t k, const uint8_t* w, const uint8_t* a) {
  float acc[8] = {};
  for (int64_t i = 0; i < k / 256; ++i) {
    const auto b = load_block<block_q6_k>(w + i * static_cast<int64_t>(sizeof(block_q6_k)));
    const block_q8_k act = load_act(a, i);
    const float d = act.d * fp16_to_fp32(b.d);
    int32_t q[256], lanes[8];
    for (int e = 0; e < 256; ++e) q[e] = q6_k_value(b, e);
    // Lane l of chunk c covers elements 32c + 4l .. +3, all in 16-group 2c + l / 4.
    block_lanes(q, act.qs, [&](int c, int l) { return int32_t{b.scales[2 * c + l / 4]}; }, lanes);
    for (int l = 0; l < 8; ++l) {
      lanes[l] -= 32 * (act.bsums[2 * l] * b.scales[2 * l] + act.bsums[2 * l + 1] * b.scales[2 * l + 1]);
      acc[l] = std::fma(d, static_cast<float>(lanes[l]), acc[l]);
    }
  }
  return ggml_arith::hsum8(acc);
}

// llama.cpp's repacked Q4_K: chains of fma over steps of `pairs` sub-block pairs (4: a block
// per step, its gemv; 1: 64 elements per step, its gemm).
template <int pairs>
float dot_q4_k_repacked(int64_t k, const uint8_t* w, const uint8_t* a) {
  float acc = 0.0f, acc_m = 0.0f;
  for (int64_t i = 0; i < k / 256; ++i) {
    const auto b = load_block<block_q4_k>(w + i * static_cast<int64_t>(sizeof(block_q4_k)));
    const block_q8_k act = load_act(a, i);
    const float d = fp16_to_fp32(b.d) * act.d, dmin = fp16_to_fp32(b.dmin) * act.d;
    int32_t q[256];
    unpack_q45_k(b, q);
    for (int p0 = 0; p0 < 4; p0 += pairs) {
      int32_t sum = 0, mins = 0;
      for (int s = 2 * p0; s < 2 * (p0 + pairs); ++s) {
        uint8_t sc, mn;
        k_quant_scale_min(b.scales, s, &sc, &mn);
        int32_t part = 0;
        for (int e = 32 * s; e < 32 * s + 32; ++e) part += q[e] * act.qs[e];
        sum += sc * part;
        mins += mn * (act.bsums[2 * s] + act.bsums[2 * s + 1]);
      }
      acc = std::fma(static_cast<float>(sum), d, acc);
      acc_m = std::fma(static_cast<float>(mins), dmin, acc_m);
    }
  }
  return acc - acc_m;
}

float dot_q4_k_x8(int64_t k, const uint8_t* w, const uint8_t* a) { return dot_q4_k_repacked<4>(k, w, a); }
float dot_q4_k_x8x4(int64_t k, const uint8_t* w, const uint8_t* a) { return dot_q4_k_repacked<1>(k, w, a); }

void quantize_row_act_k(const float* x, uint8_t* y, int64_t k) { quantize_row_q8_k(x, y, k); }

}  // namespace troupe::kernels::k_quant_ref
