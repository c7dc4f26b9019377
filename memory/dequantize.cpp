// Reference dequantizers and quantizers. Blocks are copied out with memcpy because tensor data
// and caller buffers carry no alignment guarantee beyond bytes; these loops are the oracle, not
// the fast path.
#include "memory/dequantize.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "memory/float16.hpp"
#include "memory/quant_blocks.hpp"
#include "troupe/result.hpp"

namespace troupe {
namespace {

template <class Block>
void store_block(void* dst, int64_t i, const Block& b) {
  std::memcpy(static_cast<uint8_t*>(dst) + static_cast<size_t>(i) * sizeof(Block), &b,
              sizeof(Block));
}

void dequantize_q4_0(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / k_qk4_0; ++i) {
    const auto b = load_block<block_q4_0>(src, i);
    const float d = fp16_to_fp32(b.d);
    float* y = dst + i * k_qk4_0;
    for (int j = 0; j < k_qk4_0 / 2; ++j) {
      y[j] = d * static_cast<float>((b.qs[j] & 0x0F) - 8);
      y[j + k_qk4_0 / 2] = d * static_cast<float>((b.qs[j] >> 4) - 8);
    }
  }
}

void dequantize_q4_1(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / k_qk4_1; ++i) {
    const auto b = load_block<block_q4_1>(src, i);
    const float d = fp16_to_fp32(b.d);
    const float m = fp16_to_fp32(b.m);
    float* y = dst + i * k_qk4_1;
    for (int j = 0; j < k_qk4_1 / 2; ++j) {
      y[j] = d * static_cast<float>(b.qs[j] & 0x0F) + m;
      y[j + k_qk4_1 / 2] = d * static_cast<float>(b.qs[j] >> 4) + m;
    }
  }
}

void dequantize_q8_0(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / k_qk8_0; ++i) {
    const auto b = load_block<block_q8_0>(src, i);
    const float d = fp16_to_fp32(b.d);
    for (int j = 0; j < k_qk8_0; ++j) dst[i * k_qk8_0 + j] = d * static_cast<float>(b.qs[j]);
  }
}

// Bit 4 of element j (0..31) of a Q5_0/Q5_1 block, as 0 or 16.
inline int fifth_bit(const uint8_t qh_bytes[4], int j) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, 4);
  return static_cast<int>((qh >> j) & 1u) << 4;
}

void dequantize_q5_0(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / k_qk5_0; ++i) {
    const auto b = load_block<block_q5_0>(src, i);
    const float d = fp16_to_fp32(b.d);
    float* y = dst + i * k_qk5_0;
    for (int j = 0; j < k_qk5_0 / 2; ++j) {
      y[j] = static_cast<float>(((b.qs[j] & 0x0F) | fifth_bit(b.qh, j)) - 16) * d;
      y[j + 16] = static_cast<float>(((b.qs[j] >> 4) | fifth_bit(b.qh, j + 16)) - 16) * d;
    }
  }
}

void dequantize_q5_1(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / k_qk5_1; ++i) {
    const auto b = load_block<block_q5_1>(src, i);
    const float d = fp16_to_fp32(b.d);
    const float m = fp16_to_fp32(b.m);
    float* y = dst + i * k_qk5_1;
    for (int j = 0; j < k_qk5_1 / 2; ++j) {
      y[j] = static_cast<float>((b.qs[j] & 0x0F) | fifth_bit(b.qh, j)) * d + m;
      y[j + 16] = static_cast<float>((b.qs[j] >> 4) | fifth_bit(b.qh, j + 16)) * d + m;
    }
  }
}

