// The SIMD kernels, written once over 256-bit vectors and compiled twice: by kernels_avx2.cpp
// (AVX2 + FMA + F16C; u8 x s8 dot via maddubs/madd) and by kernels_avx512.cpp (the same plus
// AVX-512 VL/VNNI: vpdpbusd, and 32 vector registers for bigger tiles). On Zen 4 512-bit ops
// are double-pumped 256-bit ones, so 256-bit code with VNNI loses nothing on this machine.
//
// Included inside `namespace troupe::kernels { namespace {` only (internal linkage per ISA: no ODR clash).
// The includer defines TROUPE_SIMD_VNNI (0/1), TROUPE_TILE_ROWS and TROUPE_TILE_TOKENS.
//
// Alignment: blocks in GGUF rows are 2-byte aligned at best, so every load is unaligned
// (loadu) and every fp16 scale is read with memcpy.

// Needs (included by the includer, outside any namespace): <immintrin.h>, <algorithm>, <cmath>,
// <cstring>, <limits>, memory/quant_blocks.hpp, kernels/cpu/kernel_table.hpp.

inline float f16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline int32_t hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

// 8 int32 partial sums of u[i] * s[i] (u unsigned bytes, s signed bytes), groups of 4 bytes.
inline __m256i dot_u8s8(__m256i u, __m256i s) {
#if TROUPE_SIMD_VNNI
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
#else
  // maddubs saturates at +-32767: |u| <= 128, |s| <= 127, two products: 32512, no saturation.
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}

// exp(x) for 8 floats: 2^n * p(r), x = n ln2 + r, |r| <= ln2/2; relative error ~2e-7.
// Inputs below -87.3 (and -inf) give 0; above 88.7 give +inf.
inline __m256 exp8(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-87.33654f);
  const __m256 hi = _mm256_set1_ps(88.72283f);
  const __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
  const __m256 over = _mm256_cmp_ps(x, hi, _CMP_GT_OQ);
  x = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  // 2^n in two halves so n = 128 (x near 88.7) does not overflow the exponent field.
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i n1 = _mm256_srai_epi32(ni, 1);
  const __m256i n2 = _mm256_sub_epi32(ni, n1);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, _mm256_set1_epi32(127)), 23));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, _mm256_set1_epi32(127)), 23));
  __m256 res = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
  res = _mm256_andnot_ps(under, res);
  return _mm256_blendv_ps(res, _mm256_set1_ps(std::numeric_limits<float>::infinity()), over);
}

// ---------------------------------------------------------------- activation quantization

// One block of 32 floats -> 32 int8 at qs; returns d (float); *sum gets sum(q).
inline float quantize_block_q8(const float* x, int8_t* qs, int32_t* sum) {
  __m256 v[4];
  __m256 amax = _mm256_setzero_ps();
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int i = 0; i < 4; ++i) {
    v[i] = _mm256_loadu_ps(x + 8 * i);
    amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[i]));
  }
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  const float max_abs = _mm_cvtss_f32(m);
  const float d = max_abs / 127.0f;
  const __m256 id = _mm256_set1_ps(max_abs != 0.0f ? 127.0f / max_abs : 0.0f);
  __m256i q[4];
  for (int i = 0; i < 4; ++i)
    q[i] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[i], id),
                                              _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  *sum = hsum_i32(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
  // packs interleave 128-bit lanes; the permute puts the 8 groups of 4 back in order.
  __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
  p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(qs), p);
  return d;
}

void quantize_row_act(const float* x, uint8_t* y, int64_t k) {
  const int64_t nb = k / 32;
  auto* d = reinterpret_cast<float*>(y + nb * 32);
  for (int64_t b = 0; b < nb; ++b) {
    int32_t sum;
    const float db = quantize_block_q8(x + 32 * b, reinterpret_cast<int8_t*>(y + 32 * b), &sum);
    // Stored as llama.cpp stores them (fp16), so both see the same scale values.
    d[b] = _cvtsh_ss(_cvtss_sh(db, _MM_FROUND_TO_NEAREST_INT));
    d[nb + b] = _cvtsh_ss(_cvtss_sh(db * static_cast<float>(sum), _MM_FROUND_TO_NEAREST_INT));
    std::memcpy(y + nb * 40 + 4 * b, &sum, 4);
  }
}

// ---------------------------------------------------------------- quantized gemm
//
// Batch invariance (invariant 2, "batching is invisible"): every path below computes output
// (row r, token t) with the SAME arithmetic, whatever the number of tokens in the call, the
// tile the token lands in or the rows next to it:
//   isum_b = the exact integer dot of weight block b and activation block b (any order: ints)
//   acc    = fma(float(isum_b), d_w[b] * d_a[b], acc)            b = 0, 1, ..., nb-1
//   macc   = fma(m_w[b], s_a[b], macc)                           (Q4_1 only)
//   y      = acc (+ macc for Q4_1)                               (acc, macc start at +0)
// float chains per output, in block order. (The m * s terms in their own chain, added at the
// end, as llama.cpp's Q4_1 x Q8_1 dot does: against its logits on the oracle prompts this
// gave max |diff| 1.22 instead of 1.93 and 1688 instead of 1685 of 1745 top-1 agreements.) Vector lanes are rows (8 rows per vector), never
// parts of one dot, so no horizontal float sum depends on the tile shape. Paths: rows8 (8 rows
// x up to TROUPE_TILE_TOKENS tokens, weights read as stored: 1 to 7 tokens) and interleaved
// (8 rows repacked once, then any number of tokens: >= 8 tokens). tests/kernels/
// test_batch_invariance.cpp checks equality bit for bit.

