// llama_model_file: a GGUF file checked to be a llama-architecture model troupe can run, with
// its hyperparameters and zero-copy views of every weight.
//
// Ownership: `file` owns the mapping; every tensor_view (and name) points into it, so the views
// stay valid as long as this object (or a copy of `file`) lives. Moving is safe (the mapping
// does not move). Immutable after loading; any thread may read it.
//
// Failure: load_llama_model returns an error naming the file and the fault -- architecture not
// llama, a missing or out-of-range hyperparameter, inconsistent head counts, a missing tensor, a
// tensor whose shape differs from what the hyperparameters imply ("expected [576, 1536], got
// ..."), a tensor type the runner cannot use, or a feature troupe does not implement (biases,
// rope scaling, experts). All hyperparameters come from the file; none are assumed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "memory/gguf_file.hpp"
#include "memory/tensor_view.hpp"
#include "troupe/result.hpp"

namespace troupe {

struct llama_hparams {
  int64_t n_vocab = 0;      // llama.vocab_size, else tokenizer.ggml.tokens length, else token_embd
  int64_t n_ctx_train = 0;  // llama.context_length
  int64_t n_embd = 0;       // llama.embedding_length
  int64_t n_layer = 0;      // llama.block_count
  int64_t n_ff = 0;         // llama.feed_forward_length
  int64_t n_head = 0;       // llama.attention.head_count
  int64_t n_head_kv = 0;    // llama.attention.head_count_kv (absent: n_head)
  int64_t head_dim = 0;     // llama.attention.key_length (absent: n_embd / n_head)
  int64_t n_rot = 0;        // llama.rope.dimension_count (absent: head_dim)
  float rms_eps = 0.0f;     // llama.attention.layer_norm_rms_epsilon
  float rope_freq_base = 10000.0f;  // llama.rope.freq_base (absent: 10000)
};

// Shapes in ggml order {ne0 = inputs, ne1 = outputs}; norms are F32 vectors {n_embd}.
struct llama_layer_weights {
  tensor_view attn_norm;  // {n_embd}
  tensor_view wq;         // {n_embd, n_head * head_dim}
  tensor_view wk;         // {n_embd, n_head_kv * head_dim}
  tensor_view wv;         // {n_embd, n_head_kv * head_dim}
  tensor_view wo;         // {n_head * head_dim, n_embd}
  tensor_view ffn_norm;   // {n_embd}
  tensor_view w_gate;     // {n_embd, n_ff}
  tensor_view w_up;       // {n_embd, n_ff}
  tensor_view w_down;     // {n_ff, n_embd}
};

struct llama_weights {
  tensor_view token_embd;    // {n_embd, n_vocab}
  tensor_view output_norm;   // {n_embd}
  tensor_view output;        // {n_embd, n_vocab}; == token_embd when output_tied
  bool output_tied = false;  // true when the file has no output.weight
  std::vector<llama_layer_weights> layers;  // n_layer entries
};

struct llama_model_file {
  gguf_file file;
  llama_hparams hparams;
  llama_weights weights;
};

// Opens (mmap) and checks `path`.
result<llama_model_file> load_llama_model(const std::string& path);
// Checks an already parsed file (tests build these in memory).
result<llama_model_file> load_llama_model(gguf_file file);

// The hyperparameters alone (no tensor checks); used by load_llama_model and `troupe inspect`.
result<llama_hparams> read_llama_hparams(const gguf_file& file);

}  // namespace troupe