// Q4_K and Q5_K: y = (d * sc) * q - (dmin * mn), the two products rounded first, as ggml's
// dequantize_row_q4_K (the golden test holds us to its bits).
template <class Block>
void dequantize_q45_k(const void* src, float* dst, int64_t n) {
  constexpr bool has_qh = std::is_same_v<Block, block_q5_k>;
  for (int64_t i = 0; i < n / k_qk_k; ++i) {
    const auto b = load_block<Block>(src, i);
    const float d = fp16_to_fp32(b.d);
    const float dmin = fp16_to_fp32(b.dmin);
    float* y = dst + i * k_qk_k;
    for (int s = 0; s < 8; ++s) {
      uint8_t sc, mn;
      k_quant_scale_min(b.scales, s, &sc, &mn);
      const float ds = d * static_cast<float>(sc);
      const float ms = dmin * static_cast<float>(mn);
      const uint8_t* qs = b.qs + 32 * (s / 2);
      for (int e = 0; e < 32; ++e) {
        int q = s % 2 == 0 ? (qs[e] & 0x0F) : (qs[e] >> 4);
        if constexpr (has_qh) q |= ((b.qh[e] >> s) & 1) << 4;
        y[32 * s + e] = ds * static_cast<float>(q) - ms;
      }
    }
  }
}

// Element e (0..255) of a Q6_K block as its unsigned 6-bit value (block_q6_k's layout).
inline int q6_k_value(const block_q6_k& b, int e) {
  const int h = e / 128, quarter = (e % 128) / 32, i = e % 32;
  const uint8_t lo = b.ql[64 * h + 32 * (quarter % 2) + i];
  const int low4 = quarter < 2 ? (lo & 0x0F) : (lo >> 4);
  return low4 | (((b.qh[32 * h + i] >> (2 * quarter)) & 3) << 4);
}

void dequantize_q6_k(const void* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n / k_qk_k; ++i) {
    const auto b = load_block<block_q6_k>(src, i);
    const float d = fp16_to_fp32(b.d);
    for (int e = 0; e < k_qk_k; ++e)
      dst[i * k_qk_k + e] =
          d * static_cast<float>(b.scales[e / 16]) * static_cast<float>(q6_k_value(b, e) - 32);
  }
}

void dequantize_halves(const void* src, float* dst, int64_t n, float (*convert)(uint16_t)) {
  const auto* p = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    dst[i] = convert(h);
  }
}

// Returns the block's d and fills q with round(x / d), as llama.cpp's q8 reference does.
float quantize_block_q8(const float* x, int8_t* q) {
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  for (int j = 0; j < 32; ++j) q[j] = static_cast<int8_t>(std::lround(x[j] * id));
  return d;
}

}  // namespace

void dequantize_row(ggml_type type, const void* src, float* dst, int64_t n) {
  TROUPE_ASSERT(n >= 0);
  switch (type) {
    case ggml_type::f32: std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float)); return;
    case ggml_type::f16: dequantize_halves(src, dst, n, fp16_to_fp32); return;
    case ggml_type::bf16: dequantize_halves(src, dst, n, bf16_to_fp32); return;
    case ggml_type::q4_0: TROUPE_ASSERT(n % k_qk4_0 == 0); dequantize_q4_0(src, dst, n); return;
    case ggml_type::q4_1: TROUPE_ASSERT(n % k_qk4_1 == 0); dequantize_q4_1(src, dst, n); return;
    case ggml_type::q8_0: TROUPE_ASSERT(n % k_qk8_0 == 0); dequantize_q8_0(src, dst, n); return;
    case ggml_type::q5_0: TROUPE_ASSERT(n % k_qk5_0 == 0); dequantize_q5_0(src, dst, n); return;
    case ggml_type::q5_1: TROUPE_ASSERT(n % k_qk5_1 == 0); dequantize_q5_1(src, dst, n); return;
    case ggml_type::q4_k: TROUPE_ASSERT(n % k_qk_k == 0); dequantize_q45_k<block_q4_k>(src, dst, n); return;
    case ggml_type::q5_k: TROUPE_ASSERT(n % k_qk_k == 0); dequantize_q45_k<block_q5_k>(src, dst, n); return;
    case ggml_type::q6_k: TROUPE_ASSERT(n % k_qk_k == 0); dequantize_q6_k(src, dst, n); return;
    default: break;
  }
  TROUPE_ASSERT(!"dequantize_row: unsupported type");
}

