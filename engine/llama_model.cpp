#include "engine/llama_model.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "engine/fast_weights.hpp"
#include "kernels/cpu/fast_attention.hpp"
#include "kernels/cpu/fp32_reference_matmul.hpp"
#include "kernels/cpu/matmul.hpp"
#include "kernels/cpu/ops.hpp"
#include "kernels/cpu/paged_attention.hpp"

namespace troupe::engine {
namespace {

template <class T>
T* grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

// The cheap per-token ops are single-threaded kernels; a prefill chunk has enough rows to be
// worth splitting across the pool, a decode step does not.
template <class F>
void for_rows(kernels::thread_pool& pool, int64_t n_rows, F&& fn) {
  constexpr int64_t rows_per_task = 8;
  if (n_rows < 2 * rows_per_task || pool.num_threads() == 1) {
    fn(0, n_rows);
    return;
  }
  const int64_t n_tasks = (n_rows + rows_per_task - 1) / rows_per_task;
  pool.parallel_for(n_tasks, [&](int64_t task, int) {
    const int64_t r0 = task * rows_per_task;
    fn(r0, std::min(n_rows, r0 + rows_per_task));
  });
}

std::string seq_name(const batch_sequence& s, size_t index) {
  return "sequence " + std::to_string(s.seq_id) + " (batch entry " + std::to_string(index) + ")";
}

}  // namespace

llama_model::llama_model(const llama_model_file& file, kernels::thread_pool& pool,
                         const kernels::kernel_table* kt)
    : llama_model(file, pool, model_options{.kt = kt}) {}

llama_model::llama_model(const llama_model_file& file, kernels::thread_pool& pool,
                         model_options opts)
    : file_(&file),
      pool_(&pool),
      kt_(opts.kt ? opts.kt : &kernels::active_kernels()),
      mode_(opts.mode),
      fast_kt_(opts.fast_kt ? opts.fast_kt : &kernels::active_fast_kernels()),
      packed_(std::move(opts.packed)) {
  TROUPE_ASSERT(mode_ != arithmetic::fast || packed_ != nullptr);
}

void llama_model::project(std::initializer_list<projection> outs, const float* x, int64_t rows) {
  TROUPE_ASSERT(outs.size() <= 3);
  if (mode_ == arithmetic::fp32_reference) {
    for (const auto& o : outs) kernels::fp32_reference_matmul(*o.w, x, rows, o.y, *pool_);
    return;
  }
  // Fast mode: packed weights on the fast kernels; the rest (no packed layout, or another
  // mode) on the exact kernels.
  kernels::fast_matmul_output packed[3];
  kernels::matmul_output unpacked[3];
  size_t n_packed = 0, n_unpacked = 0;
  for (const auto& o : outs) {
    if (mode_ == arithmetic::fast && o.packed && o.packed->has_value())
      packed[n_packed++] = {&o.packed->value(), o.y};
    else
      unpacked[n_unpacked++] = {o.w, o.y};
  }
  if (n_packed) kernels::fast_matmul_multi(*fast_kt_, {packed, n_packed}, x, rows, *pool_);
  // The per-token Q4_K order applies to rows that are the step's tokens; other calls (logits of
  // some tokens) follow llama.cpp's rule for one mul_mat of those rows.
  const std::span<const uint8_t> q4_k_order =
      rows == n_tokens_ ? std::span<const uint8_t>(q4_k_gemm_order_.data(), static_cast<size_t>(rows))
                        : std::span<const uint8_t>();
  if (n_unpacked) kernels::matmul_multi(*kt_, {unpacked, n_unpacked}, x, rows, *pool_, q4_k_order);
}

layer_range llama_model::all_layers() const {
  return layer_range{0, static_cast<int32_t>(hparams().n_layer)};
}

paged_kv_shape llama_model::kv_shape(int64_t num_blocks, int32_t block_size) const {
  return kv_shape(num_blocks, block_size, all_layers());
}

paged_kv_shape llama_model::kv_shape(int64_t num_blocks, int32_t block_size,
                                     layer_range layers) const {
  const auto& hp = hparams();
  paged_kv_shape s;
  s.n_layer = layers.size();
  s.n_head_kv = static_cast<int32_t>(hp.n_head_kv);
  s.head_dim = static_cast<int32_t>(hp.head_dim);
  s.block_size = block_size;
  s.num_blocks = num_blocks;
  return s;
}

int64_t llama_model::num_logit_rows(std::span<const batch_sequence> batch) {
  int64_t rows = 0;
  for (const auto& s : batch) rows += s.all_logits ? static_cast<int64_t>(s.tokens.size()) : 1;
  return rows;
}

int64_t llama_model::num_hidden_rows(std::span<const batch_sequence> batch) {
  int64_t rows = 0;
  for (const auto& s : batch) rows += static_cast<int64_t>(s.tokens.size());
  return rows;
}

status llama_model::check(std::span<const batch_sequence> batch, layer_range layers,
                          const paged_kv_storage& kv, std::span<const float> hidden_in,
                          std::span<float> out) const {
  const auto& hp = hparams();
  const auto& ks = kv.shape();
  if (layers.first < 0 || layers.last > hp.n_layer || layers.first >= layers.last)
    return error{"forward: layer range [" + std::to_string(layers.first) + ", " +
                 std::to_string(layers.last) + ") is not a non-empty part of the model's " +
                 std::to_string(hp.n_layer) + " layers"};
  if (ks.n_layer != layers.size() || ks.n_head_kv != hp.n_head_kv || ks.head_dim != hp.head_dim)
    return error{"K/V storage shape (layers " + std::to_string(ks.n_layer) + ", kv heads " +
                 std::to_string(ks.n_head_kv) + ", head dim " + std::to_string(ks.head_dim) +
                 ") does not match the model"};
  if (batch.empty()) return error{"forward: empty batch"};
  for (size_t i = 0; i < batch.size(); ++i) {
    const auto& s = batch[i];
    if (s.tokens.empty()) return error{"forward: " + seq_name(s, i) + " has no tokens"};
    if (s.first_position < 0)
      return error{"forward: " + seq_name(s, i) + " has a negative position"};
    for (int32_t t : s.tokens)
      if (t < 0 || t >= hp.n_vocab)
        return error{"forward: " + seq_name(s, i) + ": token id " + std::to_string(t) +
                     " is outside the vocabulary (" + std::to_string(hp.n_vocab) + ")"};
    const int64_t last = static_cast<int64_t>(s.first_position) + s.tokens.size() - 1;
    const int64_t blocks_needed = last / ks.block_size + 1;
    if (static_cast<int64_t>(s.block_table.size()) < blocks_needed)
      return error{"forward: " + seq_name(s, i) + ": block table has " +
                   std::to_string(s.block_table.size()) + " blocks, position " +
                   std::to_string(last) + " needs " + std::to_string(blocks_needed)};
    for (int64_t b = 0; b < blocks_needed; ++b)
      if (s.block_table[b] < 0 || s.block_table[b] >= ks.num_blocks)
        return error{"forward: " + seq_name(s, i) + ": block id " +
                     std::to_string(s.block_table[b]) + " is outside the storage (" +
                     std::to_string(ks.num_blocks) + " blocks)"};
  }
  const int64_t hidden_size = num_hidden_rows(batch) * hp.n_embd;
  if (layers.first == 0 && !hidden_in.empty())
    return error{"forward: the first stage starts from token embeddings, not hidden states"};
  if (layers.first > 0 && static_cast<int64_t>(hidden_in.size()) != hidden_size)
    return error{"forward: hidden states hold " + std::to_string(hidden_in.size()) +
                 " floats, the batch needs " + std::to_string(hidden_size)};
  const bool last_stage = layers.last == hp.n_layer;
  const int64_t need = last_stage ? num_logit_rows(batch) * hp.n_vocab : hidden_size;
  if (static_cast<int64_t>(out.size()) < need)
    return error{std::string("forward: ") + (last_stage ? "logits" : "hidden state") +
                 " buffer holds " + std::to_string(out.size()) + " floats, the batch needs " +
                 std::to_string(need)};
  return {};
}

void llama_model::prepare_batch(std::span<const batch_sequence> batch) {
  n_tokens_ = 0;
  for (const auto& s : batch) n_tokens_ += static_cast<int64_t>(s.tokens.size());
  const size_t n_seqs = batch.size();
  n_seqs_ = static_cast<int64_t>(n_seqs);
  int32_t* tok = grow(tokens_, n_tokens_);
  int32_t* pos = grow(positions_, n_tokens_);
  int64_t* start = grow(token_start_, n_seqs + 1);
  const int32_t** tables = grow(block_tables_, n_seqs);
  int32_t* lens = grow(block_table_lens_, n_seqs);
  uint8_t* single = grow(single_token_order_, n_tokens_);
  uint8_t* grouped = grow(q4_k_gemm_order_, n_tokens_);
  int64_t t = 0;
  for (size_t i = 0; i < n_seqs; ++i) {
    const auto& s = batch[i];
    start[i] = t;
    tables[i] = s.block_table.data();
    lens[i] = static_cast<int32_t>(s.block_table.size());
    for (size_t j = 0; j < s.tokens.size(); ++j, ++t) {
      tok[t] = s.tokens[j];
      pos[t] = s.first_position + static_cast<int32_t>(j);
      single[t] = pos[t] >= s.sampled_from ? 1 : 0;
      grouped[t] = pos[t] < s.sampled_from - s.sampled_from % 4 ? 1 : 0;
    }
  }
  start[n_seqs] = t;

  const auto& hp = hparams();
  grow(hidden_, n_tokens_ * hp.n_embd);
  grow(normed_, n_tokens_ * hp.n_embd);
  grow(q_, n_tokens_ * hp.n_head * hp.head_dim);
  grow(k_, n_tokens_ * hp.n_head_kv * hp.head_dim);
  grow(v_, n_tokens_ * hp.n_head_kv * hp.head_dim);
  grow(attn_, n_tokens_ * hp.n_head * hp.head_dim);
  grow(proj_, n_tokens_ * hp.n_embd);
  grow(gate_, n_tokens_ * hp.n_ff);
  grow(up_, n_tokens_ * hp.n_ff);
  grow(rope_cache_, n_tokens_ * hp.n_rot);
}

status llama_model::forward(std::span<const batch_sequence> batch, paged_kv_storage& kv,
                            std::span<float> logits_out) {
  return forward_layers(batch, all_layers(), kv, {}, logits_out);
}

status llama_model::forward_layers(std::span<const batch_sequence> batch, layer_range layers,
                                   paged_kv_storage& kv, std::span<const float> hidden_in,
                                   std::span<float> out) {
  if (status st = check(batch, layers, kv, hidden_in, out); !st.ok()) return st;
  prepare_batch(batch);
  const auto& hp = hparams();
  if (layers.first == 0)
    kernels::get_rows(file_->weights.token_embd, tokens_.data(), n_tokens_, hidden_.data());
  else
    std::copy(hidden_in.begin(), hidden_in.end(), hidden_.begin());
  // One cos/sin table per step serves every layer of the stage, and Q and K alike.
  kernels::rope_fill_cache(positions_.data(), n_tokens_, static_cast<int32_t>(hp.n_rot),
                           hp.rope_freq_base, rope_cache_.data());
  if (fused_layers_usable(layers))
    run_layers_fused(layers, kv);
  else
    for (int32_t l = layers.first; l < layers.last; ++l) run_layer(l, l - layers.first, kv);
  if (layers.last == hp.n_layer)
    compute_logits(batch, out.data());
  else
    std::copy(hidden_.begin(), hidden_.begin() + n_tokens_ * hp.n_embd, out.begin());
  return {};
}

void llama_model::run_layer(int32_t layer, int32_t kv_layer, paged_kv_storage& kv) {
  const auto& hp = hparams();
  const auto& w = file_->weights.layers[layer];
  auto& pool = *pool_;
  const kernels::kernel_table& kt = *kt_;
  const int64_t T = n_tokens_;
  const int64_t n_embd = hp.n_embd;
  const int32_t n_head = static_cast<int32_t>(hp.n_head);
  const int32_t n_head_kv = static_cast<int32_t>(hp.n_head_kv);
  const int32_t head_dim = static_cast<int32_t>(hp.head_dim);
  const int32_t n_rot = static_cast<int32_t>(hp.n_rot);
  float* h = hidden_.data();
  float* xn = normed_.data();

  // ---- attention block ----
  const float* attn_norm = reinterpret_cast<const float*>(w.attn_norm.data);
  for_rows(pool, T, [&](int64_t r0, int64_t r1) {
    kernels::rms_norm(kt, h + r0 * n_embd, attn_norm, xn + r0 * n_embd, r1 - r0, n_embd,
                      hp.rms_eps);
  });
  trace("attn_norm", layer, xn, T, n_embd);
  // q: [T, n_head * head_dim]; k, v: [T, n_head_kv * head_dim]. One quantization of xn and one
  // pool dispatch for the three.
  const fast_layer_weights* fw = mode_ == arithmetic::fast ? &packed_->layer(layer) : nullptr;
  project({{&w.wq, fw ? &fw->wq : nullptr, q_.data()},
           {&w.wk, fw ? &fw->wk : nullptr, k_.data()},
           {&w.wv, fw ? &fw->wv : nullptr, v_.data()}},
          xn, T);
  for_rows(pool, T, [&](int64_t r0, int64_t r1) {
    const int64_t q_row = static_cast<int64_t>(n_head) * head_dim;
    const int64_t k_row = static_cast<int64_t>(n_head_kv) * head_dim;
    kernels::rope_apply(q_.data() + r0 * q_row, r1 - r0, n_head, head_dim, n_rot,
                        rope_cache_.data() + r0 * n_rot);
    kernels::rope_apply(k_.data() + r0 * k_row, r1 - r0, n_head_kv, head_dim, n_rot,
                        rope_cache_.data() + r0 * n_rot);
  });
  trace("Qcur", layer, q_.data(), T, static_cast<int64_t>(n_head) * head_dim);
  trace("Kcur", layer, k_.data(), T, static_cast<int64_t>(n_head_kv) * head_dim);
  trace("Vcur", layer, v_.data(), T, static_cast<int64_t>(n_head_kv) * head_dim);

  kernels::kv_layer_view view;
  view.k = kv.k(kv_layer);
  view.v = kv.v(kv_layer);
  view.num_blocks = kv.num_blocks();
  view.block_size = kv.block_size();
  view.n_head_kv = n_head_kv;
  view.head_dim = head_dim;
  kernels::attention_batch ab;
  ab.token_start = token_start_.data();
  ab.positions = positions_.data();
  ab.block_tables = block_tables_.data();
  ab.block_table_lens = block_table_lens_.data();
  ab.n_seqs = n_seqs_;
  ab.single_token_order = single_token_order_.data();
  kernels::store_kv(view, ab, k_.data(), v_.data());
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  switch (mode_) {
    case arithmetic::llama_cpp_exact:
      kernels::paged_attention(kt, view, ab, q_.data(), n_head, scale, attn_.data(), pool);
      break;
    case arithmetic::fast:
      kernels::paged_attention_fast(view, ab, q_.data(), n_head, scale, attn_.data(), pool);
      break;
    case arithmetic::fp32_reference:  // plain fp32, std::exp, two-pass softmax
      kernels::paged_attention_fast(kernels::fast_attention_variant::scalar, view, ab, q_.data(),
                                    n_head, scale, attn_.data(), pool);
      break;
  }
  trace("kqv_out", layer, attn_.data(), T, static_cast<int64_t>(n_head) * head_dim);
  project({{&w.wo, fw ? &fw->wo : nullptr, proj_.data()}}, attn_.data(), T);  // [T, n_embd]
  trace("attn_out", layer, proj_.data(), T, n_embd);
  kernels::add_inplace(h, proj_.data(), T * n_embd);
  trace("ffn_inp", layer, h, T, n_embd);

  // ---- feed-forward block (SwiGLU) ----
  const float* ffn_norm = reinterpret_cast<const float*>(w.ffn_norm.data);
  for_rows(pool, T, [&](int64_t r0, int64_t r1) {
    kernels::rms_norm(kt, h + r0 * n_embd, ffn_norm, xn + r0 * n_embd, r1 - r0, n_embd,
                      hp.rms_eps);
  });
  trace("ffn_norm", layer, xn, T, n_embd);
  project({{&w.w_gate, fw ? &fw->w_gate : nullptr, gate_.data()},
           {&w.w_up, fw ? &fw->w_up : nullptr, up_.data()}},
          xn, T);  // [T, n_ff] each
  trace("ffn_gate", layer, gate_.data(), T, hp.n_ff);
  trace("ffn_up", layer, up_.data(), T, hp.n_ff);
  for_rows(pool, T, [&](int64_t r0, int64_t r1) {
    kernels::silu_mul(kt, gate_.data() + r0 * hp.n_ff, up_.data() + r0 * hp.n_ff,
                      gate_.data() + r0 * hp.n_ff, (r1 - r0) * hp.n_ff);
  });
  trace("ffn_swiglu", layer, gate_.data(), T, hp.n_ff);
  project({{&w.w_down, fw ? &fw->w_down : nullptr, proj_.data()}}, gate_.data(),
          T);  // [T, n_embd]
  trace("ffn_out", layer, proj_.data(), T, n_embd);
  kernels::add_inplace(h, proj_.data(), T * n_embd);
  trace("l_out", layer, h, T, n_embd);
}

void llama_model::compute_logits(std::span<const batch_sequence> batch, float* logits_out) {
  const auto& hp = hparams();
  const int64_t n_embd = hp.n_embd;
  const int64_t rows = num_logit_rows(batch);
  float* sel = grow(last_rows_, rows * n_embd);
  // Gather the rows that need logits (usually one per sequence), so the LM head -- the largest
  // matrix -- only runs on those.
  int64_t r = 0, t = 0;
  for (const auto& s : batch) {
    const int64_t n = static_cast<int64_t>(s.tokens.size());
    const int64_t first = s.all_logits ? t : t + n - 1;
    const int64_t count = s.all_logits ? n : 1;
    std::copy(hidden_.data() + first * n_embd, hidden_.data() + (first + count) * n_embd,
              sel + r * n_embd);
    r += count;
    t += n;
  }
  const float* out_norm = reinterpret_cast<const float*>(file_->weights.output_norm.data);
  for_rows(*pool_, rows, [&](int64_t r0, int64_t r1) {
    kernels::rms_norm(*kt_, sel + r0 * n_embd, out_norm, sel + r0 * n_embd, r1 - r0, n_embd,
                      hp.rms_eps);
  });
  trace("result_norm", -1, sel, rows, n_embd);
  project({{&file_->weights.output, mode_ == arithmetic::fast ? &packed_->output() : nullptr,
            logits_out}},
          sel, rows);  // [rows, n_vocab]
}

}  // namespace troupe::engine
