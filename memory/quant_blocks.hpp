// Block layouts of the quantized types troupe runs, exactly as GGUF stores them
// (llama.cpp ggml-common.h). Shared by the reference dequantizer and the kernels.
//
// Within a block of 32 elements, byte qs[j] of a 4-bit type holds element j in its LOW nibble
// and element j+16 in its HIGH nibble. Scales (d, m, s) are IEEE binary16 bit patterns
// (convert with memory/float16.hpp).
//
// Blocks in a file are only 2-byte aligned relative to each other (18- and 34-byte strides), so
// read them with memcpy or through these structs (alignof == 2), never as wider types.
#pragma once

#include <cstdint>

namespace troupe {

inline constexpr int k_qk4_0 = 32;
inline constexpr int k_qk4_1 = 32;
inline constexpr int k_qk8_0 = 32;
inline constexpr int k_qk8_1 = 32;

// Q4_0: y[j] = d * (q[j] - 8), q in 0..15.
struct block_q4_0 {
  uint16_t d;
  uint8_t qs[k_qk4_0 / 2];
};
static_assert(sizeof(block_q4_0) == 18 && alignof(block_q4_0) == 2);

// Q4_1: y[j] = d * q[j] + m, q in 0..15.
struct block_q4_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qs[k_qk4_1 / 2];
};
static_assert(sizeof(block_q4_1) == 20 && alignof(block_q4_1) == 2);

// Q8_0: y[j] = d * qs[j].
struct block_q8_0 {
  uint16_t d;
  int8_t qs[k_qk8_0];
};
static_assert(sizeof(block_q8_0) == 34 && alignof(block_q8_0) == 2);

// Q8_1 (activations only, paired with Q4_1 weights): y[j] = d * qs[j]; s = d * sum(qs) as fp16,
// so that sum((d4*q4 + m4) * (d8*q8)) = d4*d8*sum(q4*q8) + m4*s.
struct block_q8_1 {
  uint16_t d;
  uint16_t s;
  int8_t qs[k_qk8_1];
};
static_assert(sizeof(block_q8_1) == 36 && alignof(block_q8_1) == 2);

}  // namespace troupe
