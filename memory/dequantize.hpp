// Reference (scalar, obviously correct) conversions between float rows and the GGUF tensor
// types troupe supports. The SIMD/CUDA kernels are tested against these; the loader uses them
// for embedding lookups and tests use the quantizers to build random weights.
//
// All functions are pure, thread-safe and allocate nothing. A "row" is n consecutive elements
// stored as n / block_elems consecutive blocks (memory/quant_blocks.hpp).
#pragma once

#include <cstdint>

#include "memory/ggml_type.hpp"

namespace troupe {

// dst[0..n) = the values of the n elements at src.
// Also Q5_0, Q5_1, Q4_K, Q5_K, Q6_K (their layouts: memory/quant_blocks.hpp), whose
// arithmetic follows ggml's dequantize_row_* bit for bit (tests/memory/test_k_quant_golden.cpp).
// REQUIRES: ggml_type_is_supported(type) or one of those; n >= 0 and n % block_elems(type) == 0;
//           src holds ggml_row_bytes(type, n) readable bytes (any alignment).
void dequantize_row(ggml_type type, const void* src, float* dst, int64_t n);

// llama.cpp's reference quantizers (quantize_row_*_ref). dst receives n / 32 blocks.
// REQUIRES: n % 32 == 0; src finite.
// Q8_0: d = max|x| / 127, q = round(x / d). Error per element <= d / 2 (plus fp16 rounding of d).
void quantize_row_q8_0(const float* src, void* dst, int64_t n);
// Q8_1: as Q8_0, plus s = d * sum(q).
void quantize_row_q8_1(const float* src, void* dst, int64_t n);
// Q4_0: d = x_maxabs / -8 (signed), q = clamp(round(x / d) + 8, 0, 15). Error <= |d|.
void quantize_row_q4_0(const float* src, void* dst, int64_t n);
// Q4_1: d = (max - min) / 15, m = min, q = round((x - m) / d). Error <= d / 2 (plus fp16).
void quantize_row_q4_1(const float* src, void* dst, int64_t n);

// Q8_K, llama.cpp's activation type for the K-quants (quantize_row_q8_K_ref, which its x86
// build uses as is): per 256 elements, iscale = -127 / x_max (x_max the signed value of largest
// magnitude), q = min(127, round-half-even(iscale * x)), d = 1 / iscale as a float, bsums the
// sums of 16. An all-zero block gives d = 0, q = 0, bsums = 0. REQUIRES: n % 256 == 0.
void quantize_row_q8_k(const float* src, void* dst, int64_t n);

}  // namespace troupe
