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
// Arithmetic (model_options, engine/arithmetic.hpp): the matmuls and attention run in one of
// three modes -- fast (packed weights, 16-bit activations; needs the stage's fast_weights),
// llama.cpp-exact, fp32-reference; the graph and the small ops are the same in all three.
//
// Ownership: the model borrows the llama_model_file (weights are zero-copy views into its
// mapping) and the thread_pool; both must outlive it. Scratch buffers are members, grown to the
// largest step seen and reused, so steady-state decode does not allocate.
//
// Threading: forward() runs on the calling thread, which drives the pool. One caller at a time
// (an executor's compute thread).
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "engine/arithmetic.hpp"
#include "kernels/cpu/fast_attention.hpp"
#include "kernels/cpu/fast_matmul.hpp"
#include "kernels/cpu/kernel_table.hpp"
#include "kernels/cpu/task_phases.hpp"
#include "kernels/cpu/thread_pool.hpp"
#include "memory/llama_model_file.hpp"
#include "memory/paged_kv_storage.hpp"
#include "troupe/result.hpp"

namespace troupe::engine {

class fast_weights;

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
  // Positions >= sampled_from hold tokens the engine sampled (decode), the rest are prompt.
  // Only the summation order of attention depends on it: llama.cpp feeds a prompt as one
  // many-token step and each sampled token as a step of one, and sums differently in the two
  // (kernels/cpu/ggml_arithmetic.hpp); marking the tokens, not the steps, keeps chunked
  // prefill, batching and recompute after preemption bit-identical to llama.cpp's two paths.
  int32_t sampled_from = std::numeric_limits<int32_t>::max();
};

// A contiguous range of layers [first, last): what one pipeline stage runs. The stage that
// starts at layer 0 embeds the tokens; the one that ends at n_layer computes the logits; every
// other boundary hands the residual stream (hidden states) from one stage to the next.
struct layer_range {
  int32_t first = 0;
  int32_t last = 0;
  int32_t size() const { return last - first; }
};

// How a llama_model computes (engine/arithmetic.hpp).
struct model_options {
  arithmetic mode = arithmetic::llama_cpp_exact;
  // The kernel variants: nullptr means the fastest this CPU has. kt also runs the small ops
  // (RMSNorm, SiLU) of every mode and, in fast mode, the matrices without a packed layout.
  const kernels::kernel_table* kt = nullptr;
  const kernels::fast_kernel_table* fast_kt = nullptr;
  // Fast mode: the packed weights of (at least) the layers this model runs, and of the output
  // matrix if it computes logits (fast_weights::pack); required in fast mode, ignored otherwise.
  std::shared_ptr<const fast_weights> packed;
};

class llama_model {
 public:
  // llama.cpp-exact arithmetic. kt: the kernel variant to run (tests pass reference_kernels()
  // to check the engine's own logic bit for bit); nullptr means the fastest this CPU has.
  llama_model(const llama_model_file& file, kernels::thread_pool& pool,
              const kernels::kernel_table* kt = nullptr);
  // Any arithmetic. REQUIRES: opts.packed in fast mode.
  llama_model(const llama_model_file& file, kernels::thread_pool& pool, model_options opts);


  const llama_hparams& hparams() const { return file_->hparams; }
  int64_t n_vocab() const { return file_->hparams.n_vocab; }

  // The K/V page shape this model needs (num_blocks and block_size as given).
  paged_kv_shape kv_shape(int64_t num_blocks, int32_t block_size = 16) const;
  // The same for a stage that runs only `layers`: n_layer = layers.size(); the stage's pages
  // hold layer layers.first at index 0.
  paged_kv_shape kv_shape(int64_t num_blocks, int32_t block_size, layer_range layers) const;

  // All layers: {0, n_layer}.
  layer_range all_layers() const;

  // Rows of logits forward() writes for this batch: per sequence, tokens.size() if all_logits
  // else 1, in batch order.
  static int64_t num_logit_rows(std::span<const batch_sequence> batch);
  // Rows of hidden states a stage hands to the next: one per token of the batch, in batch order.
  static int64_t num_hidden_rows(std::span<const batch_sequence> batch);

  // Runs one step. logits_out: [num_logit_rows(batch), n_vocab] floats, row-major; for a
  // sequence without all_logits its one row belongs to its last token.
  // Errors (nothing is written to the pages then): an empty batch or sequence, a token id out
  // of range, a negative position, a block table that does not cover the positions or names a
  // block outside the storage, a storage of the wrong shape, a too small logits_out.
  // The whole model in one call: forward_layers(batch, all_layers(), kv, {}, logits_out).
  status forward(std::span<const batch_sequence> batch, paged_kv_storage& kv,
                 std::span<float> logits_out);

