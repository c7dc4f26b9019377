// Reference dequantizers and quantizers. Blocks are copied out with memcpy because tensor data
// and caller buffers carry no alignment guarantee beyond bytes; these loops are the oracle, not
// the fast path.
#include "memory/dequantize.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "memory/float16.hpp"
#include "memory/quant_blocks.hpp"
#include "troupe/result.hpp"

namespace troupe {
namespace {

template <class Block>
Block load_block(const void* src, int64_t i) {
  Block b;
  std::memcpy(&b, static_cast<const uint8_t*>(src) + static_cast<size_t>(i) * sizeof(Block),
              sizeof(Block));
  return b;
}

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