inline __m256i unpack_nibbles(const uint8_t* qs) {
  // [raw | raw], the high copy shifted right by 4 (per 32-bit lane: the bits shifted in from
  // the next byte are masked off): elements 0..15 = low nibbles, 16..31 = high nibbles.
  const __m256i both = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
  return _mm256_and_si256(_mm256_srlv_epi32(both, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4)),
                          _mm256_set1_epi8(0x0F));
}

inline __m256i load_i8x32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// Act row t of a tile (kernel_table.hpp): 32-byte aligned qs, float d and s.
struct act_ptrs {
  const __m256i* qs;
  const float* d;
  const float* s;
  const int32_t* sum;
};
inline act_ptrs act_at(const uint8_t* a, uint64_t arb, int t, int64_t nb) {
  const uint8_t* row = a + static_cast<uint64_t>(t) * arb;
  const auto* d = reinterpret_cast<const float*>(row + nb * 32);
  return {reinterpret_cast<const __m256i*>(row), d, d + nb,
          reinterpret_cast<const int32_t*>(row + nb * 40)};
}

// fp16 pair at p (Q4_1's d, m) -> floats in lanes 0, 1.
inline __m128 f16x2_at(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(v)));
}

// Prefetch the same block of the row 16 rows further on (two groups ahead) into L2: with 8
// rows in flight the hardware prefetchers alone leave much of the DRAM bandwidth unused on
// large matrices. Measured on the decode-step bench (96 MB of weights, 1 thread, CPU ms):
// none 14.0, L1 at 8 rows 11.1, L2 at 8 rows 6.5, L2 at 16 rows 5.6, L2 at 32 rows 6.1.
// Integer arithmetic because the address may lie past the matrix (prefetches never fault;
// the pointer is never dereferenced).
inline void prefetch_next_group(const uint8_t* p, uint64_t wrb) {
  _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(p) + 16 * wrb), _MM_HINT_T1);
}

