// The SIMD kernels, written once over 256-bit vectors and compiled twice: by kernels_avx2.cpp
// (AVX2 + FMA + F16C; u8 x s8 dot via maddubs/madd) and by kernels_avx512.cpp (the same plus
// AVX-512 VL/VNNI: vpdpbusd, and 32 vector registers for bigger tiles). On Zen 4 512-bit ops
// are double-pumped 256-bit ones, so 256-bit code with VNNI loses nothing on this machine.
//
// Included inside `namespace troupe::kernels { namespace {` only (internal linkage per ISA: no ODR clash).
// The includer defines TROUPE_SIMD_VNNI (0/1), TROUPE_TILE_ROWS and TROUPE_TILE_TOKENS (the
// quantized gemm's tile for many tokens, also the float gemm's), TROUPE_TILE_ROWS_NARROW and
// TROUPE_TILE_TOKENS_NARROW (its tile for <= that many tokens: decode steps).
//
// Alignment: blocks in GGUF rows are 2-byte aligned at best, so every load is unaligned
// (loadu) and every fp16 scale is read with memcpy.

// Needs (included by the includer, outside any namespace): <immintrin.h>, <algorithm>, <cmath>,
// <cstring>, <cstddef>, <limits>, <type_traits>, memory/quant_blocks.hpp,
// kernels/cpu/kernel_table.hpp, kernels/cpu/k_quant_reference.hpp.

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

// ggml_v_expf for 8 floats, bit for bit as ggml_arithmetic.hpp's scalar expf (and ggml's
// AVX-512 code): the same fmas in the same order; the final scaling by 2^n is exact
// (vscalefps where AVX-512 VL is there, two exact power-of-two products otherwise, which
// differ only for subnormal results).
inline __m256 exp8(__m256 x) {
  const __m256 shifter = _mm256_set1_ps(0x1.8p23f);
  const __m256 z = _mm256_fmadd_ps(x, _mm256_set1_ps(0x1.715476p+0f), shifter);
  const __m256 n = _mm256_sub_ps(z, shifter);
  const __m256 b = _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.7f7d1cp-20f),
                                    _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.62e4p-1f), x));
  const __m256 u = _mm256_mul_ps(b, b);
  const __m256 j = _mm256_fmadd_ps(
      _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_set1_ps(0x1.0e4020p-7f), b, _mm256_set1_ps(0x1.573e2ep-5f)),
                      u,
                      _mm256_fmadd_ps(_mm256_set1_ps(0x1.555e66p-3f), b, _mm256_set1_ps(0x1.fffdb6p-2f))),
      u, _mm256_fmadd_ps(_mm256_set1_ps(0x1.ffffecp-1f), b, _mm256_set1_ps(1.0f)));
  const __m256 big = _mm256_cmp_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), n), _mm256_set1_ps(192.0f), _CMP_GT_OQ);
#if TROUPE_SIMD_VNNI
  __m256 res = _mm256_scalef_ps(j, n);
#else
  // |n| <= 192 here (other lanes are replaced below): 2^n as 2^(n/2) * 2^(n - n/2).
  const __m256i ni = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(n, _mm256_set1_ps(-192.0f)), _mm256_set1_ps(192.0f)));
  const __m256i n1 = _mm256_srai_epi32(ni, 1);
  const __m256i n2 = _mm256_sub_epi32(ni, n1);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, _mm256_set1_epi32(127)), 23));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, _mm256_set1_epi32(127)), 23));
  __m256 res = _mm256_mul_ps(_mm256_mul_ps(j, s1), s2);
#endif
  const __m256 alt = _mm256_and_ps(_mm256_cmp_ps(n, _mm256_setzero_ps(), _CMP_GT_OQ),
                                   _mm256_set1_ps(std::numeric_limits<float>::infinity()));
  return _mm256_blendv_ps(res, alt, big);
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
// The order is ggml's x86 vec_dot (ggml_arithmetic.hpp), so that the engine's activations round
// as llama.cpp's do. Per output (row r, token t):
//   lane_l(b) = exact integer dot of elements 4l..4l+3 of weight block b and activation block b
//   acc_l     = fma(d_w[b] * d_a[b], float(lane_l(b)), acc_l)        b = 0, 1, ..., nb-1
//   summs     = summs + m_w[b] * s_a[b]                               (Q4_1 only; exact products)
//   y         = hsum8(acc) + summs
// which is also batch invariant (invariant 2, "batching is invisible"): nothing depends on the
// tile an output lands in (tests/kernels/test_batch_invariance.cpp checks it bit for bit).
// A tile is R rows x T tokens: each weight block is unpacked once for the T tokens.

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

