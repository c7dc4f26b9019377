// The AVX2 + FMA + F16C kernel table (compiled with -mavx2 -mfma -mf16c; see
// kernels/CMakeLists.txt). 16 vector registers: tiles of 4 rows x 2 tokens.
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
#define TROUPE_SIMD_VNNI 0
#define TROUPE_SIMD_NAME "avx2"
#define TROUPE_TILE_ROWS 2
#define TROUPE_TILE_TOKENS_NARROW 1
#define TROUPE_TILE_ROWS_NARROW 4
#define TROUPE_TILE_TOKENS 4
#include "kernels/cpu/simd_kernels.inl"
}  // namespace

const kernel_table& avx2_kernels() { return simd_table; }

}  // namespace troupe::kernels