inline uint32_t u32_at(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline uint32_t u16_at(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

// The fp16 scale words of 8 rows' block at `off`, converted once: d of rows 0..7 (Q4_0,
// Q8_0: the first 2 bytes of the block).
inline __m256 load_d8(const uint8_t* const row[8], uint64_t off) {
  __m128i dh = _mm_cvtsi32_si128(static_cast<int>(u16_at(row[0] + off)));
  dh = _mm_insert_epi16(dh, static_cast<int>(u16_at(row[1] + off)), 1);
  dh = _mm_insert_epi16(dh, static_cast<int>(u16_at(row[2] + off)), 2);
  dh = _mm_insert_epi16(dh, static_cast<int>(u16_at(row[3] + off)), 3);
  dh = _mm_insert_epi16(dh, static_cast<int>(u16_at(row[4] + off)), 4);
  dh = _mm_insert_epi16(dh, static_cast<int>(u16_at(row[5] + off)), 5);
  dh = _mm_insert_epi16(dh, static_cast<int>(u16_at(row[6] + off)), 6);
  dh = _mm_insert_epi16(dh, static_cast<int>(u16_at(row[7] + off)), 7);
  return _mm256_cvtph_ps(dh);
}

// Q4_1: (d, m) of 8 rows' block at `off` -> d of rows 0..7 in *d, m of rows 0..7 in *m.
inline void load_dm8(const uint8_t* const row[8], uint64_t off, __m256* d, __m256* m) {
  const __m256 lo = _mm256_cvtph_ps(_mm_setr_epi32(
      static_cast<int>(u32_at(row[0] + off)), static_cast<int>(u32_at(row[1] + off)),
      static_cast<int>(u32_at(row[2] + off)), static_cast<int>(u32_at(row[3] + off))));
  const __m256 hi = _mm256_cvtph_ps(_mm_setr_epi32(
      static_cast<int>(u32_at(row[4] + off)), static_cast<int>(u32_at(row[5] + off)),
      static_cast<int>(u32_at(row[6] + off)), static_cast<int>(u32_at(row[7] + off))));
  // d0 m0 d1 m1 d2 m2 d3 m3 -> d of rows 0..7 and m of rows 0..7, in row order
  const __m256i even = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
  const __m256 lo_p = _mm256_permutevar8x32_ps(lo, even);  // d0 d1 d2 d3 m0 m1 m2 m3
  const __m256 hi_p = _mm256_permutevar8x32_ps(hi, even);  // d4 .. d7 m4 .. m7
  *d = _mm256_permute2f128_ps(lo_p, hi_p, 0x20);
  *m = _mm256_permute2f128_ps(lo_p, hi_p, 0x31);
}

// Float weights against float activations; k need not be a multiple of 8 (scalar tail).
inline __m256 load8_f32(const uint8_t* p) { return _mm256_loadu_ps(reinterpret_cast<const float*>(p)); }
inline __m256 load8_f16(const uint8_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline __m256 load8_bf16(const uint8_t* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
inline float load1_f32(const uint8_t* p) { float x; std::memcpy(&x, p, 4); return x; }
inline float load1_f16(const uint8_t* p) { return f16_at(p); }
inline float load1_bf16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float x;
  std::memcpy(&x, &bits, 4);
  return x;
}

template <int elem_bytes, __m256 (*load8)(const uint8_t*), float (*load1)(const uint8_t*)>
struct float_kernel {
  template <int R, int T>
  static void tile(int64_t k, const uint8_t* w, uint64_t wrb, const uint8_t* a, uint64_t arb,
                   float* y, int64_t ldy) {
    __m256 acc[R][T];
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= k; i += 8) {
      __m256 wv[R];
      for (int r = 0; r < R; ++r) wv[r] = load8(w + r * wrb + i * elem_bytes);
      for (int t = 0; t < T; ++t) {
        const __m256 xv = _mm256_loadu_ps(reinterpret_cast<const float*>(a + t * arb) + i);
        for (int r = 0; r < R; ++r) acc[r][t] = _mm256_fmadd_ps(wv[r], xv, acc[r][t]);
      }
    }
    for (int r = 0; r < R; ++r)
      for (int t = 0; t < T; ++t) {
        float s = hsum(acc[r][t]);
        const float* x = reinterpret_cast<const float*>(a + t * arb);
        for (int64_t j = i; j < k; ++j) s += load1(w + r * wrb + j * elem_bytes) * x[j];
        y[t * ldy + r] = s;
      }
  }
};

// Runs tile<R, T> for a remainder tile of rr <= R rows and tt <= T tokens by instantiating
// every smaller shape (compile-time sizes keep the accumulators in registers).
template <class K, int R, int T>
void tile_dispatch(int rr, int tt, int64_t n, const uint8_t* w, uint64_t wrb, const uint8_t* a,
                   uint64_t arb, float* y, int64_t ldy) {
  if constexpr (R > 1)
    if (rr < R) return tile_dispatch<K, R - 1, T>(rr, tt, n, w, wrb, a, arb, y, ldy);
  if constexpr (T > 1)
    if (tt < T) return tile_dispatch<K, R, T - 1>(rr, tt, n, w, wrb, a, arb, y, ldy);
  K::template tile<R, T>(n, w, wrb, a, arb, y, ldy);
}

// ---- Quantized weights for many tokens: rows interleaved 8 at a time (VNNI: all three
// types; AVX2: the 4-bit ones, see packed_tokens).
// rows8 (below) reduces 8 per-row dot vectors to one vector of 8 row totals per token and
// block. Here 8 weight rows are first repacked so that one vector holds 4 bytes of each of
// the 8 rows: vpdpbusd against a broadcast 4-byte group of one token then adds to 8 rows at
// once and the int32 lanes ARE the rows, with no reduction. The repack (unpack + 8x8 dword
// transpose) costs ~6 ops per row and block and is amortised over the tokens, so this path
// is taken for >= 8 tokens.
constexpr int64_t k_interleave_min_tokens = 8;

// 8x8 transpose of 32-bit elements: out[j] lane r = in[r] lane j.
inline void transpose8x8_epi32(const __m256i in[8], __m256i out[8]) {
  __m256i t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_epi32(in[2 * i], in[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_epi32(in[2 * i], in[2 * i + 1]);
  }
  for (int i = 0; i < 2; ++i) {
    u[4 * i + 0] = _mm256_unpacklo_epi64(t[4 * i + 0], t[4 * i + 2]);
    u[4 * i + 1] = _mm256_unpackhi_epi64(t[4 * i + 0], t[4 * i + 2]);
    u[4 * i + 2] = _mm256_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    u[4 * i + 3] = _mm256_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int j = 0; j < 4; ++j) {
    out[j] = _mm256_permute2x128_si256(u[j], u[4 + j], 0x20);
    out[j + 4] = _mm256_permute2x128_si256(u[j], u[4 + j], 0x31);
  }
}

// Packed 8-row group: per block b, 8 vectors (dword group j of the 8 rows, unsigned bytes),
// then d[8] and m[8] (m only used by Q4_1) of the 8 rows. The weight bytes are made unsigned
// for vpdpbusd by a bias (Q4_0: q in 0..15 means q - 8; Q8_0: q + 128), removed afterwards as
// bias * sum(activation q) per block.
template <class Block>
struct pack8 {
  static constexpr bool is_q4_1 = std::is_same_v<Block, block_q4_1>;
  static constexpr bool is_q8_0 = std::is_same_v<Block, block_q8_0>;
  static constexpr int32_t bias = is_q4_1 ? 0 : is_q8_0 ? 128 : 8;
  static uint64_t bytes(int64_t nb) { return static_cast<uint64_t>(nb) * (256 + 64); }
  static void pack(int64_t nb, const uint8_t* const row[8], uint8_t* out) {
    auto* g = reinterpret_cast<__m256i*>(out);
    auto* dm = reinterpret_cast<float*>(out + nb * 256);
    for (int64_t b = 0; b < nb; ++b) {
      const uint64_t off = static_cast<uint64_t>(b) * sizeof(Block);
      __m256i u[8];
      for (int r = 0; r < 8; ++r) {
        if constexpr (is_q8_0)
          u[r] = _mm256_xor_si256(load_i8x32(row[r] + off + 2), _mm256_set1_epi8(static_cast<char>(0x80)));
        else
          u[r] = unpack_nibbles(row[r] + off + (is_q4_1 ? 4 : 2));
      }
      transpose8x8_epi32(u, g + 8 * b);
      if constexpr (is_q4_1) {
        __m256 d, m;
        load_dm8(row, off, &d, &m);
        _mm256_storeu_ps(dm + 16 * b, d);
        _mm256_storeu_ps(dm + 16 * b + 8, m);
      } else {
        _mm256_storeu_ps(dm + 16 * b, load_d8(row, off));
      }
    }
  }
};

template <class Block, int TT>
inline void packed_tokens(int64_t nb, const uint8_t* packed, const uint8_t* a, uint64_t arb,
                          __m256 out[TT]) {
  using P = pack8<Block>;
  const auto* g = reinterpret_cast<const __m256i*>(packed);
  const auto* dm = reinterpret_cast<const float*>(packed + nb * 256);
  act_ptrs act[TT];
  for (int t = 0; t < TT; ++t) act[t] = act_at(a, arb, t, nb);
  __m256 acc[TT], macc[TT];
  for (int t = 0; t < TT; ++t) acc[t] = macc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    __m256i sum[TT];
    for (int t = 0; t < TT; ++t) {
      if constexpr (P::bias != 0)
        sum[t] = _mm256_set1_epi32(-P::bias * act[t].sum[b]);
      else
        sum[t] = _mm256_setzero_si256();
    }
#if TROUPE_SIMD_VNNI
    for (int j = 0; j < 8; ++j) {
      const __m256i gj = _mm256_load_si256(g + 8 * b + j);
      for (int t = 0; t < TT; ++t) {
        int32_t four;
        std::memcpy(&four, reinterpret_cast<const uint8_t*>(act[t].qs + b) + 4 * j, 4);
        sum[t] = _mm256_dpbusd_epi32(sum[t], gj, _mm256_set1_epi32(four));
      }
    }
#else
    // AVX2: int16 sums of maddubs over the 8 groups, widened once. Only for 4-bit weights:
    // |pair| <= 2 * 15 * 127 = 3810, times 8 groups = 30480 < 32767 (Q8_0's 255 would not fit).
    static_assert(!P::is_q8_0);
    __m256i s16[TT];
    for (int t = 0; t < TT; ++t) s16[t] = _mm256_setzero_si256();
    for (int j = 0; j < 8; ++j) {
      const __m256i gj = _mm256_load_si256(g + 8 * b + j);
      for (int t = 0; t < TT; ++t) {
        int32_t four;
        std::memcpy(&four, reinterpret_cast<const uint8_t*>(act[t].qs + b) + 4 * j, 4);
        s16[t] = _mm256_add_epi16(s16[t], _mm256_maddubs_epi16(gj, _mm256_set1_epi32(four)));
      }
    }
    for (int t = 0; t < TT; ++t)
      sum[t] = _mm256_add_epi32(sum[t], _mm256_madd_epi16(s16[t], _mm256_set1_epi16(1)));
#endif
    const __m256 d = _mm256_loadu_ps(dm + 16 * b);
    for (int t = 0; t < TT; ++t)
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum[t]),
                               _mm256_mul_ps(d, _mm256_broadcast_ss(act[t].d + b)), acc[t]);
    if constexpr (P::is_q4_1) {
      const __m256 m = _mm256_loadu_ps(dm + 16 * b + 8);
      for (int t = 0; t < TT; ++t)
        macc[t] = _mm256_fmadd_ps(m, _mm256_broadcast_ss(act[t].s + b), macc[t]);
    }
  }
  for (int t = 0; t < TT; ++t) out[t] = P::is_q4_1 ? _mm256_add_ps(acc[t], macc[t]) : acc[t];
}

