// The AVX-512 (F/BW/VL/DQ) + VNNI kernel table: the 256-bit kernels of simd_kernels.inl with
// vpdpbusd for the u8 x s8 dot products and 32 vector registers (tiles of 8 rows x 4 tokens).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels/cpu/ggml_arithmetic.hpp"
#include "kernels/cpu/k_quant_reference.hpp"
#include "kernels/cpu/kernel_variants.hpp"
#include "memory/float16.hpp"
#include "memory/quant_blocks.hpp"

namespace troupe::kernels {
namespace {
#define TROUPE_SIMD_VNNI 1
#define TROUPE_SIMD_NAME "avx512"
#define TROUPE_TILE_ROWS 2
#define TROUPE_TILE_TOKENS_NARROW 2
#define TROUPE_TILE_ROWS_NARROW 8
#define TROUPE_TILE_TOKENS 8
#include "kernels/cpu/simd_kernels.inl"
}  // namespace

const kernel_table& avx512_kernels() { return simd_table; }

}  // namespace troupe::kernels
