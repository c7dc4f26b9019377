// Paged causal attention (GQA) over a ragged batch, and the writer of new K/V rows.
//
// ---- K/V page layout (one layer) ----
// Elements are fp16 (IEEE binary16 bits; llama.cpp's default KV type: halves memory traffic).
// K and V are two separate arrays of identical layout
//     [num_blocks][n_head_kv][block_size][head_dim]
// The row of physical block b, kv head h, slot s is at  ((b * n_head_kv + h) * block_size + s)
// * head_dim. Position p of a sequence lives in physical block block_table[p / block_size],
// slot p % block_size. Per kv head the rows of a block are contiguous (block_size * head_dim
// fp16), which is what the attention loop streams.
// The memory is owned by whoever allocates it (the executor's KV storage); kv_layer_view
// borrows it.
//
// ---- batch ----
// Sequence s owns the consecutive token rows [token_start[s], token_start[s+1]) of q/k/v/out:
// one row for a decode step, many for a prefill chunk. positions[t] is the absolute position
// of token t in its sequence; within a sequence they are consecutive and increasing.
// block_tables[s] maps logical block i -> physical block id for i < block_table_lens[s].
//
// ---- order within a step ----
// store_kv(batch, k, v) first (writes this step's rows), then paged_attention(batch, q): each
// query token t attends to positions 0..positions[t] of its own sequence (causal), so positions
// below the chunk must have been stored by earlier steps.
#pragma once

#include <cstdint>

#include "kernels/cpu/kernel_table.hpp"
#include "kernels/cpu/thread_pool.hpp"

namespace troupe::kernels {

struct kv_layer_view {
  uint16_t* k = nullptr;  // fp16 [num_blocks][n_head_kv][block_size][head_dim]
  uint16_t* v = nullptr;  // same layout
  int64_t num_blocks = 0;
  int32_t block_size = 16;
  int32_t n_head_kv = 0;
  int32_t head_dim = 0;
};

struct attention_batch {
  int64_t n_seqs = 0;
  const int64_t* token_start = nullptr;           // [n_seqs + 1]; token_start[0] == 0
  const int32_t* positions = nullptr;             // [n_tokens]
  const int32_t* const* block_tables = nullptr;   // [n_seqs] pointers to physical block ids
  const int32_t* block_table_lens = nullptr;      // [n_seqs] entries in each block table
  // [n_tokens] or nullptr: 1 for tokens the engine sampled itself (see attention_tile).
  const uint8_t* single_token_order = nullptr;
  int64_t n_tokens() const { return token_start[n_seqs]; }
};

// Writes k, v: [n_tokens, n_head_kv, head_dim] float (rounded to fp16) into the slots of
// positions[t] of each token's sequence. REQUIRES: every slot's logical block < table length
// and every physical id < kv.num_blocks (checked; aborts: the scheduler guarantees it).
// Distinct tokens must map to distinct slots. Single-threaded (it is a copy).
void store_kv(const kv_layer_view& kv, const attention_batch& batch, const float* k,
              const float* v);

// out[t][h] = sum_{p <= positions[t]} softmax_p(scale * q[t][h] . K[p][h / group]) * V[p][...]
// q, out: [n_tokens, n_head, head_dim] float; group = n_head / kv.n_head_kv (GQA: query heads
// h*group .. h*group+group-1 share kv head h). scale is usually 1/sqrt(head_dim).
// REQUIRES: n_head % kv.n_head_kv == 0; out does not overlap q. Parallel on pool over tiles
// of (sequence, kv head, up to 8 consecutive tokens) with all the query heads of that kv head
// (each K/V row is converted once for all of them); over (token, query head) when that gives
// too few tasks (a single decode). The calling thread drives the pool.
void paged_attention(const kv_layer_view& kv, const attention_batch& batch, const float* q,
                     int32_t n_head, float scale, float* out, thread_pool& pool);
void paged_attention(const kernel_table& kt, const kv_layer_view& kv,
                     const attention_batch& batch, const float* q, int32_t n_head, float scale,
                     float* out, thread_pool& pool);

}  // namespace troupe::kernels