// Blocks with a min (d, m adjacent fp16s at the start): their weights stay unsigned and the
// m * s chain runs beside the lanes.
template <class Block>
constexpr bool is_q4_1_block = std::is_same_v<Block, block_q4_1> || std::is_same_v<Block, block_q5_1>;

// 0x10 in byte j where bit j of the 32-bit little-endian qh at p is set, else 0 (the fifth
// bit of Q5_0/Q5_1 element j).
inline __m256i fifth_bits(const uint8_t* p) {
  uint32_t qh;
  std::memcpy(&qh, p, 4);
  // Byte j <- byte j / 8 of qh, then test bit j % 8.
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(static_cast<int>(qh)),
      _mm256_setr_epi64x(0, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303));
  const __m256i bit = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ULL));
  return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit), _mm256_set1_epi8(0x10));
}

// Weight block as 32 bytes: Q4_1/Q5_1 unsigned (0..15 / 0..31); Q4_0, Q5_0 signed (q - 8,
// q - 16); Q8_0 signed.
template <class Block>
inline __m256i load_weight_block(const uint8_t* blk) {
  if constexpr (std::is_same_v<Block, block_q8_0>)
    return load_i8x32(blk + 2);
  else if constexpr (std::is_same_v<Block, block_q4_1>)
    return unpack_nibbles(blk + 4);
  else if constexpr (std::is_same_v<Block, block_q5_1>)
    return _mm256_or_si256(unpack_nibbles(blk + offsetof(block_q5_1, qs)), fifth_bits(blk + offsetof(block_q5_1, qh)));
  else if constexpr (std::is_same_v<Block, block_q5_0>)
    return _mm256_sub_epi8(_mm256_or_si256(unpack_nibbles(blk + offsetof(block_q5_0, qs)),
                                           fifth_bits(blk + offsetof(block_q5_0, qh))),
                           _mm256_set1_epi8(16));
  else
    return _mm256_sub_epi8(unpack_nibbles(blk + 2), _mm256_set1_epi8(8));
}

// 8 int32 lanes: lane l = sum over bytes 4l..4l+3 of w * a (exact).
template <class Block>
inline __m256i lane_dots(__m256i wq, __m256i aq) {
  if constexpr (is_q4_1_block<Block>)
    return dot_u8s8(wq, aq);
  else  // w . a = |w| . (a * sign(w)): the unsigned x signed form
    return dot_u8s8(_mm256_abs_epi8(wq), _mm256_sign_epi8(aq, wq));
}

// The activation scales of a token tile, transposed once per tile so that one vector load
// gives token t's d (and s) in lane t: tile_scales[b * 16 + t] = d_a[t][b],
// tile_scales[b * 16 + 8 + t] = s_a[t][b].
inline void transpose_tile_scales(const uint8_t* a, uint64_t arb, int tt, int64_t nb,
                                  float* tile_scales) {
  // Lanes past the tile's tokens repeat its last token (their results are never stored).
  for (int t = 0; t < 8; ++t) {
    const act_ptrs act = act_at(a, arb, std::min(t, tt - 1), nb);
    for (int64_t b = 0; b < nb; ++b) {
      tile_scales[b * 16 + t] = act.d[b];
      tile_scales[b * 16 + 8 + t] = act.s[b];
    }
  }
}

