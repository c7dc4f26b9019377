// The AVX2 + FMA + F16C fast-attention tile kernel: 8 query rows per ymm for prefill tiles
// (2 x 8 rows x 6 keys of scores in registers), 4 per xmm for decode tasks, ymm head-dim vectors
// (2 rows x 32 dims) for the weighted sum of V. The body is fast_attention_simd.inl.
//
// fp-contract off: GCC fuses a*b+c into an fma even at -std=c++20, and whether it does can
// differ between two inlined copies of the same code (decode vs prefill), which would break
// the bit-for-bit batch invariance. Every fma here is an explicit intrinsic.
#pragma GCC optimize("fp-contract=off")
// GCC 12 reports the _mm*_undefined_*() self-initialisations inside its own intrinsic headers
// as (maybe-)uninitialized once inlined at -O3 (a false positive; kernels/CMakeLists.txt notes it
// too).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/fast_attention.hpp"
#include "kernels/cpu/fast_attention_variants.hpp"

namespace troupe::kernels {
namespace {

struct row_wide {
  using v = __m256;
  static constexpr int W = 8, NR = 2, KC = 6;
  static v zero() { return _mm256_setzero_ps(); }
  static v set1(float x) { return _mm256_set1_ps(x); }
  static v load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, v x) { _mm256_storeu_ps(p, x); }
  static v fma(v a, v b, v c) { return _mm256_fmadd_ps(a, b, c); }
  static v fnma(v a, v b, v c) { return _mm256_fnmadd_ps(a, b, c); }
  static v add(v a, v b) { return _mm256_add_ps(a, b); }
  static v sub(v a, v b) { return _mm256_sub_ps(a, b); }
  static v mul(v a, v b) { return _mm256_mul_ps(a, b); }
  static v max(v a, v b) { return _mm256_max_ps(a, b); }
  static v round(v x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static v pow2(v n) {
    return _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
  }
  static v keep_ge(v a, v b, v x, v fill) { return _mm256_blendv_ps(fill, x, _mm256_cmp_ps(a, b, _CMP_GE_OQ)); }
  static v keep_eq(v a, v b, v x, v fill) { return _mm256_blendv_ps(fill, x, _mm256_cmp_ps(a, b, _CMP_EQ_OQ)); }
};

struct row_narrow {
  using v = __m128;
  static constexpr int W = 4, NR = 1, KC = 12;
  static v zero() { return _mm_setzero_ps(); }
  static v set1(float x) { return _mm_set1_ps(x); }
  static v load(const float* p) { return _mm_loadu_ps(p); }
  static void store(float* p, v x) { _mm_storeu_ps(p, x); }
  static v fma(v a, v b, v c) { return _mm_fmadd_ps(a, b, c); }
  static v fnma(v a, v b, v c) { return _mm_fnmadd_ps(a, b, c); }
  static v add(v a, v b) { return _mm_add_ps(a, b); }
  static v sub(v a, v b) { return _mm_sub_ps(a, b); }
  static v mul(v a, v b) { return _mm_mul_ps(a, b); }
  static v max(v a, v b) { return _mm_max_ps(a, b); }
  static v round(v x) { return _mm_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static v pow2(v n) {
    return _mm_castsi128_ps(_mm_slli_epi32(_mm_add_epi32(_mm_cvtps_epi32(n), _mm_set1_epi32(127)), 23));
  }
  static v keep_ge(v a, v b, v x, v fill) { return _mm_blendv_ps(fill, x, _mm_cmp_ps(a, b, _CMP_GE_OQ)); }
  static v keep_eq(v a, v b, v x, v fill) { return _mm_blendv_ps(fill, x, _mm_cmp_ps(a, b, _CMP_EQ_OQ)); }
};

struct dim_vec {
  using v = __m256;
  static constexpr int W = 8, MR = 2;
  static v zero() { return _mm256_setzero_ps(); }
  static v set1(float x) { return _mm256_set1_ps(x); }
  static v load(const float* p) { return _mm256_loadu_ps(p); }
  static v load_f16(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static void store(float* p, v x) { _mm256_storeu_ps(p, x); }
  static v fma(v a, v b, v c) { return _mm256_fmadd_ps(a, b, c); }
  static v mul(v a, v b) { return _mm256_mul_ps(a, b); }
  static v div(v a, v b) { return _mm256_div_ps(a, b); }
};

#include "kernels/cpu/fast_attention_simd.inl"

}  // namespace

int64_t fast_attention_scratch_floats_avx2(int32_t n_group, int32_t head_dim) {
  return scratch_floats(n_group, head_dim);
}

void fast_attention_tile_avx2(const attention_tile& a, float* scratch) { run_task(a, scratch); }

}  // namespace troupe::kernels
