// The body of the SIMD fast-attention tile kernels (fast_attention.hpp has the arithmetic they
// implement). Included inside an anonymous namespace by fast_attention_avx512.cpp and
// fast_attention_avx2.cpp, which first define:
//   row_wide, row_narrow  query-row vectors (W = 16 or 8, and 4 lanes): one lane per query
//                         (token, head), so scores, max, exp and the sum l are per lane and
//                         vertical over keys: no horizontal reductions anywhere;
//   dim_vec               head-dim vectors for the weighted sum of V (one query row each).
// Each traits struct gives: v, W, NR, KC (register blocking), zero, set1, load, store, fma
// (a*b+c, one rounding), fnma (c-a*b), add, sub, mul, max, round (to nearest even),
// pow2 (2^n of an integral v), keep_ge(a, b, x, fill) (x in the lanes where a >= b, fill in
// the others) and keep_eq (the same for a == b). dim_vec also gives load_f16 and div.
//
// A task: rows r = token * n_group + head (padded to W by repeating the last row), q * scale
// transposed into qt, then per key tile: widen K (and V, unless a decode task reads V from the
// pages directly), scores (rows x keys), the online softmax step, the weighted V sums.
//
// Invariance rests on three facts, each kept below: (1) a lane's arithmetic does not depend on
// W (every op is lane-wise; row_narrow for decode and row_wide for prefill agree bit for bit),
// (2) register blocking only interleaves independent chains, never reorders one, (3) the file
// is compiled with fp-contract off (the including file's pragma), so no mul/add pair is fused
// differently in different inlined copies.
//
// No std:: code here: this body is compiled with ISA flags, and an inline library function
// instantiated here could be picked by the linker for the rest of the program (COMDAT; see
// shared/notes/amx-bf16-primer.md section 4).

constexpr int32_t key_tile = k_fast_attention_key_tile;
constexpr int32_t query_tokens = k_fast_attention_query_tokens;
constexpr float neg_inf = -__builtin_inff();

inline int32_t min_i32(int32_t a, int32_t b) { return a < b ? a : b; }
inline int32_t max_i32(int32_t a, int32_t b) { return a > b ? a : b; }
inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// Cephes' expf (range reduction by ln 2 in two parts, degree-5 polynomial, ~1 ulp), with x <
// -87 (including -inf) giving +0 rather than a subnormal. Our arguments are always <= 0.
template <class V>
typename V::v exp_lanes(typename V::v x) {
  using v = typename V::v;
  const v lo = V::set1(-87.0f);
  const v xc = V::max(x, lo);
  const v n = V::round(V::mul(xc, V::set1(1.44269504088896341f)));
  v r = V::fnma(n, V::set1(0.693359375f), xc);
  r = V::fnma(n, V::set1(-2.12194440e-4f), r);
  v p = V::set1(1.9875691500e-4f);
  p = V::fma(p, r, V::set1(1.3981999507e-3f));
  p = V::fma(p, r, V::set1(8.3334519073e-3f));
  p = V::fma(p, r, V::set1(4.1665795894e-2f));
  p = V::fma(p, r, V::set1(1.6666665459e-1f));
  p = V::fma(p, r, V::set1(5.0000001201e-1f));
  v y = V::fma(p, V::mul(r, r), r);
  y = V::add(y, V::set1(1.0f));
  y = V::mul(y, V::pow2(n));
  return V::keep_ge(x, lo, y, V::zero());
}

// Scratch of one task (floats; every region a multiple of 16 floats, so 64-byte aligned).
struct task_scratch {
  float* qt;        // [head_dim][mp]: q * scale, transposed (row lanes)
  float* s;         // [key_tile][mp]: scores, then softmax numerators, of one key tile
  float* o;         // [mp][head_dim]: running weighted sums of V
  float* m;         // [mp] running max
  float* l;         // [mp] running sum
  float* alpha;     // [mp] this tile's rescale factor
  float* row_pos;   // [mp] each row's position (exact: positions < 2^24)
  float* kf;        // [key_tile][head_dim] widened K rows of the tile
  float* vf;        // [key_tile][head_dim] widened V rows of the tile
};

