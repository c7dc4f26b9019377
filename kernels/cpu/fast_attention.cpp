#include "kernels/cpu/fast_attention.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/cpu_features.hpp"
#include "kernels/cpu/fast_attention_variants.hpp"
#include "memory/float16.hpp"
#include "troupe/result.hpp"

// The scalar variant's sums must stay one rounding per operation even if this file is built
// for a CPU with FMA (-march=native): see fast_attention_avx512.cpp.
#pragma GCC optimize("fp-contract=off")

namespace troupe::kernels {

namespace {


// The SIMD kernels keep per-row key counts for k_fast_attention_query_tokens * 64 rows.
constexpr int32_t max_simd_group = 64;

bool simd_fits(fast_attention_variant v, const kv_layer_view& kv, int32_t group) {
  if (group > max_simd_group || kv.head_dim <= 0) return false;
  if (v == fast_attention_variant::avx512) return kv.head_dim % 16 == 0;
  if (v == fast_attention_variant::avx2) return kv.head_dim % 8 == 0;
  return false;
}

// Scalar variant: per query, a two-pass softmax over positions 0..p in order, fp32, std::exp.
// scores: at least positions[i] + 1 floats; qs: head_dim floats.
void scalar_task(const attention_tile& a, float* scores, float* qs) {
  const int32_t hd = a.head_dim;
  auto row = [&](const uint16_t* pages, int32_t p) {
    const int64_t block = a.block_table[p / a.block_size];
    return pages + ((block * a.n_head_kv + a.kv_head) * a.block_size + p % a.block_size) * hd;
  };
  for (int32_t i = 0; i < a.n_tok; ++i) {
    const int32_t n_pos = a.positions[i] + 1;
    for (int32_t g = 0; g < a.n_group; ++g) {
      const float* q = a.q + i * a.tok_stride + g * hd;
      float* out = a.out + i * a.tok_stride + g * hd;
      for (int32_t d = 0; d < hd; ++d) qs[d] = q[d] * a.scale;
      float m = -std::numeric_limits<float>::infinity();
      for (int32_t p = 0; p < n_pos; ++p) {
        const uint16_t* k = row(a.k_pages, p);
        float s = 0.0f;
        for (int32_t d = 0; d < hd; ++d) s += qs[d] * fp16_to_fp32(k[d]);
        scores[p] = s;
        m = std::max(m, s);
      }
      float l = 0.0f;
      for (int32_t p = 0; p < n_pos; ++p) l += (scores[p] = std::exp(scores[p] - m));
      for (int32_t d = 0; d < hd; ++d) out[d] = 0.0f;
      for (int32_t p = 0; p < n_pos; ++p) {
        const uint16_t* v = row(a.v_pages, p);
        for (int32_t d = 0; d < hd; ++d) out[d] += scores[p] * fp16_to_fp32(v[d]);
      }
      for (int32_t d = 0; d < hd; ++d) out[d] /= l;
    }
  }
}

// Per-thread scratch, grown on demand and kept (a forward pass calls this once per layer).
float* thread_scratch(int64_t n_floats) {
  thread_local std::vector<float> buf;
  const size_t need = static_cast<size_t>(n_floats) + 16;
  if (buf.size() < need) buf.resize(need);
  const uintptr_t addr = reinterpret_cast<uintptr_t>(buf.data());
  return buf.data() + ((64 - addr % 64) % 64) / sizeof(float);
}

}  // namespace

const char* fast_attention_variant_name(fast_attention_variant v) {
  switch (v) {
    case fast_attention_variant::scalar: return "scalar";
    case fast_attention_variant::avx2: return "avx2";
    case fast_attention_variant::avx512: return "avx512";
  }
  return "?";
}

std::vector<fast_attention_variant> available_fast_attention_variants() {
  const cpu_features& f = detected_cpu_features();
  std::vector<fast_attention_variant> out{fast_attention_variant::scalar};
  if (f.avx2_fma) out.push_back(fast_attention_variant::avx2);
  if (f.avx512_vnni) out.push_back(fast_attention_variant::avx512);
  return out;
}

fast_attention_variant active_fast_attention_variant() {
  static const fast_attention_variant v = available_fast_attention_variants().back();
  return v;
}

void paged_attention_fast(const kv_layer_view& kv, const attention_batch& batch, const float* q,
                          int32_t n_head, float scale, float* out, thread_pool& pool) {
  paged_attention_fast(active_fast_attention_variant(), kv, batch, q, n_head, scale, out, pool);
}

void paged_attention_fast(fast_attention_variant variant, const kv_layer_view& kv,
                          const attention_batch& batch, const float* q, int32_t n_head,
                          float scale, float* out, thread_pool& pool) {
  // The caller drives the pool, so its thread_local list is ours; reused, so a steady-state
  // decode step does not allocate (llama_model.hpp).
  // (A reference, so that the pool's workers see the caller's tasks, not their own.)
  thread_local fast_attention_tasks caller_tasks;
  fast_attention_tasks& tasks = caller_tasks;
  tasks.build(variant, kv, batch, q, n_head, scale, out);
  pool.parallel_for(tasks.size(), [&](int64_t i, int) { tasks.run(i); });
}

void fast_attention_tasks::build(fast_attention_variant variant, const kv_layer_view& kv,
                                 const attention_batch& batch, const float* q, int32_t n_head,
                                 float scale, float* out) {
  TROUPE_ASSERT(kv.n_head_kv > 0 && n_head % kv.n_head_kv == 0);
  const int32_t group = n_head / kv.n_head_kv;
  // Tasks of (sequence, kv head, up to k_fast_attention_query_tokens tokens); the checks are
  // those of paged_attention (a bad table would read or crash far from its cause).
  std::vector<task>& tasks = tasks_;
  tasks.clear();
  int32_t max_n_pos = 0;
  for (int64_t s = 0; s < batch.n_seqs; ++s) {
    const int64_t begin = batch.token_start[s], end = batch.token_start[s + 1];
    TROUPE_ASSERT(begin <= end);
    int32_t max_pos = -1;
    for (int64_t t = begin; t < end; ++t) {
      const int32_t pos = batch.positions[t];
      TROUPE_ASSERT(pos >= 0 && pos < (1 << 24) && pos / kv.block_size < batch.block_table_lens[s]);
      max_pos = std::max(max_pos, pos);
    }
    for (int32_t lb = 0; lb <= max_pos / kv.block_size && max_pos >= 0; ++lb)
      TROUPE_ASSERT(batch.block_tables[s][lb] >= 0 && batch.block_tables[s][lb] < kv.num_blocks);
    max_n_pos = std::max(max_n_pos, max_pos + 1);
    for (int64_t t0 = begin; t0 < end; t0 += k_fast_attention_query_tokens) {
      const int32_t n = static_cast<int32_t>(std::min<int64_t>(k_fast_attention_query_tokens, end - t0));
      int32_t last = 0;
      for (int64_t t = t0; t < t0 + n; ++t) last = std::max(last, batch.positions[t]);
      for (int32_t h = 0; h < kv.n_head_kv; ++h)
        tasks.push_back({static_cast<int32_t>(s), h, t0, n, int64_t{n} * (last + 1)});
    }
  }
  std::stable_sort(tasks.begin(), tasks.end(),
                   [](const task& x, const task& y) { return x.cost > y.cost; });

  variant_ = variant;
  kv_ = kv;
  batch_ = batch;
  q_ = q;
  out_ = out;
  scale_ = scale;
  group_ = group;
  max_n_pos_ = max_n_pos;
  simd_ = simd_fits(variant, kv, group);
  scratch_floats_ =
      !simd_ ? max_n_pos + kv.head_dim
      : variant == fast_attention_variant::avx512 ? fast_attention_scratch_floats_avx512(group, kv.head_dim)
                                                  : fast_attention_scratch_floats_avx2(group, kv.head_dim);
}

void fast_attention_tasks::run(int64_t i, const kv_layer_view& kv) const {
  TROUPE_ASSERT(kv.n_head_kv == kv_.n_head_kv && kv.head_dim == kv_.head_dim &&
                kv.block_size == kv_.block_size && kv.num_blocks == kv_.num_blocks);
  const task& ft = tasks_[static_cast<size_t>(i)];
  const int64_t row = static_cast<int64_t>(group_) * kv.n_head_kv * kv.head_dim;
  attention_tile a;
  a.q = q_ + ft.t0 * row + static_cast<int64_t>(ft.kv_head) * group_ * kv.head_dim;
  a.out = out_ + ft.t0 * row + static_cast<int64_t>(ft.kv_head) * group_ * kv.head_dim;
  a.tok_stride = row;
  a.n_tok = ft.n_tok;
  a.n_group = group_;
  a.positions = batch_.positions + ft.t0;
  a.k_pages = kv.k;
  a.v_pages = kv.v;
  a.block_table = batch_.block_tables[ft.seq];
  a.block_size = kv.block_size;
  a.n_head_kv = kv.n_head_kv;
  a.kv_head = ft.kv_head;
  a.head_dim = kv.head_dim;
  a.scale = scale_;
  float* scratch = thread_scratch(scratch_floats_);
  if (!simd_) scalar_task(a, scratch, scratch + max_n_pos_);
  else if (variant_ == fast_attention_variant::avx512) fast_attention_tile_avx512(a, scratch);
  else fast_attention_tile_avx2(a, scratch);
}

}  // namespace troupe::kernels
