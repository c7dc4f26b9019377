// The SIMD dots of Q4_K, Q5_K and Q6_K weights against Q8_K activations (act_k rows), in the
// order k_quant_reference.hpp describes (llama.cpp's x86 order), over 256-bit vectors.
// Included by simd_kernels.inl (so compiled for AVX2 and for AVX-512), inside
// `namespace troupe::kernels { namespace {`.
//
// Integer part of a chunk: maddubs (unsigned weight x signed activation, pairs of bytes; no
// saturation: 63 * 127 * 2 < 32767) then madd with the chunk's scale broadcast to 16-bit lanes:
// lane l of the result is scale * (elements 4l..4l+3), the reference's lane. Every integer is
// exact, so only the float steps (one fma per lane per block, the final sums) fix the bits,
// and they are the reference's.

struct q8_k_view {
  float d;
  const uint8_t* qs;     // 256 int8
  const uint8_t* bsums;  // 16 int16
};
inline q8_k_view q8_k_at(const uint8_t* row, int64_t i) {
  const uint8_t* blk = row + i * static_cast<int64_t>(sizeof(block_q8_k));
  q8_k_view v;
  std::memcpy(&v.d, blk, 4);
  v.qs = blk + offsetof(block_q8_k, qs);
  v.bsums = blk + offsetof(block_q8_k, bsums);
  return v;
}

inline int16_t bsum_at(const q8_k_view& a, int g) {
  int16_t s;
  std::memcpy(&s, a.bsums + 2 * g, 2);
  return s;
}

// 8 lanes of scale * sum over 4 bytes of u (unsigned) * s (signed). scale16: 16-bit lanes.
inline __m256i scaled_lanes(__m256i u, __m256i s, __m256i scale16) {
  return _mm256_madd_epi16(scale16, _mm256_maddubs_epi16(u, s));
}

// Q4_K and Q5_K: one row of weights against one act_k row.
template <class Block>
float dot_q45_k_simd(int64_t k, const uint8_t* w, const uint8_t* a) {
  constexpr bool is_q5 = std::is_same_v<Block, block_q5_k>;
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  __m256 acc = _mm256_setzero_ps();
  float acc_m[4] = {};
  float summs = 0.0f;
  for (int64_t i = 0; i < k / 256; ++i) {
    const uint8_t* blk = w + i * static_cast<int64_t>(sizeof(Block));
    const q8_k_view act = q8_k_at(a, i);
    const float d = act.d * f16_at(blk + offsetof(Block, d));
    const float dmin = -act.d * f16_at(blk + offsetof(Block, dmin));
    uint8_t sc[8], mn[8];
    for (int s = 0; s < 8; ++s) k_quant_scale_min(blk + offsetof(Block, scales), s, &sc[s], &mn[s]);
    int32_t prod[4];
    for (int l = 0; l < 4; ++l)
      prod[l] = mn[2 * l] * (bsum_at(act, 4 * l) + bsum_at(act, 4 * l + 1)) +
                mn[2 * l + 1] * (bsum_at(act, 4 * l + 2) + bsum_at(act, 4 * l + 3));
    if constexpr (is_q5)
      summs = std::fma(dmin, static_cast<float>(prod[0] + prod[1] + prod[2] + prod[3]), summs);
    else
      for (int l = 0; l < 4; ++l) acc_m[l] = std::fma(dmin, static_cast<float>(prod[l]), acc_m[l]);

    const uint8_t* qs = blk + offsetof(Block, qs);
    __m256i hbits = _mm256_setzero_si256();
    if constexpr (is_q5) hbits = load_i8x32(blk + offsetof(block_q5_k, qh));
    __m256i sumi = _mm256_setzero_si256();
    for (int p = 0; p < 4; ++p) {
      const __m256i bits = load_i8x32(qs + 32 * p);
      __m256i q0 = _mm256_and_si256(bits, low4);
      __m256i q1 = _mm256_and_si256(_mm256_srli_epi16(bits, 4), low4);
      if constexpr (is_q5) {
        // Bit 2p (2p+1) of qh[e] is bit 4 of element e of chunk 2p (2p+1).
        const __m256i one = _mm256_set1_epi8(1);
        const __m256i h0 = _mm256_and_si256(_mm256_srl_epi16(hbits, _mm_cvtsi32_si128(2 * p)), one);
        const __m256i h1 = _mm256_and_si256(_mm256_srl_epi16(hbits, _mm_cvtsi32_si128(2 * p + 1)), one);
        q0 = _mm256_or_si256(q0, _mm256_slli_epi16(h0, 4));
        q1 = _mm256_or_si256(q1, _mm256_slli_epi16(h1, 4));
      }
      const __m256i l0 = scaled_lanes(q0, load_i8x32(act.qs + 64 * p), _mm256_set1_epi16(sc[2 * p]));
      const __m256i l1 = scaled_lanes(q1, load_i8x32(act.qs + 64 * p + 32), _mm256_set1_epi16(sc[2 * p + 1]));
      sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(l0, l1));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
  }
  if constexpr (is_q5) return hsum(acc) + summs;
  return hsum(acc) + ((acc_m[0] + acc_m[2]) + (acc_m[1] + acc_m[3]));
}