  // One pipeline stage's share of a step: runs layers [layers.first, layers.last) over the
  // batch, reading and writing K/V in `kv`, whose shape must be kv_shape(..., layers).
  //   layers.first == 0: starts from the token embeddings; hidden_in must be empty.
  //   otherwise: starts from hidden_in, [num_hidden_rows(batch), n_embd] floats, the previous
  //              stage's output for the same batch.
  //   layers.last == n_layer: `out` receives the logits, as forward() describes.
  //   otherwise: `out` receives the hidden states, [num_hidden_rows(batch), n_embd] floats.
  // Splitting the layers over stages gives bit-identical logits to forward(): the residual
  // stream crosses the boundary as the same floats. Errors (nothing written to the pages then):
  // those of forward(), an empty or out-of-range layer range, a hidden_in of the wrong size (or
  // given to the first stage), a too small `out`.
  status forward_layers(std::span<const batch_sequence> batch, layer_range layers,
                        paged_kv_storage& kv, std::span<const float> hidden_in,
                        std::span<float> out);

  // A debugging probe: when set, forward() calls it with each intermediate activation, named as
  // llama.cpp's graph names them ("attn_norm", "Qcur", "kqv_out", "ffn_swiglu", "l_out", ...;
  // layer -1 for "result_norm"), rows = tokens of the step in batch order. tools/trace-diff
  // compares them with llama.cpp's own tensors to find the first op that rounds differently.
  using trace_fn = std::function<void(std::string_view name, int32_t layer, const float* data,
                                      int64_t rows, int64_t row_len)>;
  void set_trace(trace_fn fn) { trace_ = std::move(fn); }

 private:
  void trace(std::string_view name, int32_t layer, const float* data, int64_t rows,
             int64_t row_len) const {
    if (trace_) trace_(name, layer, data, rows, row_len);
  }

  status check(std::span<const batch_sequence> batch, layer_range layers,
               const paged_kv_storage& kv, std::span<const float> hidden_in,
               std::span<float> out) const;
  void prepare_batch(std::span<const batch_sequence> batch);
  // kv_layer: the layer's index in the stage's pages (layer - first layer of the stage).
  void run_layer(int32_t layer, int32_t kv_layer, paged_kv_storage& kv);
  // The fast arithmetic's layers, fused (llama_model_fused.cpp): all layers of the step in ONE
  // pool dispatch, their ops as task_phases. Same bits as run_layer in fast mode. Used when
  // fused_layers_usable(layers).
  bool fused_layers_usable(layer_range layers) const;
  void run_layers_fused(layer_range layers, paged_kv_storage& kv);
  void compute_logits(std::span<const batch_sequence> batch, float* logits_out);

  // y_i = x · W_iᵀ for up to 3 weights sharing x ([rows, K] floats), in the model's arithmetic.
  // packed_i: the fast mode's copy of W_i (nullptr: none; runs on the exact kernels).
  struct projection {
    const tensor_view* w = nullptr;
    const std::optional<kernels::packed_weight>* packed = nullptr;
    float* y = nullptr;
  };
  void project(std::initializer_list<projection> outs, const float* x, int64_t rows);

  const llama_model_file* file_;
  kernels::thread_pool* pool_;
  const kernels::kernel_table* kt_;
  arithmetic mode_ = arithmetic::llama_cpp_exact;
  const kernels::fast_kernel_table* fast_kt_ = nullptr;
  std::shared_ptr<const fast_weights> packed_;
  trace_fn trace_;

  // Per-step batch description (the kernels' attention_batch points into these).
  int64_t n_tokens_ = 0;
  int64_t n_seqs_ = 0;
  std::vector<int32_t> tokens_;               // [n_tokens]
  std::vector<int32_t> positions_;            // [n_tokens]
  std::vector<int64_t> token_start_;          // [n_seqs + 1]
  std::vector<const int32_t*> block_tables_;  // [n_seqs]
  std::vector<int32_t> block_table_lens_;     // [n_seqs]
  std::vector<uint8_t> single_token_order_;   // [n_tokens]: position >= sampled_from
  // [n_tokens]: 1 where llama.cpp would run the token through its repacked Q4_K gemm rather
  // than its gemv (kernels/cpu/matmul.hpp): prompt positions below the prompt length rounded
  // down to a multiple of 4 (llama.cpp feeds a prompt as one batch, or 512-token ubatches).
  std::vector<uint8_t> q4_k_gemm_order_;

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

  // The fused fast path's state (run_layers_fused): act16 rows of the matmul inputs (64-byte
  // aligned inside the vectors), the phase counters and the attention task list.
  std::vector<uint8_t> act_embd_;  // rms_norm(h): act16 rows of n_embd
  std::vector<uint8_t> act_attn_;  // attention output: act16 rows of n_head * head_dim
  std::vector<uint8_t> act_ff_;    // silu(gate) * up: act16 rows of n_ff
  kernels::task_phases phases_;
  kernels::fast_attention_tasks attn_tasks_;
};

}  // namespace troupe::engine
