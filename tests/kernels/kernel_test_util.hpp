// Helpers shared by the kernel tests: random data, weights of any type, error metrics.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "memory/dequantize.hpp"
#include "memory/float16.hpp"
#include "memory/ggml_type.hpp"
#include "memory/tensor_view.hpp"

namespace kernel_test {

inline std::vector<float> random_floats(std::mt19937& rng, size_t n, float lo = -1.0f,
                                        float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// Normalized mean squared error, as llama.cpp's test-backend-ops: sum (a-b)^2 / sum b^2.
inline double nmse(const float* a, const float* ref, size_t n) {
  double err = 0.0, norm = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(a[i]) - ref[i];
    err += d * d;
    norm += static_cast<double>(ref[i]) * ref[i];
  }
  return norm == 0.0 ? err : err / norm;
}

inline uint16_t to_bf16(float f) {  // round to nearest even
  uint32_t b;
  std::memcpy(&b, &f, 4);
  b += 0x7FFFu + ((b >> 16) & 1u);
  return static_cast<uint16_t>(b >> 16);
}

// Random blocks of a type troupe has no quantizer for (Q5_0, Q5_1, K-quants): every bit pattern
// of the quants and integer scales is valid, so random bytes, with the fp16 super-scales set to
// small finite values (random ones could be NaN or huge).
inline void random_blocks(std::mt19937& rng, troupe::ggml_type type, uint8_t* dst, uint64_t bytes) {
  using troupe::ggml_type;
  std::uniform_int_distribution<int> byte(0, 255);
  for (uint64_t i = 0; i < bytes; ++i) dst[i] = static_cast<uint8_t>(byte(rng));
  std::uniform_real_distribution<float> scale(0.0005f, 0.02f);
  auto set_f16 = [&](uint8_t* p) {
    const uint16_t h = troupe::fp32_to_fp16(scale(rng));
    std::memcpy(p, &h, 2);
  };
  const auto traits = *troupe::ggml_type_info(static_cast<uint32_t>(type));
  for (uint64_t b = 0; b < bytes / traits.block_bytes; ++b) {
    uint8_t* blk = dst + b * traits.block_bytes;
    switch (type) {
      case ggml_type::q5_0: set_f16(blk); break;                         // d
      case ggml_type::q5_1: set_f16(blk); set_f16(blk + 2); break;       // d, m
      case ggml_type::q4_k:
      case ggml_type::q5_k: set_f16(blk); set_f16(blk + 2); break;       // d, dmin
      case ggml_type::q6_k: set_f16(blk + traits.block_bytes - 2); break;  // d is last
      default: break;
    }
  }
}

// A random [rows, k] weight matrix in `type`, with its bytes owned by `storage`.
struct weight {
  std::vector<uint8_t> storage;
  troupe::tensor_view view;
};

inline weight make_weight(std::mt19937& rng, troupe::ggml_type type, int64_t rows, int64_t k) {
  using troupe::ggml_type;
  weight w;
  const uint64_t row_bytes = troupe::ggml_row_bytes(type, static_cast<uint64_t>(k));
  w.storage.resize(row_bytes * static_cast<uint64_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    const auto src = random_floats(rng, static_cast<size_t>(k));
    uint8_t* dst = w.storage.data() + static_cast<uint64_t>(r) * row_bytes;
    switch (type) {
      case ggml_type::f32: std::memcpy(dst, src.data(), row_bytes); break;
      case ggml_type::f16:
        for (int64_t i = 0; i < k; ++i) {
          const uint16_t h = troupe::fp32_to_fp16(src[static_cast<size_t>(i)]);
          std::memcpy(dst + 2 * i, &h, 2);
        }
        break;
      case ggml_type::bf16:
        for (int64_t i = 0; i < k; ++i) {
          const uint16_t h = to_bf16(src[static_cast<size_t>(i)]);
          std::memcpy(dst + 2 * i, &h, 2);
        }
        break;
      case ggml_type::q4_0: troupe::quantize_row_q4_0(src.data(), dst, k); break;
      case ggml_type::q4_1: troupe::quantize_row_q4_1(src.data(), dst, k); break;
      case ggml_type::q8_0: troupe::quantize_row_q8_0(src.data(), dst, k); break;
      case ggml_type::q5_0:
      case ggml_type::q5_1:
      case ggml_type::q4_k:
      case ggml_type::q5_k:
      case ggml_type::q6_k: random_blocks(rng, type, dst, row_bytes); break;
      default: break;
    }
  }
  w.view.type = type;
  w.view.ne0 = k;
  w.view.ne1 = rows;
  w.view.row_bytes = row_bytes;
  w.view.data = w.storage.data();
  return w;
}

}  // namespace kernel_test