// R rows x T tokens. Per block: the T products d_w * d_a of a row come from one multiply
// (tokens in lanes; each product is exact: two fp16 values) and are broadcast per token with
// a permute, so the multiply and add units see one cvt and one fma per (row, token, block);
// the Q4_1 m * s chains run with tokens in lanes too (exact products, same bits as scalar).
template <class Block, int R, int T>
void quant_tile(int rr, int64_t nb, const uint8_t* w, uint64_t wrb, const uint8_t* a,
                uint64_t arb, const float* tile_scales, float* y, int64_t ldy) {
  static_assert(T <= 8);
  const uint8_t* row[R];
  // Rows past the end repeat the last real row (stay in bounds); their outputs are dropped.
  for (int r = 0; r < R; ++r) row[r] = w + static_cast<uint64_t>(std::min(r, rr - 1)) * wrb;
  act_ptrs act[T];
  for (int t = 0; t < T; ++t) act[t] = act_at(a, arb, t, nb);
  __m256 acc[R][T];
  __m256 summs[R];
  for (int r = 0; r < R; ++r) {
    summs[r] = _mm256_setzero_ps();
    for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
  }
  for (int64_t b = 0; b < nb; ++b) {
    const uint64_t off = static_cast<uint64_t>(b) * sizeof(Block);
    const __m256 da = _mm256_loadu_ps(tile_scales + b * 16);
    for (int r = 0; r < R; ++r) {
      const uint8_t* blk = row[r] + off;
      prefetch_next_group(blk, wrb);
      // Q4_1's d and m are adjacent fp16s: one conversion for both.
      const __m128 dm = is_q4_1_block<Block> ? f16x2_at(blk) : _mm_set_ss(f16_at(blk));
      const __m256 dd = _mm256_mul_ps(_mm256_broadcastss_ps(dm), da);
      const __m256i wq = load_weight_block<Block>(blk);
      for (int t = 0; t < T; ++t) {
        const __m256i lanes = lane_dots<Block>(wq, _mm256_load_si256(act[t].qs + b));
        const __m256 d = T == 1 ? dd : _mm256_permutevar8x32_ps(dd, _mm256_set1_epi32(t));
        acc[r][t] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(lanes), acc[r][t]);
      }
      if constexpr (is_q4_1_block<Block>)
        summs[r] = _mm256_fmadd_ps(_mm256_broadcastss_ps(_mm_movehdup_ps(dm)),
                                   _mm256_loadu_ps(tile_scales + b * 16 + 8), summs[r]);
    }
  }
  for (int r = 0; r < rr; ++r) {
    alignas(32) float sm[8];
    _mm256_store_ps(sm, summs[r]);
    for (int t = 0; t < T; ++t) y[t * ldy + r] = hsum(acc[r][t]) + sm[t];
  }
}

template <class Block, int R, int T>
void quant_tile_dispatch(int tt, int rr, int64_t nb, const uint8_t* w, uint64_t wrb,
                         const uint8_t* a, uint64_t arb, const float* tile_scales, float* y,
                         int64_t ldy) {
  if constexpr (T > 1)
    if (tt < T)
      return quant_tile_dispatch<Block, R, T - 1>(tt, rr, nb, w, wrb, a, arb, tile_scales, y, ldy);
  quant_tile<Block, R, T>(rr, nb, w, wrb, a, arb, tile_scales, y, ldy);
}

// gemm_fn for quantized weights (act rows). Token tiles outer, rows inner: a token tile's
// activations stay in L1 while the task's weight rows stream through it.
template <class Block>
void gemm_quantized(int64_t k, const uint8_t* w, uint64_t wrb, int64_t n_rows, const uint8_t* a,
                    uint64_t arb, int64_t n_tokens, float* y, int64_t ldy) {
  const int64_t nb = k / 32;
  constexpr int R = TROUPE_TILE_ROWS, T = TROUPE_TILE_TOKENS;
  thread_local std::vector<float> tile_scales;
  if (tile_scales.size() < static_cast<size_t>(nb * 16)) tile_scales.resize(static_cast<size_t>(nb * 16));
  if (n_tokens <= TROUPE_TILE_TOKENS_NARROW) {
    // Few tokens (decode): more rows per tile share each activation block and its scales.
    constexpr int RN = TROUPE_TILE_ROWS_NARROW, TN = TROUPE_TILE_TOKENS_NARROW;
    transpose_tile_scales(a, arb, static_cast<int>(n_tokens), nb, tile_scales.data());
    for (int64_t r = 0; r < n_rows; r += RN)
      quant_tile_dispatch<Block, RN, TN>(static_cast<int>(n_tokens),
                                         static_cast<int>(std::min<int64_t>(RN, n_rows - r)), nb,
                                         w + r * wrb, wrb, a, arb, tile_scales.data(), y + r, ldy);
    return;
  }
  for (int64_t t = 0; t < n_tokens; t += T) {
    const int tt = static_cast<int>(std::min<int64_t>(T, n_tokens - t));
    transpose_tile_scales(a + t * arb, arb, tt, nb, tile_scales.data());
    for (int64_t r = 0; r < n_rows; r += R) {
      const int rr = static_cast<int>(std::min<int64_t>(R, n_rows - r));
      quant_tile_dispatch<Block, R, T>(tt, rr, nb, w + r * wrb, wrb, a + t * arb, arb,
                                       tile_scales.data(), y + t * ldy + r, ldy);
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

// Scalar on purpose: llama.cpp sums the squares one by one in double, and the order is the
// result (ggml_arithmetic.hpp); 576 adds per token are noise next to the matmuls.
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
  ggml_arith::rms_norm(x, w, y, n, eps);
}

void silu_mul(const float* gate, const float* up, float* y, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 g = _mm256_loadu_ps(gate + i);
    const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), g));
    _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, e)),
                                          _mm256_loadu_ps(up + i)));
  }
  for (; i < n; ++i) y[i] = ggml_arith::silu(gate[i]) * up[i];
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
//
// llama.cpp's non-flash attention with its roundings and summation orders, as the reference
// kernel spells out (reference_kernels.cpp, attention_query): scores from fp16(q) . K in
// tinyBLAS order (prompt tokens) or ggml_vec_dot_f16 order (sampled tokens), softmax with
// ggml's exp and a double sum per 16 values, weights rounded to fp16, then V^T . w in the same
// two orders. 16-lane vectors are pairs of 256-bit halves (lo = lanes 0..7); GCC's
// _mm512_reduce_add_ps is hsum(lo + hi). A query's arithmetic depends only on its own
// position and order flag, never on its tile or the page size.