int64_t max_rows_padded(int32_t n_group) { return round_up(int64_t{query_tokens} * n_group, 16); }

int64_t scratch_floats(int32_t n_group, int32_t head_dim) {
  const int64_t mp = max_rows_padded(n_group), hd = round_up(head_dim, 16);
  return hd * mp + key_tile * mp + mp * hd + 4 * mp + 2 * key_tile * hd;
}

task_scratch carve(float* base, int32_t n_group, int32_t head_dim) {
  const int64_t mp = max_rows_padded(n_group), hd = round_up(head_dim, 16);
  task_scratch t;
  t.qt = base;
  t.s = t.qt + hd * mp;
  t.o = t.s + key_tile * mp;
  t.m = t.o + mp * hd;
  t.l = t.m + mp;
  t.alpha = t.l + mp;
  t.row_pos = t.alpha + mp;
  t.kf = t.row_pos + mp;
  t.vf = t.kf + key_tile * hd;
  return t;
}

// s[k][r] = sum_d qt[d][r] * kf[k][d] for NR row vectors x KC keys: acc chains over d in order.
template <class V, int HD, int NR, int KC>
void score_block(const float* qt, int64_t mp, const float* kf, int32_t hd, float* s) {
  using v = typename V::v;
  if constexpr (HD != 0) hd = HD;
  v acc[KC][NR];
  for (int k = 0; k < KC; ++k)
    for (int j = 0; j < NR; ++j) acc[k][j] = V::zero();
  for (int32_t d = 0; d < hd; ++d) {
    v qv[NR];
    for (int j = 0; j < NR; ++j) qv[j] = V::load(qt + d * mp + j * V::W);
    for (int k = 0; k < KC; ++k) {
      const v kb = V::set1(kf[k * hd + d]);
      for (int j = 0; j < NR; ++j) acc[k][j] = V::fma(kb, qv[j], acc[k][j]);
    }
  }
  for (int k = 0; k < KC; ++k)
    for (int j = 0; j < NR; ++j) V::store(s + k * mp + j * V::W, acc[k][j]);
}

template <class V, int HD, int NR>
void score_rows(const float* qt, int64_t mp, const float* kf, int32_t nk, int32_t hd, float* s) {
  int32_t k = 0;
  for (; k + V::KC <= nk; k += V::KC) score_block<V, HD, NR, V::KC>(qt, mp, kf + k * hd, hd, s + k * mp);
  for (; k < nk; ++k) score_block<V, HD, NR, 1>(qt, mp, kf + k * hd, hd, s + k * mp);
}

// Scores of all mp rows (nv = mp / W vectors) against the tile's nk keys.
template <class V, int HD>
void scores(const float* qt, int64_t mp, const float* kf, int32_t nk, int32_t hd, float* s) {
  const int64_t nv = mp / V::W;
  int64_t j = 0;
  for (; j + V::NR <= nv; j += V::NR) score_rows<V, HD, V::NR>(qt + j * V::W, mp, kf, nk, hd, s + j * V::W);
  for (; j < nv; ++j) score_rows<V, HD, 1>(qt + j * V::W, mp, kf, nk, hd, s + j * V::W);
}

