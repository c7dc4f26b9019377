#include "kernels/cpu/paged_attention.hpp"

#include <algorithm>
#include <vector>

#include "memory/float16.hpp"
#include "troupe/result.hpp"

namespace troupe::kernels {

namespace {

// Physical row offset (in fp16 elements) of position p of a sequence, kv head h.
int64_t kv_row_offset(const kv_layer_view& kv, const attention_batch& batch, int64_t seq,
                      int32_t p, int32_t h) {
  const int32_t logical = p / kv.block_size;
  TROUPE_ASSERT(p >= 0 && logical < batch.block_table_lens[seq]);
  const int64_t block = batch.block_tables[seq][logical];
  TROUPE_ASSERT(block >= 0 && block < kv.num_blocks);
  return ((block * kv.n_head_kv + h) * kv.block_size + p % kv.block_size) * kv.head_dim;
}

}  // namespace

void store_kv(const kv_layer_view& kv, const attention_batch& batch, const float* k,
              const float* v) {
  const int64_t row = static_cast<int64_t>(kv.n_head_kv) * kv.head_dim;
  for (int64_t s = 0; s < batch.n_seqs; ++s) {
    for (int64_t t = batch.token_start[s]; t < batch.token_start[s + 1]; ++t) {
      for (int32_t h = 0; h < kv.n_head_kv; ++h) {
        const int64_t off = kv_row_offset(kv, batch, s, batch.positions[t], h);
        const float* ks = k + t * row + h * kv.head_dim;
        const float* vs = v + t * row + h * kv.head_dim;
        for (int32_t d = 0; d < kv.head_dim; ++d) {
          kv.k[off + d] = fp32_to_fp16(ks[d]);
          kv.v[off + d] = fp32_to_fp16(vs[d]);
        }
      }
    }
  }
}

void paged_attention(const kv_layer_view& kv, const attention_batch& batch, const float* q,
                     int32_t n_head, float scale, float* out, thread_pool& pool) {
  paged_attention(active_kernels(), kv, batch, q, n_head, scale, out, pool);
}

void paged_attention(const kernel_table& kt, const kv_layer_view& kv,
                     const attention_batch& batch, const float* q, int32_t n_head, float scale,
                     float* out, thread_pool& pool) {
  TROUPE_ASSERT(kv.n_head_kv > 0 && n_head % kv.n_head_kv == 0);
  const int32_t group = n_head / kv.n_head_kv;
  for (int64_t s = 0; s < batch.n_seqs; ++s) {
    TROUPE_ASSERT(batch.token_start[s] <= batch.token_start[s + 1]);
    int32_t max_pos = -1;
    for (int64_t t = batch.token_start[s]; t < batch.token_start[s + 1]; ++t) {
      const int32_t pos = batch.positions[t];
      // The last position needs a block; all earlier ones are in lower logical blocks.
      TROUPE_ASSERT(pos >= 0 && pos / kv.block_size < batch.block_table_lens[s]);
      max_pos = std::max(max_pos, pos);
    }
    // Every block the kernels will read must be a real page (a bad table would read or
    // crash far from its cause).
    for (int32_t lb = 0; lb <= max_pos / kv.block_size && max_pos >= 0; ++lb)
      TROUPE_ASSERT(batch.block_tables[s][lb] >= 0 && batch.block_tables[s][lb] < kv.num_blocks);
  }
  // Tasks: (sequence, kv head, tile of up to k_tile_tokens consecutive tokens) with all the
  // query heads of that kv head, so a K/V row read once serves tile * group queries. When that
  // gives too few tasks to keep the threads busy (a single decode), fall back to one task per
  // (token, query head).
  constexpr int32_t k_tile_tokens = 8;
  struct tile_task {
    int32_t seq;
    int64_t t0;
    int32_t n_tok;
  };
  std::vector<tile_task> tiles;
  for (int64_t s = 0; s < batch.n_seqs; ++s)
    for (int64_t t = batch.token_start[s]; t < batch.token_start[s + 1]; t += k_tile_tokens)
      tiles.push_back({static_cast<int32_t>(s), t,
                       static_cast<int32_t>(std::min<int64_t>(k_tile_tokens, batch.token_start[s + 1] - t))});
  const bool per_head = static_cast<int64_t>(tiles.size()) * kv.n_head_kv < 2 * pool.num_threads();
  const int32_t split = per_head ? group : 1;  // sub-tasks per (tile, kv head)
  const int64_t row = static_cast<int64_t>(n_head) * kv.head_dim;
  const int64_t n_tasks = static_cast<int64_t>(tiles.size()) * kv.n_head_kv * split;
  pool.parallel_for(n_tasks, [&](int64_t task, int) {
    const int32_t sub = static_cast<int32_t>(task % split);
    const int32_t kvh = static_cast<int32_t>((task / split) % kv.n_head_kv);
    const tile_task& tt = tiles[static_cast<size_t>(task / split / kv.n_head_kv)];
    const int32_t first_head = kvh * group + (per_head ? sub : 0);
    attention_tile a;
    a.q = q + tt.t0 * row + static_cast<int64_t>(first_head) * kv.head_dim;
    a.out = out + tt.t0 * row + static_cast<int64_t>(first_head) * kv.head_dim;
    a.tok_stride = row;
    a.n_tok = tt.n_tok;
    a.n_group = per_head ? 1 : group;
    a.positions = batch.positions + tt.t0;
    a.k_pages = kv.k;
    a.v_pages = kv.v;
    a.block_table = batch.block_tables[tt.seq];
    a.block_size = kv.block_size;
    a.n_head_kv = kv.n_head_kv;
    a.kv_head = kvh;
    a.head_dim = kv.head_dim;
    a.scale = scale;
    a.single_token_order = batch.single_token_order ? batch.single_token_order + tt.t0 : nullptr;
    kt.attention(a);
  });
}

}  // namespace troupe::kernels