template <class Block>
void gemm_interleaved(int64_t k, const uint8_t* w, uint64_t wrb, int64_t n_rows,
                      const uint8_t* a, uint64_t arb, int64_t n_tokens, float* y, int64_t ldy) {
  const int64_t nb = k / 32;
  thread_local std::vector<uint8_t> buffer;
  const uint64_t need = pack8<Block>::bytes(nb) + 32;
  if (buffer.size() < need) buffer.resize(need);
  uint8_t* packed = buffer.data() + (32 - reinterpret_cast<uintptr_t>(buffer.data()) % 32) % 32;
  for (int64_t r0 = 0; r0 < n_rows; r0 += 8) {
    const int rr = static_cast<int>(std::min<int64_t>(8, n_rows - r0));
    const uint8_t* row[8];
    // Rows past the end repeat the last real row (stay in bounds); their lanes are dropped.
    for (int r = 0; r < 8; ++r) row[r] = w + static_cast<uint64_t>(r0 + std::min(r, rr - 1)) * wrb;
    pack8<Block>::pack(nb, row, packed);
    int64_t t = 0;
    auto emit = [&](const __m256* res, int tt) {
      for (int i = 0; i < tt; ++i) {
        alignas(32) float lanes[8];
        _mm256_store_ps(lanes, res[i]);
        for (int r = 0; r < rr; ++r) y[(t + i) * ldy + r0 + r] = lanes[r];
      }
    };
    for (; t + 4 <= n_tokens; t += 4) {
      __m256 res[4];
      packed_tokens<Block, 4>(nb, packed, a + static_cast<uint64_t>(t) * arb, arb, res);
      emit(res, 4);
    }
    for (; t < n_tokens; ++t) {
      __m256 res[1];
      packed_tokens<Block, 1>(nb, packed, a + static_cast<uint64_t>(t) * arb, arb, res);
      emit(res, 1);
    }
  }
}