// Online softmax step of one key tile, per row lane (see fast_attention.hpp): masks keys past
// each row's position, updates m and l, writes the numerators over the scores and alpha.
template <class V>
void softmax_tile(const task_scratch& t, int64_t mp, int32_t k0, int32_t nk) {
  using v = typename V::v;
  for (int64_t j = 0; j < mp; j += V::W) {
    const v pos = V::load(t.row_pos + j);
    v mt = V::set1(neg_inf);
    for (int32_t k = 0; k < nk; ++k) {
      const v sk = V::keep_ge(pos, V::set1(static_cast<float>(k0 + k)), V::load(t.s + k * mp + j),
                              V::set1(neg_inf));
      V::store(t.s + k * mp + j, sk);
      mt = V::max(mt, sk);
    }
    const v mo = V::load(t.m + j);
    const v mn = V::max(mo, mt);
    const v alpha = V::keep_eq(mn, mo, V::set1(1.0f), exp_lanes<V>(V::sub(mo, mn)));
    v l = V::mul(V::load(t.l + j), alpha);
    for (int32_t k = 0; k < nk; ++k) {
      const v p = exp_lanes<V>(V::sub(V::load(t.s + k * mp + j), mn));
      V::store(t.s + k * mp + j, p);
      l = V::add(l, p);
    }
    V::store(t.m + j, mn);
    V::store(t.l + j, l);
    V::store(t.alpha + j, alpha);
  }
}

