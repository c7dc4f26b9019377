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
  const int64_t n_tokens = batch.n_tokens();
  // Token -> sequence, so that tasks can be (token, head): the finest split that keeps one
  // query vector per task, which balances a single long prefill as well as many decodes.
  std::vector<int32_t> seq_of_token(static_cast<size_t>(n_tokens));
  for (int64_t s = 0; s < batch.n_seqs; ++s) {
    TROUPE_ASSERT(batch.token_start[s] <= batch.token_start[s + 1]);
    int32_t max_pos = -1;
    for (int64_t t = batch.token_start[s]; t < batch.token_start[s + 1]; ++t) {
      const int32_t pos = batch.positions[t];
      // The last position needs a block; all earlier ones are in lower logical blocks.
      TROUPE_ASSERT(pos >= 0 && pos / kv.block_size < batch.block_table_lens[s]);
      max_pos = std::max(max_pos, pos);
      seq_of_token[static_cast<size_t>(t)] = static_cast<int32_t>(s);
    }
    // Every block the kernels will read must be a real page (a bad table would read or
    // crash far from its cause).
    for (int32_t lb = 0; lb <= max_pos / kv.block_size && max_pos >= 0; ++lb)
      TROUPE_ASSERT(batch.block_tables[s][lb] >= 0 && batch.block_tables[s][lb] < kv.num_blocks);
  }
  const int64_t row = static_cast<int64_t>(n_head) * kv.head_dim;
  pool.parallel_for(n_tokens * n_head, [&](int64_t task, int) {
    const int64_t t = task / n_head;
    const int32_t h = static_cast<int32_t>(task % n_head);
    const int32_t s = seq_of_token[static_cast<size_t>(t)];
    kt.attention_head(q + t * row + h * kv.head_dim, kv.k, kv.v, batch.block_tables[s],
                      batch.positions[t] + 1, kv.block_size, kv.n_head_kv, h / group,
                      kv.head_dim, scale, out + t * row + h * kv.head_dim);
  });
}

}  // namespace troupe::kernels