inline float reduce16(__m256 lo, __m256 hi) { return hsum(_mm256_add_ps(lo, hi)); }

inline __m256 round_fp16(__m256 x) {
  return _mm256_cvtph_ps(_mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT));
}

struct kv_rows {
  const uint16_t* pages;
  const int32_t* block_table;
  int32_t block_size, n_head_kv, kv_head, head_dim;
  const uint8_t* operator()(int32_t p) const {
    const int64_t block = block_table[p / block_size];
    return reinterpret_cast<const uint8_t*>(
        pages + ((block * n_head_kv + kv_head) * block_size + p % block_size) * head_dim);
  }
};

// fp16(q) . k with k already widened to floats. REQUIRES hd % 16 == 0.
inline float score_tinyblas(const float* qh, const float* k, int32_t hd) {
  __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
  for (int32_t c = 0; c < hd; c += 16) {
    lo = _mm256_fmadd_ps(_mm256_loadu_ps(k + c), _mm256_loadu_ps(qh + c), lo);
    hi = _mm256_fmadd_ps(_mm256_loadu_ps(k + c + 8), _mm256_loadu_ps(qh + c + 8), hi);
  }
  return reduce16(lo, hi);
}

inline float score_vec_f16(const float* qh, const float* k, int32_t hd) {
  __m256 lo[4], hi[4];
  for (int j = 0; j < 4; ++j) lo[j] = hi[j] = _mm256_setzero_ps();
  const int32_t np = hd - hd % 64;
  for (int32_t i = 0; i < np; i += 64)
    for (int j = 0; j < 4; ++j) {
      const int32_t c = i + 16 * j;
      lo[j] = _mm256_fmadd_ps(_mm256_loadu_ps(k + c), _mm256_loadu_ps(qh + c), lo[j]);
      hi[j] = _mm256_fmadd_ps(_mm256_loadu_ps(k + c + 8), _mm256_loadu_ps(qh + c + 8), hi[j]);
    }
  const __m256 l01 = _mm256_add_ps(_mm256_add_ps(lo[0], lo[2]), _mm256_add_ps(lo[1], lo[3]));
  const __m256 h01 = _mm256_add_ps(_mm256_add_ps(hi[0], hi[2]), _mm256_add_ps(hi[1], hi[3]));
  double sum = reduce16(l01, h01);
  for (int32_t i = np; i < hd; ++i) sum += static_cast<double>(qh[i] * k[i]);
  return static_cast<float>(sum);
}