float dot_q6_k_simd(int64_t k, const uint8_t* w, const uint8_t* a) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < k / 256; ++i) {
    const uint8_t* blk = w + i * static_cast<int64_t>(sizeof(block_q6_k));
    const q8_k_view act = q8_k_at(a, i);
    const float d = act.d * f16_at(blk + offsetof(block_q6_k, d));
    const auto* scales = reinterpret_cast<const int8_t*>(blk + offsetof(block_q6_k, scales));
    // The -32 offset, per lane: 32 * (bsums[2l] * sc[2l] + bsums[2l+1] * sc[2l+1]).
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(scales)));
    const __m256i offset = _mm256_slli_epi32(_mm256_madd_epi16(load_i8x32(act.bsums), sc16), 5);
    __m256i sumi = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i l0 = load_i8x32(blk + offsetof(block_q6_k, ql) + 64 * h);
      const __m256i l1 = load_i8x32(blk + offsetof(block_q6_k, ql) + 64 * h + 32);
      const __m256i hb = load_i8x32(blk + offsetof(block_q6_k, qh) + 32 * h);
      const __m256i q[4] = {
          _mm256_or_si256(_mm256_and_si256(l0, low4), _mm256_slli_epi16(_mm256_and_si256(hb, _mm256_set1_epi8(0x03)), 4)),
          _mm256_or_si256(_mm256_and_si256(l1, low4), _mm256_slli_epi16(_mm256_and_si256(hb, _mm256_set1_epi8(0x0C)), 2)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low4), _mm256_and_si256(hb, _mm256_set1_epi8(0x30))),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low4),
                          _mm256_srli_epi16(_mm256_and_si256(hb, _mm256_set1_epi8(static_cast<char>(0xC0))), 2)),
      };
      for (int j = 0; j < 4; ++j) {
        const int c = 4 * h + j;  // chunk of 32: 16-groups 2c (first half) and 2c + 1
        const __m256i scale16 = _mm256_setr_m128i(_mm_set1_epi16(scales[2 * c]), _mm_set1_epi16(scales[2 * c + 1]));
        sumi = _mm256_add_epi32(sumi, scaled_lanes(q[j], load_i8x32(act.qs + 32 * c), scale16));
      }
    }
    sumi = _mm256_sub_epi32(sumi, offset);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
  }
  return hsum(acc);
}

// Q4_K in llama.cpp's repacked orders (k_quant_reference.hpp): per step of `pairs` sub-block
// pairs the integer sum S in 8 lanes (exact), reduced to one int, then one fma for S and one
// for the mins. pairs = 4: its gemv; 1: its gemm.
template <int pairs>
float dot_q4_k_repacked_simd(int64_t k, const uint8_t* w, const uint8_t* a) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  float acc = 0.0f, acc_m = 0.0f;
  for (int64_t i = 0; i < k / 256; ++i) {
    const uint8_t* blk = w + i * static_cast<int64_t>(sizeof(block_q4_k));
    const q8_k_view act = q8_k_at(a, i);
    const float d = f16_at(blk + offsetof(block_q4_k, d)) * act.d;
    const float dmin = f16_at(blk + offsetof(block_q4_k, dmin)) * act.d;
    uint8_t sc[8], mn[8];
    for (int s = 0; s < 8; ++s) k_quant_scale_min(blk + offsetof(block_q4_k, scales), s, &sc[s], &mn[s]);
    const uint8_t* qs = blk + offsetof(block_q4_k, qs);
    for (int p0 = 0; p0 < 4; p0 += pairs) {
      __m256i sumi = _mm256_setzero_si256();
      int32_t mins = 0;
      for (int p = p0; p < p0 + pairs; ++p) {
        const __m256i bits = load_i8x32(qs + 32 * p);
        const __m256i q0 = _mm256_and_si256(bits, low4);
        const __m256i q1 = _mm256_and_si256(_mm256_srli_epi16(bits, 4), low4);
        sumi = _mm256_add_epi32(sumi, scaled_lanes(q0, load_i8x32(act.qs + 64 * p), _mm256_set1_epi16(sc[2 * p])));
        sumi = _mm256_add_epi32(sumi, scaled_lanes(q1, load_i8x32(act.qs + 64 * p + 32), _mm256_set1_epi16(sc[2 * p + 1])));
        for (int s = 2 * p; s < 2 * p + 2; ++s) mins += mn[s] * (bsum_at(act, 2 * s) + bsum_at(act, 2 * s + 1));
      }
      acc = std::fma(static_cast<float>(hsum_i32(sumi)), d, acc);
      acc_m = std::fma(static_cast<float>(mins), dmin, acc_m);
    }
  }
  return acc - acc_m;
}

// gemm_fn over act_k rows: one dot per output; weight rows inner so a token's activations stay
// in L1 while the rows stream.
template <float (*dot)(int64_t, const uint8_t*, const uint8_t*)>
void gemm_k_quant(int64_t k, const uint8_t* w, uint64_t wrb, int64_t n_rows, const uint8_t* a,
                  uint64_t arb, int64_t n_tokens, float* y, int64_t ldy) {
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t r = 0; r < n_rows; ++r) y[t * ldy + r] = dot(k, w + r * wrb, a + t * arb);
}
