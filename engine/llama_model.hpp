// llama_model: the llama forward pass over paged K/V for a batched, ragged step.
//
// One forward() call takes many sequences at once. Each contributes any number of new tokens
// (a prefill chunk, or one decode token) at its own positions, and reads/writes its K/V through
// its own block table into a paged_kv_storage. This is the whole interface the scheduler's
// executor drives; the model keeps no per-sequence or generation-loop state between calls.
//
// Graph (llama.cpp's llama graph, hyperparameters from the file):
//   h = token_embd[tok]
//   per layer: a = rms_norm(h) * attn_norm;  q, k, v = Wq a, Wk a, Wv a
//              rope (NORM mode, adjacent pairs; freq_base from the file) on q and k
//              store k, v in the pages; o = causal GQA attention over the sequence, scale
//              1/sqrt(head_dim);  h += Wo o
//              f = rms_norm(h) * ffn_norm;  h += Wdown(silu(Wgate f) * Wup f)
//   logits = W_out (rms_norm(h) * output_norm)   (W_out = token_embd when output.weight is absent)
//
// Ownership: the model borrows the llama_model_file (weights are zero-copy views into its
// mapping) and the thread_pool; both must outlive it. Scratch buffers are members, grown to the
// largest step seen and reused, so steady-state decode does not allocate.
//
// Threading: forward() runs on the calling thread, which drives the pool. One caller at a time
// (an executor's compute thread).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "kernels/cpu/kernel_table.hpp"
#include "kernels/cpu/thread_pool.hpp"
#include "memory/llama_model_file.hpp"
#include "memory/paged_kv_storage.hpp"
#include "troupe/result.hpp"

namespace troupe::engine {

struct batch_sequence {
  uint64_t seq_id = 0;                   // the caller's id; only used in error messages
  std::span<const int32_t> tokens;       // the new tokens, >= 1
  int32_t first_position = 0;            // absolute position of tokens[0] in the sequence
  // Physical block ids for logical blocks 0.. of the sequence; must cover every position up to
  // first_position + tokens.size() - 1. Positions below first_position must already hold this
  // sequence's K/V (written by earlier steps, or a shared prefix). Blocks written by this step
  // must not be shared with another sequence of the same step.
  std::span<const int32_t> block_table;
  bool all_logits = false;               // logits for every new token, not just the last
};

class llama_model {
 public:
  // kt: the kernel variant to run (tests pass reference_kernels() to check the engine's own
  // logic bit for bit); nullptr means the fastest this CPU has (active_kernels()).
  llama_model(const llama_model_file& file, kernels::thread_pool& pool,
              const kernels::kernel_table* kt = nullptr);

  const llama_hparams& hparams() const { return file_->hparams; }
  int64_t n_vocab() const { return file_->hparams.n_vocab; }

  // The K/V page shape this model needs (num_blocks and block_size as given).
  paged_kv_shape kv_shape(int64_t num_blocks, int32_t block_size = 16) const;

  // Rows of logits forward() writes for this batch: per sequence, tokens.size() if all_logits
  // else 1, in batch order.
  static int64_t num_logit_rows(std::span<const batch_sequence> batch);

  // Runs one step. logits_out: [num_logit_rows(batch), n_vocab] floats, row-major; for a
  // sequence without all_logits its one row belongs to its last token.
  // Errors (nothing is written to the pages then): an empty batch or sequence, a token id out
  // of range, a negative position, a block table that does not cover the positions or names a
  // block outside the storage, a storage of the wrong shape, a too small logits_out.
  status forward(std::span<const batch_sequence> batch, paged_kv_storage& kv,
                 std::span<float> logits_out);

 private:
  status check(std::span<const batch_sequence> batch, const paged_kv_storage& kv,
               std::span<float> logits_out) const;
  void prepare_batch(std::span<const batch_sequence> batch);
  void run_layer(int32_t layer, paged_kv_storage& kv);
  void compute_logits(std::span<const batch_sequence> batch, float* logits_out);

  const llama_model_file* file_;
  kernels::thread_pool* pool_;
  const kernels::kernel_table* kt_;

  // Per-step batch description (the kernels' attention_batch points into these).
  int64_t n_tokens_ = 0;
  int64_t n_seqs_ = 0;
  std::vector<int32_t> tokens_;               // [n_tokens]
  std::vector<int32_t> positions_;            // [n_tokens]
  std::vector<int64_t> token_start_;          // [n_seqs + 1]
  std::vector<const int32_t*> block_tables_;  // [n_seqs]
  std::vector<int32_t> block_table_lens_;     // [n_seqs]

  // Activations, [n_tokens, width] row-major; grown, never shrunk.
  std::vector<float> hidden_;      // residual stream, n_embd
  std::vector<float> normed_;      // n_embd
  std::vector<float> q_;           // n_head * head_dim
  std::vector<float> k_;           // n_head_kv * head_dim
  std::vector<float> v_;           // n_head_kv * head_dim
  std::vector<float> attn_;        // n_head * head_dim
  std::vector<float> proj_;        // n_embd (attention / FFN output before the residual add)
  std::vector<float> gate_;        // n_ff
  std::vector<float> up_;          // n_ff
  std::vector<float> rope_cache_;  // n_rot (cos, sin pairs)
  std::vector<float> last_rows_;   // [logit rows, n_embd] gathered final hidden states
};

}  // namespace troupe::engine