void quantize_row_q8_0(const float* src, void* dst, int64_t n) {
  TROUPE_ASSERT(n >= 0 && n % k_qk8_0 == 0);
  for (int64_t i = 0; i < n / k_qk8_0; ++i) {
    block_q8_0 b;
    b.d = fp32_to_fp16(quantize_block_q8(src + i * k_qk8_0, b.qs));
    store_block(dst, i, b);
  }
}

void quantize_row_q8_1(const float* src, void* dst, int64_t n) {
  TROUPE_ASSERT(n >= 0 && n % k_qk8_1 == 0);
  for (int64_t i = 0; i < n / k_qk8_1; ++i) {
    block_q8_1 b;
    const float d = quantize_block_q8(src + i * k_qk8_1, b.qs);
    int sum = 0;
    for (int j = 0; j < k_qk8_1; ++j) sum += b.qs[j];
    b.d = fp32_to_fp16(d);
    b.s = fp32_to_fp16(d * static_cast<float>(sum));
    store_block(dst, i, b);
  }
}

void quantize_row_q4_0(const float* src, void* dst, int64_t n) {
  TROUPE_ASSERT(n >= 0 && n % k_qk4_0 == 0);
  for (int64_t i = 0; i < n / k_qk4_0; ++i) {
    const float* x = src + i * k_qk4_0;
    // d carries the sign of the largest-magnitude value so that value maps exactly to q = 0
    // (-8 after the offset); the opposite extreme can clamp at 15.
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < k_qk4_0; ++j)
      if (std::fabs(x[j]) > amax) { amax = std::fabs(x[j]); max = x[j]; }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    block_q4_0 b;
    b.d = fp32_to_fp16(d);
    for (int j = 0; j < k_qk4_0 / 2; ++j) {
      const int lo = std::min(15, static_cast<int>(x[j] * id + 8.5f));
      const int hi = std::min(15, static_cast<int>(x[j + k_qk4_0 / 2] * id + 8.5f));
      b.qs[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
    store_block(dst, i, b);
  }
}

void quantize_row_q4_1(const float* src, void* dst, int64_t n) {
  TROUPE_ASSERT(n >= 0 && n % k_qk4_1 == 0);
  for (int64_t i = 0; i < n / k_qk4_1; ++i) {
    const float* x = src + i * k_qk4_1;
    float min = x[0], max = x[0];
    for (int j = 1; j < k_qk4_1; ++j) { min = std::min(min, x[j]); max = std::max(max, x[j]); }
    const float d = (max - min) / 15.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    block_q4_1 b;
    b.d = fp32_to_fp16(d);
    b.m = fp32_to_fp16(min);
    for (int j = 0; j < k_qk4_1 / 2; ++j) {
      const int lo = std::min(15, static_cast<int>((x[j] - min) * id + 0.5f));
      const int hi = std::min(15, static_cast<int>((x[j + k_qk4_1 / 2] - min) * id + 0.5f));
      b.qs[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
    store_block(dst, i, b);
  }
}

}  // namespace troupe

namespace troupe {

void quantize_row_q8_k(const float* src, void* dst, int64_t n) {
  TROUPE_ASSERT(n >= 0 && n % k_qk_k == 0);
  for (int64_t i = 0; i < n / k_qk_k; ++i) {
    const float* x = src + i * k_qk_k;
    block_q8_k b{};
    // The signed value of largest magnitude (the first one on ties) maps to -127 exactly.
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < k_qk_k; ++j)
      if (std::fabs(x[j]) > amax) { amax = std::fabs(x[j]); max = x[j]; }
    if (amax != 0.0f) {
      const float iscale = -127.0f / max;
      for (int j = 0; j < k_qk_k; ++j)  // ties to even, as ggml's nearest_int
        b.qs[j] = static_cast<int8_t>(std::min(127.0f, std::nearbyint(iscale * x[j])));
      for (int g = 0; g < k_qk_k / 16; ++g) {
        int sum = 0;
        for (int j = 16 * g; j < 16 * g + 16; ++j) sum += b.qs[j];
        b.bsums[g] = static_cast<int16_t>(sum);
      }
      b.d = 1.0f / iscale;
    }
    store_block(dst, i, b);
  }
}

}  // namespace troupe
