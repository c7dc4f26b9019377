// Block layouts of the quantized types troupe runs, exactly as GGUF stores them
// (llama.cpp ggml-common.h). Shared by the reference dequantizer and the kernels.
//
// Within a block of 32 elements, byte qs[j] of a 4-bit type holds element j in its LOW nibble
// and element j+16 in its HIGH nibble. Scales (d, m, s) are IEEE binary16 bit patterns
// (convert with memory/float16.hpp).
//
// Blocks in a file are only 2-byte aligned relative to each other (18- and 34-byte strides), so
// read them with memcpy or through these structs (alignof == 2), never as wider types.
//
// K-quants (Q4_K, Q5_K, Q6_K) are super-blocks of 256 elements split into sub-blocks with their
// own small integer scales, which a fp16 super-scale turns into floats; they pair with Q8_K
// activations (float scale, 256 int8, 16 sums of 16) in llama.cpp's dot products.
#pragma once

#include <cstdint>
#include <cstring>

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

inline constexpr int k_qk5_0 = 32;
inline constexpr int k_qk5_1 = 32;
inline constexpr int k_qk_k = 256;       // elements per K-quant super-block
inline constexpr int k_k_scale_size = 12;  // Q4_K/Q5_K: 8 six-bit scales + 8 six-bit mins

// Q5_0: y[j] = d * (q[j] - 16), q in 0..31: the low 4 bits as in Q4_0 (element j and j+16 share
// byte qs[j]), bit 4 of element j is bit j of the little-endian 32-bit qh.
struct block_q5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[k_qk5_0 / 2];
};
static_assert(sizeof(block_q5_0) == 22 && alignof(block_q5_0) == 2);

// Q5_1: y[j] = d * q[j] + m, q in 0..31, bits as Q5_0.
struct block_q5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[k_qk5_1 / 2];
};
static_assert(sizeof(block_q5_1) == 24 && alignof(block_q5_1) == 2);

// Q4_K: 8 sub-blocks of 32; sub-block s has a 6-bit scale sc[s] and a 6-bit min mn[s] packed in
// `scales` (k_quant_scale_min below), y = d * sc[s] * q - dmin * mn[s], q in 0..15.
// Element 64 * p + i (p = 0..3, i = 0..31) is the low nibble of qs[32 * p + i], element
// 64 * p + 32 + i its high nibble: sub-blocks 2p and 2p+1 share 32 bytes.
struct block_q4_k {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[k_k_scale_size];
  uint8_t qs[k_qk_k / 2];
};
static_assert(sizeof(block_q4_k) == 144 && alignof(block_q4_k) == 2);

// Q5_K: Q4_K plus a fifth bit, q in 0..31: bit 4 of element 32 * s + i is bit s of qh[i].
struct block_q5_k {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[k_k_scale_size];
  uint8_t qh[k_qk_k / 8];
  uint8_t qs[k_qk_k / 2];
};
static_assert(sizeof(block_q5_k) == 176 && alignof(block_q5_k) == 2);

// Q6_K: 16 sub-blocks of 16 with signed 8-bit scales, y = d * sc[e / 16] * (q - 32), q in
// 0..63. Two halves of 128 elements (h = 0, 1), each from 64 bytes of ql and 32 of qh: for
// i = 0..31, elements 128h + i, +32, +64, +96 take the low nibble of ql[64h + i], the low
// nibble of ql[64h + 32 + i], the high nibble of ql[64h + i], the high nibble of
// ql[64h + 32 + i], and bits 0-1, 2-3, 4-5, 6-7 of qh[32h + i] as their bits 4-5.
struct block_q6_k {
  uint8_t ql[k_qk_k / 2];
  uint8_t qh[k_qk_k / 4];
  int8_t scales[k_qk_k / 16];
  uint16_t d;
};
static_assert(sizeof(block_q6_k) == 210 && alignof(block_q6_k) == 2);

// Q8_K (activations only, paired with the K-quants): x ~= d * qs (d a plain float, not fp16),
// bsums[g] = sum of qs[16g .. 16g + 16), which the kernels use to apply mins and offsets once
// per 16 elements.
struct block_q8_k {
  float d;
  int8_t qs[k_qk_k];
  int16_t bsums[k_qk_k / 16];
};
static_assert(sizeof(block_q8_k) == 292 && alignof(block_q8_k) == 4);

// Scale and min of Q4_K/Q5_K sub-block s (0..7) from the 12 packed bytes: sub-blocks 0..3 keep
// them in the low 6 bits of bytes s and s + 4; sub-blocks 4..7 keep their low 4 bits in byte
// s + 4 (scale low nibble, min high nibble) and their top 2 bits in the top bits of bytes
// s - 4 (scale) and s (min).
inline void k_quant_scale_min(const uint8_t* scales, int s, uint8_t* sc, uint8_t* mn) {
  if (s < 4) {
    *sc = scales[s] & 63;
    *mn = scales[s + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((scales[s + 4] & 0x0F) | ((scales[s - 4] >> 6) << 4));
    *mn = static_cast<uint8_t>((scales[s + 4] >> 4) | ((scales[s] >> 6) << 4));
  }
}

// Block i of a row that starts at src, copied out: tensor data in a GGUF file is aligned only
// as a whole, so a block's fp16 scales may sit at any address (memcpy, not a cast).
template <class Block>
Block load_block(const void* src, int64_t i = 0) {
  Block b;
  std::memcpy(&b, static_cast<const uint8_t*>(src) + static_cast<size_t>(i) * sizeof(Block),
              sizeof(Block));
  return b;
}

}  // namespace troupe
