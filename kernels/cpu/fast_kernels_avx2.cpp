// The AVX2 variant of the fast kernels (fast_matmul.hpp), the floor for x86-64 machines without
// AVX-512: a 16-row panel as two halves of 8 ymm lanes; vpmaddwd + vpaddd give the same exact
// integer block sums as vpdpwssd, and the float epilogue is the reference's, lane by lane.
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

float hmax8(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

int32_t hsum8_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

void quantize_row(const float* x, uint8_t* y, int64_t k) {
  const int64_t nb = k / 32;
  auto* q = reinterpret_cast<int16_t*>(y);
  auto* d = reinterpret_cast<float*>(y + 2 * k);
  float* s = d + nb;
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int64_t b = 0; b < nb; ++b) {
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps();
    for (int i = 0; i < 4; ++i) {
      v[i] = _mm256_loadu_ps(x + 32 * b + 8 * i);
      amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[i]));
    }
    const float m = hmax8(amax);
    const float db = m / 32767.0f;
    const __m256 id = _mm256_set1_ps(m != 0.0f ? 32767.0f / m : 0.0f);
    __m256i qi[4];
    for (int i = 0; i < 4; ++i) qi[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], id));
    // packs_epi32 interleaves 128-bit lanes; the permute restores element order.
    __m256i p0 = _mm256_permute4x64_epi64(_mm256_packs_epi32(qi[0], qi[1]), 0xD8);
    __m256i p1 = _mm256_permute4x64_epi64(_mm256_packs_epi32(qi[2], qi[3]), 0xD8);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + 32 * b), p0);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + 32 * b + 16), p1);
    const int32_t sum = hsum8_i32(
        _mm256_add_epi32(_mm256_add_epi32(qi[0], qi[1]), _mm256_add_epi32(qi[2], qi[3])));
    d[b] = db;
    s[b] = db * static_cast<float>(sum);
  }
}

// Half h (rows 8h..8h+7) of one panel x T tokens; rows: valid rows of this half (0..8).
template <int T, bool Q4>
void half_tile(const uint8_t* panel, int h, int64_t nb, uint64_t bb, const uint8_t* a,
               uint64_t arb, int64_t k, float* y, int64_t ldy, int rows) {
  const int16_t* xq[T];
  const float* xd[T];
  for (int t = 0; t < T; ++t) {
    xq[t] = reinterpret_cast<const int16_t*>(a + static_cast<uint64_t>(t) * arb);
    xd[t] = reinterpret_cast<const float*>(a + static_cast<uint64_t>(t) * arb + 2 * k);
  }
  __m256 facc[T];
  for (int t = 0; t < T; ++t) facc[t] = _mm256_setzero_ps();
  const __m256i low4 = _mm256_set1_epi16(0x0F);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* rec = panel + bb * static_cast<uint64_t>(b);
    __m256i iacc[T];
    for (int t = 0; t < T; ++t) iacc[t] = _mm256_setzero_si256();
    __m256 dw, mw = _mm256_setzero_ps();
    if constexpr (Q4) {
      for (int c = 0; c < 8; ++c) {
        const __m256i v = _mm256_cvtepu8_epi16(
            _mm_load_si128(reinterpret_cast<const __m128i*>(rec + 32 * c + 16 * h)));
        const __m256i wa = _mm256_and_si256(v, low4);
        const __m256i wb = _mm256_srli_epi16(v, 4);
        for (int t = 0; t < T; ++t) {
          const int16_t* xp = xq[t] + 32 * b + 4 * c;
          iacc[t] = _mm256_add_epi32(iacc[t], _mm256_madd_epi16(wa, _mm256_set1_epi32(load_pair(xp))));
          iacc[t] = _mm256_add_epi32(iacc[t], _mm256_madd_epi16(wb, _mm256_set1_epi32(load_pair(xp + 2))));
        }
      }
      dw = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(rec + 256 + 16 * h)));
      mw = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(rec + 288 + 16 * h)));
    } else {
      for (int i = 0; i < 16; ++i) {
        const __m256i wv = _mm256_cvtepi8_epi16(
            _mm_load_si128(reinterpret_cast<const __m128i*>(rec + 32 * i + 16 * h)));
        for (int t = 0; t < T; ++t)
          iacc[t] = _mm256_add_epi32(
              iacc[t], _mm256_madd_epi16(wv, _mm256_set1_epi32(load_pair(xq[t] + 32 * b + 2 * i))));
      }
      dw = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(rec + 512 + 16 * h)));
    }
    for (int t = 0; t < T; ++t) {
      const __m256 s = _mm256_mul_ps(dw, _mm256_set1_ps(xd[t][b]));
      facc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(iacc[t]), s, facc[t]);
      if constexpr (Q4) facc[t] = _mm256_fmadd_ps(mw, _mm256_set1_ps(xd[t][nb + b]), facc[t]);
    }
  }
  for (int t = 0; t < T; ++t) {
    if (rows == 8) {
      _mm256_storeu_ps(y + t * ldy, facc[t]);
    } else {
      alignas(32) float tmp[8];
      _mm256_store_ps(tmp, facc[t]);
      std::memcpy(y + t * ldy, tmp, sizeof(float) * static_cast<size_t>(rows));
    }
  }
}

constexpr int k_tile_tokens = 4;

template <bool Q4, int T>
void tail_dispatch(int tt, const uint8_t* panel, int h, int64_t nb, uint64_t bb, const uint8_t* a,
                   uint64_t arb, int64_t k, float* y, int64_t ldy, int rows) {
  if constexpr (T > 1)
    if (tt < T) return tail_dispatch<Q4, T - 1>(tt, panel, h, nb, bb, a, arb, k, y, ldy, rows);
  half_tile<T, Q4>(panel, h, nb, bb, a, arb, k, y, ldy, rows);
}

template <bool Q4>
void gemm_kind(const packed_weight& w, int64_t p0, int64_t p1, const uint8_t* a, uint64_t arb,
               int64_t n_tokens, float* y, int64_t ldy) {
  const int64_t nb = w.n_blocks(), k = w.k();
  const uint64_t bb = w.block_bytes();
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t rows = std::min<int64_t>(k_panel_rows, w.n() - p * k_panel_rows);
    for (int h = 0; h < 2; ++h) {
      const int hrows = static_cast<int>(std::clamp<int64_t>(rows - 8 * h, 0, 8));
      if (hrows == 0) continue;
      for (int64_t t0 = 0; t0 < n_tokens; t0 += k_tile_tokens) {
        const int tt = static_cast<int>(std::min<int64_t>(k_tile_tokens, n_tokens - t0));
        tail_dispatch<Q4, k_tile_tokens>(tt, w.panel(p), h, nb, bb,
                                         a + static_cast<uint64_t>(t0) * arb, arb, k,
                                         y + t0 * ldy + p * k_panel_rows + 8 * h, ldy, hrows);
      }
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

const fast_kernel_table k_table{"avx2", quantize_row, gemm};

}  // namespace

const fast_kernel_table& avx2_fast_kernels() { return k_table; }

}  // namespace troupe::kernels