// Sums of each of 8 int32 vectors, as the 8 lanes of one vector (d[i] -> lane i). Integer
// adds: exact in any order.
inline __m256i hsum8x8_epi32(__m256i d0, __m256i d1, __m256i d2, __m256i d3, __m256i d4,
                             __m256i d5, __m256i d6, __m256i d7) {
  const __m256i u0 = _mm256_hadd_epi32(_mm256_hadd_epi32(d0, d1), _mm256_hadd_epi32(d2, d3));
  const __m256i u1 = _mm256_hadd_epi32(_mm256_hadd_epi32(d4, d5), _mm256_hadd_epi32(d6, d7));
  return _mm256_add_epi32(_mm256_permute2x128_si256(u0, u1, 0x20),
                          _mm256_permute2x128_si256(u0, u1, 0x31));
}

// ---- Quantized weights for 1 to 7 tokens: 8 rows (rr <= 8 real ones; the others repeat
// row rr-1 so every load stays inside the matrix, and are dropped) x T tokens, weights read
// where they are stored. Per block the 8 rows are unpacked once for the T tokens; per token
// the 8 row dots are reduced to one vector of row totals (lanes = rows, as in the interleaved
// path) so the scale work is one cvt/mul/fma per 8 rows, in the order of the contract above.
template <class Block, int T>
void rows8(int rr, int64_t nb, const uint8_t* w, uint64_t wrb, const uint8_t* a, uint64_t arb,
           float* y, int64_t ldy) {
  using P = pack8<Block>;
  const uint8_t* row[8];
  for (int r = 0; r < 8; ++r) row[r] = w + static_cast<uint64_t>(std::min(r, rr - 1)) * wrb;
  act_ptrs act[T];
  for (int t = 0; t < T; ++t) act[t] = act_at(a, arb, t, nb);
  __m256 acc[T], macc[T];
  for (int t = 0; t < T; ++t) acc[t] = macc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint64_t off = static_cast<uint64_t>(b) * sizeof(Block);
    __m256i wq[8];
    for (int r = 0; r < 8; ++r) {
      prefetch_next_group(row[r] + off, wrb);
      if constexpr (P::is_q8_0)
        wq[r] = load_i8x32(row[r] + off + 2);
      else
        wq[r] = unpack_nibbles(row[r] + off + (P::is_q4_1 ? 4 : 2));
    }
    __m256 d, m;
    if constexpr (P::is_q4_1)
      load_dm8(row, off, &d, &m);
    else
      d = load_d8(row, off);
    for (int t = 0; t < T; ++t) {
      const __m256i aq = _mm256_load_si256(act[t].qs + b);
      __m256i isum;
      if constexpr (!TROUPE_SIMD_VNNI && !P::is_q8_0) {
        // AVX2, 4-bit weights: reduce the int16 maddubs pairs of the 8 rows with int16 hadds
        // (a row's 16 products per 128-bit half sum to <= 16 * 15 * 127 = 30480: no overflow),
        // widening once: 7 hadds + 2 converts per 8 rows instead of 8 madds + a 32-bit tree.
        __m256i h[8];
        for (int r = 0; r < 8; ++r) h[r] = _mm256_maddubs_epi16(wq[r], aq);
        const __m256i h0 = _mm256_hadd_epi16(_mm256_hadd_epi16(h[0], h[1]), _mm256_hadd_epi16(h[2], h[3]));
        const __m256i h1 = _mm256_hadd_epi16(_mm256_hadd_epi16(h[4], h[5]), _mm256_hadd_epi16(h[6], h[7]));
        const __m256i rows16 = _mm256_hadd_epi16(h0, h1);  // per 128-bit half: rows 0..7
        isum = _mm256_add_epi32(_mm256_cvtepi16_epi32(_mm256_castsi256_si128(rows16)),
                                _mm256_cvtepi16_epi32(_mm256_extracti128_si256(rows16, 1)));
      } else {
        __m256i p[8];
        for (int r = 0; r < 8; ++r) {
          if constexpr (P::is_q8_0)  // w . a = |w| . (a * sign(w)): unsigned x signed form
            p[r] = dot_u8s8(_mm256_abs_epi8(wq[r]), _mm256_sign_epi8(aq, wq[r]));
          else
            p[r] = dot_u8s8(wq[r], aq);
        }
        isum = hsum8x8_epi32(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]);
      }
      if constexpr (P::is_q8_0 == false && P::is_q4_1 == false)  // Q4_0: (q - 8) . a
        isum = _mm256_sub_epi32(isum, _mm256_set1_epi32(8 * act[t].sum[b]));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum),
                               _mm256_mul_ps(d, _mm256_broadcast_ss(act[t].d + b)), acc[t]);
      if constexpr (P::is_q4_1)
        macc[t] = _mm256_fmadd_ps(m, _mm256_broadcast_ss(act[t].s + b), macc[t]);
    }
  }
  for (int t = 0; t < T; ++t) {
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, P::is_q4_1 ? _mm256_add_ps(acc[t], macc[t]) : acc[t]);
    for (int r = 0; r < rr; ++r) y[t * ldy + r] = lanes[r];
  }
}