// Slot chains of the weighted V sum for G queries at once (each V row widened once for all
// of them): acc[g][slot][d] = sum over p = slot, slot + n_slots, ... < n_pos of
// w[g][p] * V[p][d], in p order. G * CH accumulators stay in registers.
template <int G>
void value_slots(const kv_rows& v_row, float* const w[G], int32_t n_pos, int32_t hd,
                 int n_slots, float* const acc[G]) {
  constexpr int CH = G == 1 ? 8 : G == 2 ? 6 : 4;  // vectors of 8 dims per pass
  const int nv = hd / 8;
  for (int slot = 0; slot < n_slots; ++slot)
    for (int j0 = 0; j0 < nv; j0 += CH) {
      const int jn = std::min(CH, nv - j0);
      __m256 r[G][CH];
      for (int g = 0; g < G; ++g)
        for (int j = 0; j < CH; ++j) r[g][j] = _mm256_setzero_ps();
      for (int32_t p = slot; p < n_pos; p += n_slots) {
        const uint8_t* vr = v_row(p) + 16 * j0;
        __m256 v[CH];
        for (int j = 0; j < CH; ++j) v[j] = j < jn ? load8_f16(vr + 16 * j) : _mm256_setzero_ps();
        for (int g = 0; g < G; ++g) {
          const __m256 wp = _mm256_set1_ps(w[g][p]);
          for (int j = 0; j < CH; ++j) r[g][j] = _mm256_fmadd_ps(v[j], wp, r[g][j]);
        }
      }
      for (int g = 0; g < G; ++g)
        for (int j = 0; j < jn; ++j)
          _mm256_storeu_ps(acc[g] + static_cast<int64_t>(slot) * hd + 8 * (j0 + j), r[g][j]);
    }
}

// Combines one query's slot sums as its order says (64 slots: ggml_vec_dot_f16's pairwise
// reduction of its 4 accumulators first), then reduce16 across the 16 lanes, 8 dims at a time.
void combine_slots(const float* slot_acc, int n_slots, int32_t hd, float* out) {
  for (int32_t c = 0; c < hd; c += 8) {
    auto at = [&](int slot) { return _mm256_loadu_ps(slot_acc + static_cast<int64_t>(slot) * hd + c); };
    __m256 lane[16];
    for (int l = 0; l < 16; ++l)
      lane[l] = n_slots == 16 ? at(l)
                              : _mm256_add_ps(_mm256_add_ps(at(l), at(32 + l)),
                                              _mm256_add_ps(at(16 + l), at(48 + l)));
    __m256 h[8];
    for (int i = 0; i < 8; ++i) h[i] = _mm256_add_ps(lane[i], lane[i + 8]);
    _mm256_storeu_ps(out + c, _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(h[0], h[4]), _mm256_add_ps(h[2], h[6])),
                                            _mm256_add_ps(_mm256_add_ps(h[1], h[5]), _mm256_add_ps(h[3], h[7]))));
  }
}

// The G query heads of one token that share a kv head: every K and V row is read and widened
// once for all of them. Each query's arithmetic is exactly that of a lone query.
template <int G>
void attention_group(const kv_rows& k_row, const kv_rows& v_row, const float* q, float* out,
                     int32_t n_pos, int32_t hd, float scale, bool single) {
  thread_local std::vector<float> work;
  const int n_slots = single ? 64 : 16;
  const int32_t padded = (n_pos + 15) / 16 * 16;
  const size_t per_query = static_cast<size_t>(hd + padded + n_slots * hd);
  const size_t need = static_cast<size_t>(hd) + G * per_query;
  if (work.size() < need) work.resize(need);
  float* kf = work.data();
  float* qh[G];
  float* w[G];
  float* slot_acc[G];
  for (int g = 0; g < G; ++g) {
    qh[g] = kf + hd + g * per_query;
    w[g] = qh[g] + hd;
    slot_acc[g] = w[g] + padded;
    for (int32_t c = 0; c < hd; c += 8)
      _mm256_storeu_ps(qh[g] + c, round_fp16(_mm256_loadu_ps(q + g * hd + c)));
  }
  float max[G];
  for (int g = 0; g < G; ++g) max[g] = -std::numeric_limits<float>::infinity();
  for (int32_t p = 0; p < n_pos; ++p) {
    const uint8_t* kr = k_row(p);
    for (int32_t c = 0; c < hd; c += 8) _mm256_storeu_ps(kf + c, load8_f16(kr + 2 * c));
    for (int g = 0; g < G; ++g) {
      const float sc = single ? score_vec_f16(qh[g], kf, hd) : score_tinyblas(qh[g], kf, hd);
      w[g][p] = sc * scale;
      max[g] = std::max(max[g], w[g][p]);
    }
  }
  for (int g = 0; g < G; ++g) {
    // Softmax over groups of 16 (positions past n_pos are masked: exp(-inf) = 0).
    float* wg = w[g];
    for (int32_t p = n_pos; p < padded; ++p) wg[p] = -std::numeric_limits<float>::infinity();
    const __m256 mv = _mm256_set1_ps(max[g]);
    double sum = 0.0;
    for (int32_t p = 0; p < padded; p += 16) {
      const __m256 lo = exp8(_mm256_sub_ps(_mm256_loadu_ps(wg + p), mv));
      const __m256 hi = exp8(_mm256_sub_ps(_mm256_loadu_ps(wg + p + 8), mv));
      _mm256_storeu_ps(wg + p, lo);
      _mm256_storeu_ps(wg + p + 8, hi);
      sum += reduce16(lo, hi);
    }
    const __m256 inv = _mm256_set1_ps(static_cast<float>(1.0 / sum));
    for (int32_t p = 0; p < padded; p += 8)
      _mm256_storeu_ps(wg + p, round_fp16(_mm256_mul_ps(_mm256_loadu_ps(wg + p), inv)));
  }
  value_slots<G>(v_row, w, n_pos, hd, n_slots, slot_acc);
  for (int g = 0; g < G; ++g) combine_slots(slot_acc[g], n_slots, hd, out + g * hd);
}

