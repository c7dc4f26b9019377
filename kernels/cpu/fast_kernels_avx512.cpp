// The AVX-512 VNNI variant of the fast kernels (fast_matmul.hpp): one zmm lane per output row
// of a 16-row panel, vpdpwssd for the exact 16-bit integer block sums, then the reference's
// float epilogue (mul, fma, fma) lane by lane -- so every output has the reference's bits.
//
// No shared inline code in this file (everything in the anonymous namespace): an AVX-512 copy
// of a COMDAT helper could be kept by the linker for the whole program.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/fast_kernel_variants.hpp"

namespace troupe::kernels {
namespace {

int32_t load_pair(const int16_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

void quantize_row(const float* x, uint8_t* y, int64_t k) {
  const int64_t nb = k / 32;
  auto* q = reinterpret_cast<int16_t*>(y);
  auto* d = reinterpret_cast<float*>(y + 2 * k);
  float* s = d + nb;
  const __m512 sign = _mm512_set1_ps(-0.0f);
  for (int64_t b = 0; b < nb; ++b) {
    const __m512 v0 = _mm512_loadu_ps(x + 32 * b);
    const __m512 v1 = _mm512_loadu_ps(x + 32 * b + 16);
    const float amax = _mm512_reduce_max_ps(
        _mm512_max_ps(_mm512_andnot_ps(sign, v0), _mm512_andnot_ps(sign, v1)));
    const float db = amax / 32767.0f;
    const __m512 id = _mm512_set1_ps(amax != 0.0f ? 32767.0f / amax : 0.0f);
    // |x * id| <= 32767 * (1 + 2^-23)^2 < 32767.5: the rounded value needs no clamp.
    const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, id));
    const __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, id));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + 32 * b), _mm512_cvtepi32_epi16(q0));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + 32 * b + 16), _mm512_cvtepi32_epi16(q1));
    const int32_t sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
    d[b] = db;
    s[b] = db * static_cast<float>(sum);
  }
}

// One panel (16 rows) x T tokens. rows: how many of the 16 rows exist (masked store).
template <int T, bool Q4>
void panel_tile(const uint8_t* panel, int64_t nb, uint64_t bb, const uint8_t* a, uint64_t arb,
                int64_t k, float* y, int64_t ldy, int rows) {
  const int16_t* xq[T];
  const float* xd[T];
  for (int t = 0; t < T; ++t) {
    xq[t] = reinterpret_cast<const int16_t*>(a + static_cast<uint64_t>(t) * arb);
    xd[t] = reinterpret_cast<const float*>(a + static_cast<uint64_t>(t) * arb + 2 * k);
  }
  __m512 facc[T];
  for (int t = 0; t < T; ++t) facc[t] = _mm512_setzero_ps();
  const __m512i low4 = _mm512_set1_epi16(0x0F);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* rec = panel + bb * static_cast<uint64_t>(b);
    _mm_prefetch(reinterpret_cast<const char*>(rec + 4 * bb), _MM_HINT_T0);
    __m512i iacc[T];
    for (int t = 0; t < T; ++t) iacc[t] = _mm512_setzero_si512();
    __m512 dw, mw = _mm512_setzero_ps();
    if constexpr (Q4) {
#pragma GCC unroll 8
      for (int c = 0; c < 8; ++c) {
        const __m512i v =
            _mm512_cvtepu8_epi16(_mm256_load_si256(reinterpret_cast<const __m256i*>(rec + 32 * c)));
        const __m512i wa = _mm512_and_si512(v, low4);
        const __m512i wb = _mm512_srli_epi16(v, 4);
        for (int t = 0; t < T; ++t) {
          const int16_t* xp = xq[t] + 32 * b + 4 * c;
          iacc[t] = _mm512_dpwssd_epi32(iacc[t], wa, _mm512_set1_epi32(load_pair(xp)));
          iacc[t] = _mm512_dpwssd_epi32(iacc[t], wb, _mm512_set1_epi32(load_pair(xp + 2)));
        }
      }
      dw = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(rec + 256)));
      mw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(rec + 288)));
    } else {
#pragma GCC unroll 16
      for (int i = 0; i < 16; ++i) {
        const __m512i wv =
            _mm512_cvtepi8_epi16(_mm256_load_si256(reinterpret_cast<const __m256i*>(rec + 32 * i)));
        for (int t = 0; t < T; ++t)
          iacc[t] = _mm512_dpwssd_epi32(iacc[t], wv,
                                        _mm512_set1_epi32(load_pair(xq[t] + 32 * b + 2 * i)));
      }
      dw = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(rec + 512)));
    }
    for (int t = 0; t < T; ++t) {
      const __m512 s = _mm512_mul_ps(dw, _mm512_set1_ps(xd[t][b]));
      facc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(iacc[t]), s, facc[t]);
      if constexpr (Q4) facc[t] = _mm512_fmadd_ps(mw, _mm512_set1_ps(xd[t][nb + b]), facc[t]);
    }
  }
  const __mmask16 mask = static_cast<__mmask16>((1u << rows) - 1u);
  for (int t = 0; t < T; ++t) {
    if (rows == 16)
      _mm512_storeu_ps(y + t * ldy, facc[t]);
    else
      _mm512_mask_storeu_ps(y + t * ldy, mask, facc[t]);
  }
}

constexpr int k_tile_tokens = 8;

template <bool Q4, int T>
void tail_dispatch(int tt, const uint8_t* panel, int64_t nb, uint64_t bb, const uint8_t* a,
                   uint64_t arb, int64_t k, float* y, int64_t ldy, int rows) {
  if constexpr (T > 1)
    if (tt < T) return tail_dispatch<Q4, T - 1>(tt, panel, nb, bb, a, arb, k, y, ldy, rows);
  panel_tile<T, Q4>(panel, nb, bb, a, arb, k, y, ldy, rows);
}

template <bool Q4>
void gemm_kind(const packed_weight& w, int64_t p0, int64_t p1, const uint8_t* a, uint64_t arb,
               int64_t n_tokens, float* y, int64_t ldy) {
  const int64_t nb = w.n_blocks(), k = w.k();
  const uint64_t bb = w.block_bytes();
  // Panels outer, tokens inner: a panel's records stay in L1/L2 for every token tile.
  for (int64_t p = p0; p < p1; ++p) {
    const int rows = static_cast<int>(std::min<int64_t>(k_panel_rows, w.n() - p * k_panel_rows));
    for (int64_t t0 = 0; t0 < n_tokens; t0 += k_tile_tokens) {
      const int tt = static_cast<int>(std::min<int64_t>(k_tile_tokens, n_tokens - t0));
      tail_dispatch<Q4, k_tile_tokens>(tt, w.panel(p), nb, bb, a + static_cast<uint64_t>(t0) * arb,
                                       arb, k, y + t0 * ldy + p * k_panel_rows, ldy, rows);
    }
  }
}

void gemm(const packed_weight& w, int64_t p0, int64_t p1, const uint8_t* a, uint64_t arb,
          int64_t n_tokens, float* y, int64_t ldy) {
  if (w.kind() == packed_kind::q4)
    gemm_kind<true>(w, p0, p1, a, arb, n_tokens, y, ldy);
  else
    gemm_kind<false>(w, p0, p1, a, arb, n_tokens, y, ldy);
}

const fast_kernel_table k_table{"avx512", quantize_row, gemm};

}  // namespace

const fast_kernel_table& avx512_fast_kernels() { return k_table; }

}  // namespace troupe::kernels