template <class Block, int T>
void rows8_dispatch(int tt, int rr, int64_t nb, const uint8_t* w, uint64_t wrb, const uint8_t* a,
                    uint64_t arb, float* y, int64_t ldy) {
  if constexpr (T > 1)
    if (tt < T) return rows8_dispatch<Block, T - 1>(tt, rr, nb, w, wrb, a, arb, y, ldy);
  rows8<Block, T>(rr, nb, w, wrb, a, arb, y, ldy);
}

// gemm_fn for quantized weights (act rows). Token tiles outer, rows inner: a token tile's
// activations stay in L1 while the task's (<= 64) weight rows stream through it.
template <class Block>
void gemm_quantized(int64_t k, const uint8_t* w, uint64_t wrb, int64_t n_rows, const uint8_t* a,
                    uint64_t arb, int64_t n_tokens, float* y, int64_t ldy) {
  const int64_t nb = k / 32;
  if constexpr (TROUPE_SIMD_VNNI || !pack8<Block>::is_q8_0) {
    if (n_tokens >= k_interleave_min_tokens) {
      gemm_interleaved<Block>(k, w, wrb, n_rows, a, arb, n_tokens, y, ldy);
      return;
    }
  }
  constexpr int T = TROUPE_TILE_TOKENS;
  for (int64_t t = 0; t < n_tokens; t += T) {
    const int tt = static_cast<int>(std::min<int64_t>(T, n_tokens - t));
    for (int64_t r = 0; r < n_rows; r += 8) {
      const int rr = static_cast<int>(std::min<int64_t>(8, n_rows - r));
      rows8_dispatch<Block, T>(tt, rr, nb, w + r * wrb, wrb, a + t * arb, arb, y + t * ldy + r, ldy);
    }
  }
}

// gemm_fn for float weights. Each output is one 8-lane fma chain over k, one hsum and a
// scalar tail, whatever the tile shape: batch invariant as it stands.
template <class K>
void gemm_float(int64_t k, const uint8_t* w, uint64_t wrb, int64_t n_rows, const uint8_t* a,
                uint64_t arb, int64_t n_tokens, float* y, int64_t ldy) {
  constexpr int R = TROUPE_TILE_ROWS, T = TROUPE_TILE_TOKENS;
  if (n_tokens == 1) {
    // matvec: the widest row tile for memory-level parallelism (no token reuse to exploit)
    for (int64_t r = 0; r < n_rows; r += 2 * R) {
      const int rr = static_cast<int>(std::min<int64_t>(2 * R, n_rows - r));
      tile_dispatch<K, 2 * R, 1>(rr, 1, k, w + r * wrb, wrb, a, arb, y + r, ldy);
    }
    return;
  }
  for (int64_t t = 0; t < n_tokens; t += T) {
    const int tt = static_cast<int>(std::min<int64_t>(T, n_tokens - t));
    for (int64_t r = 0; r < n_rows; r += R) {
      const int rr = static_cast<int>(std::min<int64_t>(R, n_rows - r));
      tile_dispatch<K, R, T>(rr, tt, k, w + r * wrb, wrb, a + t * arb, arb, y + t * ldy + r, ldy);
    }
  }
}

// ---------------------------------------------------------------- element-wise

void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    acc = _mm256_fmadd_ps(v, v, acc);
  }
  float sum = hsum(acc);
  for (; i < n; ++i) sum += x[i] * x[i];
  const float scale = 1.0f / std::sqrt(sum / static_cast<float>(n) + eps);
  const __m256 sv = _mm256_set1_ps(scale);
  for (i = 0; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), sv),
                                          _mm256_loadu_ps(w + i)));
  for (; i < n; ++i) y[i] = x[i] * scale * w[i];
}

void silu_mul(const float* gate, const float* up, float* y, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 neg = _mm256_set1_ps(-0.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 g = _mm256_loadu_ps(gate + i);
    const __m256 e = exp8(_mm256_xor_ps(g, neg));
    _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, e)),
                                          _mm256_loadu_ps(up + i)));
  }
  for (; i < n; ++i) y[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void softmax(float* x, int64_t n) {
  float max = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) max = std::max(max, x[i]);
  const __m256 mv = _mm256_set1_ps(max);
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv));
    _mm256_storeu_ps(x + i, e);
    acc = _mm256_add_ps(acc, e);
  }
  float sum = hsum(acc);
  for (; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  const __m256 inv = _mm256_set1_ps(1.0f / sum);
  for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
  for (; i < n; ++i) x[i] *= 1.0f / sum;
}