void attention_tile_simd(const attention_tile& a) {
  const kv_rows k_row{a.k_pages, a.block_table, a.block_size, a.n_head_kv, a.kv_head, a.head_dim};
  const kv_rows v_row{a.v_pages, a.block_table, a.block_size, a.n_head_kv, a.kv_head, a.head_dim};
  const int32_t hd = a.head_dim;
  for (int32_t i = 0; i < a.n_tok; ++i) {
    const bool single = a.single_token_order != nullptr && a.single_token_order[i] != 0;
    const int32_t n_pos = a.positions[i] + 1;
    const float* q = a.q + i * a.tok_stride;
    float* out = a.out + i * a.tok_stride;
    int32_t g = 0;
    for (; g + 4 <= a.n_group; g += 4)
      attention_group<4>(k_row, v_row, q + g * hd, out + g * hd, n_pos, hd, a.scale, single);
    switch (a.n_group - g) {
      case 3: attention_group<3>(k_row, v_row, q + g * hd, out + g * hd, n_pos, hd, a.scale, single); break;
      case 2: attention_group<2>(k_row, v_row, q + g * hd, out + g * hd, n_pos, hd, a.scale, single); break;
      case 1: attention_group<1>(k_row, v_row, q + g * hd, out + g * hd, n_pos, hd, a.scale, single); break;
      default: break;
    }
  }
}

// head_dim not a multiple of 16 goes to the reference (its tinyBLAS-order condition differs).
void attention(const attention_tile& a) {
  if (a.head_dim % 16 != 0) {
    reference_kernels().attention(a);
    return;
  }
  attention_tile_simd(a);
}

#include "kernels/cpu/k_quant_simd.inl"

const kernel_table simd_table = {
    .name = TROUPE_SIMD_NAME,
    .quantize_row_act = &quantize_row_act,
    .gemm_f32 = &gemm_float<float_kernel<4, &load8_f32, &load1_f32>>,
    .gemm_f16 = &gemm_float<float_kernel<2, &load8_f16, &load1_f16>>,
    .gemm_bf16 = &gemm_float<float_kernel<2, &load8_bf16, &load1_bf16>>,
    .gemm_q4_0 = &gemm_quantized<block_q4_0>,
    .gemm_q4_1 = &gemm_quantized<block_q4_1>,
    .gemm_q8_0 = &gemm_quantized<block_q8_0>,
    .gemm_q5_0 = &gemm_quantized<block_q5_0>,
    .gemm_q5_1 = &gemm_quantized<block_q5_1>,
    .quantize_row_act_k = &k_quant_ref::quantize_row_act_k,  // scalar: once per token, cheap
    .gemm_q4_k = &gemm_k_quant<&dot_q45_k_simd<block_q4_k>>,
    .gemm_q4_k_x8 = &gemm_k_quant<&dot_q4_k_repacked_simd<4>>,
    .gemm_q4_k_x8x4 = &gemm_k_quant<&dot_q4_k_repacked_simd<1>>,
    .gemm_q5_k = &gemm_k_quant<&dot_q45_k_simd<block_q5_k>>,
    .gemm_q6_k = &gemm_k_quant<&dot_q6_k_simd>,
    .rms_norm = &rms_norm,
    .silu_mul = &silu_mul,
    .softmax = &softmax,
    .attention = &attention,
};