// o[r] = o[r] * alpha[r], then o[r] = fma(p[k][r], vf[k], o[r]) for k < n_keys, for MR rows
// starting at r0 and DC dim vectors starting at dim c0.
// V rows come widened (t.vf) or, with F16, straight from the pages through vrows (decode: a
// row serves only n_group queries, so widening it into scratch first costs more than it saves).
template <int HD, bool F16, int MR, int DC>
void value_block(const task_scratch& t, const uint16_t* const* vrows, int64_t mp, int32_t hd,
                 int32_t r0, int32_t c0, int32_t n_keys) {
  using D = dim_vec;
  if constexpr (HD != 0) hd = HD;
  using v = D::v;
  v acc[MR][DC];
  for (int i = 0; i < MR; ++i) {
    const v a = D::set1(t.alpha[r0 + i]);
    for (int c = 0; c < DC; ++c) acc[i][c] = D::mul(D::load(t.o + (r0 + i) * hd + c0 + c * D::W), a);
  }
  for (int32_t k = 0; k < n_keys; ++k) {
    v vv[DC];
    for (int c = 0; c < DC; ++c)
      vv[c] = F16 ? D::load_f16(vrows[k] + c0 + c * D::W) : D::load(t.vf + k * hd + c0 + c * D::W);
    for (int i = 0; i < MR; ++i) {
      const v p = D::set1(t.s[k * mp + r0 + i]);
      for (int c = 0; c < DC; ++c) acc[i][c] = D::fma(p, vv[c], acc[i][c]);
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int c = 0; c < DC; ++c) D::store(t.o + (r0 + i) * hd + c0 + c * D::W, acc[i][c]);
}

// Continues row r's chains over keys [k_begin, k_end) (its keys past the block's common count).
template <int HD, bool F16, int DC>
void value_tail(const task_scratch& t, const uint16_t* const* vrows, int64_t mp, int32_t hd,
                int32_t r, int32_t c0, int32_t k_begin, int32_t k_end) {
  using D = dim_vec;
  if constexpr (HD != 0) hd = HD;
  using v = D::v;
  v acc[DC];
  for (int c = 0; c < DC; ++c) acc[c] = D::load(t.o + r * hd + c0 + c * D::W);
  for (int32_t k = k_begin; k < k_end; ++k) {
    const v p = D::set1(t.s[k * mp + r]);
    for (int c = 0; c < DC; ++c) {
      const v vk = F16 ? D::load_f16(vrows[k] + c0 + c * D::W) : D::load(t.vf + k * hd + c0 + c * D::W);
      acc[c] = D::fma(p, vk, acc[c]);
    }
  }
  for (int c = 0; c < DC; ++c) D::store(t.o + r * hd + c0 + c * D::W, acc[c]);
}

template <int HD, bool F16, int MR, int DC>
void value_rows(const task_scratch& t, const uint16_t* const* vrows, int64_t mp, int32_t hd,
                int32_t r0, int32_t c0, const int32_t* n_valid) {
  int32_t common = n_valid[0];
  for (int i = 1; i < MR; ++i) common = min_i32(common, n_valid[i]);
  value_block<HD, F16, MR, DC>(t, vrows, mp, hd, r0, c0, common);
  for (int i = 0; i < MR; ++i)
    if (n_valid[i] > common) value_tail<HD, F16, DC>(t, vrows, mp, hd, r0 + i, c0, common, n_valid[i]);
}

template <int HD, bool F16, int DC>
void value_chunk(const task_scratch& t, const uint16_t* const* vrows, int64_t mp, int32_t hd,
                 int32_t m_rows, int32_t c0, const int32_t* n_valid) {
  int32_t r = 0;
  for (; r + dim_vec::MR <= m_rows; r += dim_vec::MR)
    value_rows<HD, F16, dim_vec::MR, DC>(t, vrows, mp, hd, r, c0, n_valid + r);
  // A decode task has n_group rows (3 for the default model): one V load for all of them.
  for (; r + 3 <= m_rows; r += 3) value_rows<HD, F16, 3, DC>(t, vrows, mp, hd, r, c0, n_valid + r);
  for (; r < m_rows; ++r) value_rows<HD, F16, 1, DC>(t, vrows, mp, hd, r, c0, n_valid + r);
}

// o += p . V over the tile for the m_rows real rows; row r takes keys [0, n_valid[r]) only.
// A row with n_valid 0 (its position is before the tile) has alpha exactly 1: untouched.
template <int HD, bool F16>
void values(const task_scratch& t, const uint16_t* const* vrows, int64_t mp, int32_t hd,
            int32_t m_rows, const int32_t* n_valid) {
  constexpr int32_t chunk = 4 * dim_vec::W;
  int32_t c0 = 0;
  for (; c0 + chunk <= hd; c0 += chunk) value_chunk<HD, F16, 4>(t, vrows, mp, hd, m_rows, c0, n_valid);
  switch ((hd - c0) / dim_vec::W) {
    case 3: value_chunk<HD, F16, 3>(t, vrows, mp, hd, m_rows, c0, n_valid); break;
    case 2: value_chunk<HD, F16, 2>(t, vrows, mp, hd, m_rows, c0, n_valid); break;
    case 1: value_chunk<HD, F16, 1>(t, vrows, mp, hd, m_rows, c0, n_valid); break;
    default: break;
  }
}

// Widens the rows of positions [k0, k0 + nk) of one kv head from the fp16 pages.
template <int HD>
void widen_rows(const uint16_t* pages, const attention_tile& a, int32_t k0, int32_t nk, float* dst) {
  const int32_t hd = HD != 0 ? HD : a.head_dim;
  for (int32_t k = 0; k < nk; ++k) {
    const int32_t p = k0 + k;
    const int64_t block = a.block_table[p / a.block_size];
    const uint16_t* src =
        pages + ((block * a.n_head_kv + a.kv_head) * a.block_size + p % a.block_size) * hd;
    for (int32_t d = 0; d < hd; d += dim_vec::W) dim_vec::store(dst + k * hd + d, dim_vec::load_f16(src + d));
  }
}

// Asks for the rows of positions [k0, k0 + nk) ahead of their use: a decode task computes
// little per row, so without this it waits on memory at every row of a new page.
void prefetch_rows(const uint16_t* pages, const attention_tile& a, int32_t k0, int32_t nk) {
  const int32_t row_bytes = a.head_dim * 2;
  for (int32_t k = 0; k < nk; ++k) {
    const int32_t p = k0 + k;
    const int64_t block = a.block_table[p / a.block_size];
    const char* src = reinterpret_cast<const char*>(
        pages + ((block * a.n_head_kv + a.kv_head) * a.block_size + p % a.block_size) * a.head_dim);
    for (int32_t b = 0; b < row_bytes; b += 64) _mm_prefetch(src + b, _MM_HINT_T0);
  }
}

// HD: head_dim as a constant for the common sizes (addresses become immediates; the
// arithmetic is the same as HD = 0, which reads it at run time).
template <class V, int HD>
void run_tile(const attention_tile& a, float* scratch) {
  using D = dim_vec;
  const int32_t hd = HD != 0 ? HD : a.head_dim, g = a.n_group;
  const int32_t m_rows = a.n_tok * g;
  const int64_t mp = round_up(m_rows, V::W);
  const task_scratch t = carve(scratch, g, hd);

  // Rows r = token * g + head; padding rows repeat the last real row (finite, never stored).
  int32_t max_pos = 0;
  for (int64_t r = 0; r < mp; ++r) {
    const int32_t rr = static_cast<int32_t>(r < m_rows ? r : m_rows - 1);
    const int32_t tok = rr / g, head = rr % g;
    const float* q = a.q + tok * a.tok_stride + head * hd;
    for (int32_t d = 0; d < hd; ++d) t.qt[d * mp + r] = q[d] * a.scale;
    t.row_pos[r] = static_cast<float>(a.positions[tok]);
    max_pos = max_i32(max_pos, a.positions[tok]);
    t.m[r] = neg_inf;
    t.l[r] = 0.0f;
  }
  for (int64_t i = 0; i < m_rows * int64_t{hd}; i += D::W) D::store(t.o + i, D::zero());

  int32_t n_valid[query_tokens * 64];  // per real row; n_group <= 64 (checked by the caller)
  const uint16_t* vrows[key_tile];
  const bool direct_v = m_rows <= row_narrow::W;
  for (int32_t k0 = 0; k0 <= max_pos; k0 += key_tile) {
    const int32_t nk = min_i32(key_tile, max_pos + 1 - k0);
    if (k0 + key_tile <= max_pos) {
      const int32_t next = min_i32(key_tile, max_pos + 1 - (k0 + key_tile));
      prefetch_rows(a.k_pages, a, k0 + key_tile, next);
      prefetch_rows(a.v_pages, a, k0 + key_tile, next);
    }
    widen_rows<HD>(a.k_pages, a, k0, nk, t.kf);
    if (!direct_v) widen_rows<HD>(a.v_pages, a, k0, nk, t.vf);
    else
      for (int32_t k = 0; k < nk; ++k) {
        const int32_t p = k0 + k;
        const int64_t block = a.block_table[p / a.block_size];
        vrows[k] = a.v_pages + ((block * a.n_head_kv + a.kv_head) * a.block_size + p % a.block_size) * hd;
      }
    scores<V, HD>(t.qt, mp, t.kf, nk, hd, t.s);
    softmax_tile<V>(t, mp, k0, nk);
    for (int32_t r = 0; r < m_rows; ++r)
      n_valid[r] = max_i32(0, min_i32(nk, a.positions[r / g] - k0 + 1));
    if (direct_v) values<HD, true>(t, vrows, mp, hd, m_rows, n_valid);
    else values<HD, false>(t, vrows, mp, hd, m_rows, n_valid);
  }

  for (int32_t r = 0; r < m_rows; ++r) {
    const int32_t tok = r / g, head = r % g;
    float* out = a.out + tok * a.tok_stride + head * hd;
    const typename D::v l = D::set1(t.l[r]);
    for (int32_t d = 0; d < hd; d += D::W) D::store(out + d, D::div(D::load(t.o + r * hd + d), l));
  }
}

// Decode steps (one token: n_group rows) take the narrow lanes; their lanes compute exactly
// what the same rows compute in a wide vector.
template <int HD>
void run_task_hd(const attention_tile& a, float* scratch) {
  if (a.n_tok * a.n_group <= row_narrow::W) run_tile<row_narrow, HD>(a, scratch);
  else run_tile<row_wide, HD>(a, scratch);
}

void run_task(const attention_tile& a, float* scratch) {
  switch (a.head_dim) {
    case 64: run_task_hd<64>(a, scratch); break;
    case 128: run_task_hd<128>(a, scratch); break;
    default: run_task_hd<0>(a, scratch); break;
  }
}
