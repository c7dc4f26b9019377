// The AVX-512 fast-attention tile kernel: 16 query rows per zmm for prefill tiles (3 x 16 rows x
// 8 keys of scores in registers), 4 per xmm for decode tasks, zmm head-dim vectors (6 rows x 64
// dims) for the weighted sum of V. The body is fast_attention_simd.inl.
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
  using v = __m512;
  static constexpr int W = 16, NR = 3, KC = 8;
  static v zero() { return _mm512_setzero_ps(); }
  static v set1(float x) { return _mm512_set1_ps(x); }
  static v load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, v x) { _mm512_storeu_ps(p, x); }
  static v fma(v a, v b, v c) { return _mm512_fmadd_ps(a, b, c); }
  static v fnma(v a, v b, v c) { return _mm512_fnmadd_ps(a, b, c); }
  static v add(v a, v b) { return _mm512_add_ps(a, b); }
  static v sub(v a, v b) { return _mm512_sub_ps(a, b); }
  static v mul(v a, v b) { return _mm512_mul_ps(a, b); }
  static v max(v a, v b) { return _mm512_max_ps(a, b); }
  static v round(v x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static v pow2(v n) {
    return _mm512_castsi512_ps(
        _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23));
  }
  static v keep_ge(v a, v b, v x, v fill) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_GE_OQ), fill, x);
  }
  static v keep_eq(v a, v b, v x, v fill) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ), fill, x);
  }
};

struct row_narrow {
  using v = __m128;
  static constexpr int W = 4, NR = 1, KC = 16;
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
  using v = __m512;
  static constexpr int W = 16, MR = 6;
  static v zero() { return _mm512_setzero_ps(); }
  static v set1(float x) { return _mm512_set1_ps(x); }
  static v load(const float* p) { return _mm512_loadu_ps(p); }
  static v load_f16(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static void store(float* p, v x) { _mm512_storeu_ps(p, x); }
  static v fma(v a, v b, v c) { return _mm512_fmadd_ps(a, b, c); }
  static v mul(v a, v b) { return _mm512_mul_ps(a, b); }
  static v div(v a, v b) { return _mm512_div_ps(a, b); }
};

#include "kernels/cpu/fast_attention_simd.inl"

}  // namespace

int64_t fast_attention_scratch_floats_avx512(int32_t n_group, int32_t head_dim) {
  return scratch_floats(n_group, head_dim);
}

void fast_attention_tile_avx512(const attention_tile& a, float* scratch) { run_task(a, scratch); }

}  // namespace troupe::kernels