// ---------------------------------------------------------------- attention

// Online softmax over chunks of 16 positions of one sequence (flash-decoding style, one pass):
// scores of a chunk, rescale the running sum/accumulator by exp(old_max - new_max), add
// exp(s - max) * V. A query's arithmetic depends only on its own position, never on the
// other queries of its tile nor on the page size (tests/kernels/test_batch_invariance.cpp).
// Sum of each of 8 vectors, as the 8 lanes of one vector (d[i] -> lane i).
inline __m256 hsum8x8(const __m256 d[8]) {
  const __m256 t0 = _mm256_hadd_ps(d[0], d[1]);
  const __m256 t1 = _mm256_hadd_ps(d[2], d[3]);
  const __m256 t2 = _mm256_hadd_ps(d[4], d[5]);
  const __m256 t3 = _mm256_hadd_ps(d[6], d[7]);
  const __m256 u0 = _mm256_hadd_ps(t0, t1);  // lanes: 0 1 2 3 (low halves) | 0 1 2 3 (high)
  const __m256 u1 = _mm256_hadd_ps(t2, t3);  // lanes: 4 5 6 7 (low halves) | 4 5 6 7 (high)
  return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

// One tile: the K and V rows of each chunk of 16 positions (this kv head) are converted to
// float once into an L1-resident buffer and then used by every query of the tile; scores are computed 8
// positions at a time and reduced with hsum8x8 (no horizontal sum per position); each query
// keeps its online-softmax state (max, sum, accumulator) in a small per-thread array.
void attention_tile_simd(const attention_tile& a) {
  const int32_t hd = a.head_dim, bs = a.block_size;
  const int nv = hd / 8;
  const int32_t nq = a.n_tok * a.n_group;
  thread_local std::vector<float> work;
  // The online softmax steps over chunks of k_chunk positions, the same for every page size
  // (pages of 8, 16 or 32 give the same bits): rows are gathered from their pages per position.
  constexpr int32_t k_chunk = 16;
  const size_t need = static_cast<size_t>(2 * k_chunk * hd + nq * (2 * hd + 2) + k_chunk + 8);
  if (work.size() < need) work.resize(need);
  float* kbuf = work.data();
  float* vbuf = kbuf + k_chunk * hd;
  float* qsc = vbuf + k_chunk * hd;     // [nq][hd] scaled queries
  float* acc = qsc + nq * hd;           // [nq][hd]
  float* run_max = acc + nq * hd;       // [nq]
  float* run_sum = run_max + nq;        // [nq]
  float* s = run_sum + nq;              // [k_chunk + 8] scores of one chunk
  int32_t max_pos = 0;
  for (int32_t i = 0; i < a.n_tok; ++i) max_pos = std::max(max_pos, a.positions[i]);
  const __m256 scale = _mm256_set1_ps(a.scale);
  for (int32_t i = 0; i < a.n_tok; ++i)
    for (int32_t g = 0; g < a.n_group; ++g) {
      const int32_t qi = i * a.n_group + g;
      const float* q = a.q + i * a.tok_stride + static_cast<int64_t>(g) * hd;
      for (int j = 0; j < nv; ++j) {
        _mm256_storeu_ps(qsc + qi * hd + 8 * j, _mm256_mul_ps(_mm256_loadu_ps(q + 8 * j), scale));
        _mm256_storeu_ps(acc + qi * hd + 8 * j, _mm256_setzero_ps());
      }
      run_max[qi] = -std::numeric_limits<float>::infinity();
      run_sum[qi] = 0.0f;
    }
  const int32_t n_chunks = max_pos / k_chunk + 1;
  for (int32_t c = 0; c < n_chunks; ++c) {
    const int32_t p0 = c * k_chunk;
    const int32_t rows = std::min(k_chunk, max_pos + 1 - p0);
    int32_t page = p0 / bs, slot = p0 % bs;  // stepped, not divided, per row
    for (int32_t p = 0; p < rows; ++p) {
      const int64_t base =
          ((static_cast<int64_t>(a.block_table[page]) * a.n_head_kv + a.kv_head) * bs + slot) * hd;
      for (int j = 0; j < nv; ++j) {
        const int64_t o = 8 * j;
        _mm256_storeu_ps(kbuf + p * hd + o, load8_f16(reinterpret_cast<const uint8_t*>(a.k_pages + base + o)));
        _mm256_storeu_ps(vbuf + p * hd + o, load8_f16(reinterpret_cast<const uint8_t*>(a.v_pages + base + o)));
      }
      if (++slot == bs) {
        slot = 0;
        ++page;
      }
    }
    for (int32_t i = 0; i < a.n_tok; ++i) {
      const int32_t count = std::min(k_chunk, a.positions[i] + 1 - p0);
      if (count <= 0) continue;
      for (int32_t g = 0; g < a.n_group; ++g) {
        const int32_t qi = i * a.n_group + g;
        const float* qv = qsc + qi * hd;
        for (int32_t p = 0; p < count; p += 8) {
          __m256 d[8];
          for (int pp = 0; pp < 8; ++pp) d[pp] = _mm256_setzero_ps();
          // Lanes p+pp >= count stay 0 and are never read (only s[0, count) is used).
          const int valid = std::min(8, count - p);
          if (valid == 8) {
            for (int j = 0; j < nv; ++j) {
              const __m256 qj = _mm256_loadu_ps(qv + 8 * j);
              for (int pp = 0; pp < 8; ++pp)
                d[pp] = _mm256_fmadd_ps(qj, _mm256_loadu_ps(kbuf + (p + pp) * hd + 8 * j), d[pp]);
            }
          } else {
            for (int j = 0; j < nv; ++j) {
              const __m256 qj = _mm256_loadu_ps(qv + 8 * j);
              for (int pp = 0; pp < valid; ++pp)
                d[pp] = _mm256_fmadd_ps(qj, _mm256_loadu_ps(kbuf + (p + pp) * hd + 8 * j), d[pp]);
            }
          }
          _mm256_storeu_ps(s + p, hsum8x8(d));
        }
        float chunk_max = -std::numeric_limits<float>::infinity();
        for (int32_t p = 0; p < count; ++p) chunk_max = std::max(chunk_max, s[p]);
        const float new_max = std::max(run_max[qi], chunk_max);
        const float correction = std::exp(run_max[qi] - new_max);  // 0 on the first chunk
        run_max[qi] = new_max;
        const __m256 mv = _mm256_set1_ps(new_max);
        __m256 sum8 = _mm256_setzero_ps();
        int32_t p = 0;
        for (; p + 8 <= count; p += 8) {
          const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(s + p), mv));
          _mm256_storeu_ps(s + p, e);
          sum8 = _mm256_add_ps(sum8, e);
        }
        float chunk_sum = hsum(sum8);
        for (; p < count; ++p) {
          s[p] = std::exp(s[p] - new_max);
          chunk_sum += s[p];
        }
        run_sum[qi] = run_sum[qi] * correction + chunk_sum;
        float* ac = acc + qi * hd;
        const __m256 cv = _mm256_set1_ps(correction);
        for (int j0 = 0; j0 < nv; j0 += 8) {  // 8 accumulator vectors at a time in registers
          const int jn = std::min(8, nv - j0);
          __m256 r[8];
          for (int j = 0; j < 8; ++j)
            r[j] = j < jn ? _mm256_mul_ps(_mm256_loadu_ps(ac + 8 * (j0 + j)), cv) : _mm256_setzero_ps();
          if (jn == 8) {
            for (int32_t pp = 0; pp < count; ++pp) {
              const __m256 pv = _mm256_set1_ps(s[pp]);
              const float* vr = vbuf + pp * hd + 8 * j0;
              for (int j = 0; j < 8; ++j) r[j] = _mm256_fmadd_ps(pv, _mm256_loadu_ps(vr + 8 * j), r[j]);
            }
          } else {
            for (int32_t pp = 0; pp < count; ++pp) {
              const __m256 pv = _mm256_set1_ps(s[pp]);
              const float* vr = vbuf + pp * hd + 8 * j0;
              for (int j = 0; j < jn; ++j) r[j] = _mm256_fmadd_ps(pv, _mm256_loadu_ps(vr + 8 * j), r[j]);
            }
          }
          for (int j = 0; j < 8; ++j)
            if (j < jn) _mm256_storeu_ps(ac + 8 * (j0 + j), r[j]);
        }
      }
    }
  }
  for (int32_t i = 0; i < a.n_tok; ++i)
    for (int32_t g = 0; g < a.n_group; ++g) {
      const int32_t qi = i * a.n_group + g;
      float* out = a.out + i * a.tok_stride + static_cast<int64_t>(g) * hd;
      const __m256 inv = _mm256_set1_ps(1.0f / run_sum[qi]);
      for (int j = 0; j < nv; ++j)
        _mm256_storeu_ps(out + 8 * j, _mm256_mul_ps(_mm256_loadu_ps(acc + qi * hd + 8 * j), inv));
    }
}

// head_dim not a multiple of 8 goes to the reference.
void attention(const attention_tile& a) {
  if (a.head_dim % 8 != 0) {
    reference_kernels().attention(a);
    return;
  }
  attention_tile_simd(a);
}

const kernel_table simd_table = {
    .name = TROUPE_SIMD_NAME,
    .quantize_row_act = &quantize_row_act,
    .gemm_f32 = &gemm_float<float_kernel<4, &load8_f32, &load1_f32>>,
    .gemm_f16 = &gemm_float<float_kernel<2, &load8_f16, &load1_f16>>,
    .gemm_bf16 = &gemm_float<float_kernel<2, &load8_bf16, &load1_bf16>>,
    .gemm_q4_0 = &gemm_quantized<block_q4_0>,
    .gemm_q4_1 = &gemm_quantized<block_q4_1>,
    .gemm_q8_0 = &gemm_quantized<block_q8_0>,
    .rms_norm = &rms_norm,
    .silu_mul = &silu_mul,
    .softmax = &softmax,
    .attention = &attention,
};
