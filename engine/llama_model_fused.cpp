// The fast arithmetic's layers in one pool dispatch per step (issue 9, point 4).
//
// run_layer dispatches each matmul and the attention to the pool separately (~5 dispatches a
// layer, ~150 a token for the default model) and runs the small ops between them on the
// calling thread while the workers spin. Here the whole stage is ONE parallel_for over the
// pool's threads, and every op is a phase of tasks (kernels/cpu/task_phases.hpp) that any
// participant may claim:
//    0  rms_norm(h) * attn_norm and its act16 quantization      rows
//    1  q, k, v = Wq a, Wk a, Wv a                              panel runs x token chunks
//    2  RoPE on q and k, K/V store                              sequences
//    3  attention                                               (sequence, kv head, tokens)
//    4  act16 quantization of the attention output              rows
//    5  h += Wo o      (the add in the matmul task's epilogue)  panel runs x token chunks
//    6  rms_norm(h) * ffn_norm and its quantization             rows
//    7  g = silu(Wgate f) * Wup f  (both matmuls of a panel run, then silu*mul on it)
//    8  act16 quantization of g                                 rows
//    9  h += Wdown g   (the add in the epilogue)                panel runs x token chunks
// Each op computes exactly what run_layer's does, element by element (same kernels, same
// operands, same operation per output), so the bits are run_layer's in fast mode: only which
// thread computes what changes, and nothing computed depends on that.
#include <algorithm>
#include <cmath>

#include "engine/fast_weights.hpp"
#include "engine/llama_model.hpp"
#include "kernels/cpu/ops.hpp"

namespace troupe::engine {
namespace {

constexpr int k_phases_per_layer = 10;
// Rows per task of the row-wise phases: one task for a decode step, a split for prefill.
constexpr int64_t k_rows_per_task = 8;

// n act16 rows of k columns in v, 64-byte aligned.
uint8_t* act_rows(std::vector<uint8_t>& v, int64_t n, int64_t k) {
  const size_t need = static_cast<size_t>(kernels::act16_row_bytes(k) * n + 64);
  if (v.size() < need) v.resize(need);
  return v.data() + (64 - reinterpret_cast<uintptr_t>(v.data()) % 64) % 64;
}

int64_t row_tasks(int64_t rows) { return (rows + k_rows_per_task - 1) / k_rows_per_task; }

}  // namespace

bool llama_model::fused_layers_usable(layer_range layers) const {
  if (mode_ != arithmetic::fast || trace_) return false;  // traces need run_layer's buffers
  for (int32_t l = layers.first; l < layers.last; ++l) {
    const fast_layer_weights& fw = packed_->layer(l);
    for (const auto* w : {&fw.wq, &fw.wk, &fw.wv, &fw.wo, &fw.w_gate, &fw.w_up, &fw.w_down})
      if (!w->has_value()) return false;
  }
  return true;
}

void llama_model::run_layers_fused(layer_range layers, paged_kv_storage& kv) {
  const auto& hp = hparams();
  const kernels::kernel_table& kt = *kt_;
  const kernels::fast_kernel_table& fkt = *fast_kt_;
  const int64_t T = n_tokens_;
  const int64_t n_embd = hp.n_embd;
  const int32_t n_head = static_cast<int32_t>(hp.n_head);
  const int32_t n_head_kv = static_cast<int32_t>(hp.n_head_kv);
  const int32_t head_dim = static_cast<int32_t>(hp.head_dim);
  const int32_t n_rot = static_cast<int32_t>(hp.n_rot);
  const int64_t n_ff = hp.n_ff;
  const int64_t q_row = static_cast<int64_t>(n_head) * head_dim;
  const int64_t k_row = static_cast<int64_t>(n_head_kv) * head_dim;
  const int threads = pool_->num_threads();
  float* h = hidden_.data();
  float* xn = normed_.data();

  uint8_t* a_embd = act_rows(act_embd_, T, n_embd);
  uint8_t* a_attn = act_rows(act_attn_, T, q_row);
  uint8_t* a_ff = act_rows(act_ff_, T, n_ff);
  const uint64_t arb_embd = kernels::act16_row_bytes(n_embd);
  const uint64_t arb_attn = kernels::act16_row_bytes(q_row);
  const uint64_t arb_ff = kernels::act16_row_bytes(n_ff);

  kernels::attention_batch ab;
  ab.token_start = token_start_.data();
  ab.positions = positions_.data();
  ab.block_tables = block_tables_.data();
  ab.block_table_lens = block_table_lens_.data();
  ab.n_seqs = n_seqs_;
  ab.single_token_order = single_token_order_.data();
  auto layer_view = [&](int32_t kv_layer) {
    kernels::kv_layer_view view;
    view.k = kv.k(kv_layer);
    view.v = kv.v(kv_layer);
    view.num_blocks = kv.num_blocks();
    view.block_size = kv.block_size();
    view.n_head_kv = n_head_kv;
    view.head_dim = head_dim;
    return view;
  };
  // The task list is the same for every layer (it depends on the batch only); run() is given
  // each layer's pages.
  attn_tasks_.build(kernels::active_fast_attention_variant(), layer_view(0), ab, q_.data(),
                    n_head, 1.0f / std::sqrt(static_cast<float>(head_dim)), attn_.data());

  // The matmul splits, the same for every layer (they depend on shapes only).
  const fast_layer_weights& f0 = packed_->layer(layers.first);
  const kernels::fast_matmul_output qkv0[] = {
      {&*f0.wq, q_.data()}, {&*f0.wk, k_.data()}, {&*f0.wv, v_.data()}};
  const kernels::fast_matmul_output o0[] = {{&*f0.wo, proj_.data()}};
  const kernels::fast_matmul_output gate0[] = {{&*f0.w_gate, gate_.data()}};
  const kernels::fast_matmul_output down0[] = {{&*f0.w_down, proj_.data()}};
  const kernels::fast_matmul_split qkv_split(qkv0, T, threads), o_split(o0, T, threads),
      gate_split(gate0, T, threads), down_split(down0, T, threads);
  const int64_t n_row_tasks = row_tasks(T);
  auto norm_quantize = [&](const float* norm_w, int64_t task) {
    const int64_t r0 = task * k_rows_per_task, r1 = std::min(T, r0 + k_rows_per_task);
    kernels::rms_norm(kt, h + r0 * n_embd, norm_w, xn + r0 * n_embd, r1 - r0, n_embd,
                      hp.rms_eps);
    kernels::fast_quantize_rows(fkt, xn + r0 * n_embd, r1 - r0, n_embd,
                                a_embd + static_cast<uint64_t>(r0) * arb_embd);
  };
  auto quantize = [&](const float* x, int64_t k, uint8_t* a, int64_t task) {
    const int64_t r0 = task * k_rows_per_task, r1 = std::min(T, r0 + k_rows_per_task);
    kernels::fast_quantize_rows(fkt, x + r0 * k, r1 - r0, k,
                                a + static_cast<uint64_t>(r0) * kernels::act16_row_bytes(k));
  };
  // h += y for rows [p0 * 16, ...) of panels [p0, p1) and tokens [t0, t1): add_inplace's add.
  auto add_residual = [&](const kernels::packed_weight& w, const float* y, int64_t p0, int64_t p1,
                          int64_t t0, int64_t t1) {
    const int64_t r0 = p0 * kernels::k_panel_rows;
    const int64_t r1 = std::min(w.n(), p1 * kernels::k_panel_rows);
    for (int64_t t = t0; t < t1; ++t)
      kernels::add_inplace(h + t * n_embd + r0, y + t * n_embd + r0, r1 - r0);
  };

  phases_.reset(k_phases_per_layer * layers.size());
  // Which participant runs which task is decided by the claims; the participant index is not
  // used (every participant runs every phase in order).
  pool_->parallel_for(threads, [&](int64_t, int) {
    for (int32_t l = layers.first; l < layers.last; ++l) {
      const int base = k_phases_per_layer * (l - layers.first);
      // This layer's matrices in the splits made from the first layer's (same shapes).
      const auto& w = file_->weights.layers[l];
      const fast_layer_weights& fw = packed_->layer(l);
      const kernels::kv_layer_view view = layer_view(l - layers.first);
      const kernels::fast_matmul_output qkv_w[] = {
          {&*fw.wq, q_.data()}, {&*fw.wk, k_.data()}, {&*fw.wv, v_.data()}};
      const kernels::fast_matmul_output o_w[] = {{&*fw.wo, proj_.data()}};
      const kernels::fast_matmul_output gate_w[] = {{&*fw.w_gate, gate_.data()}};
      const kernels::fast_matmul_output down_w[] = {{&*fw.w_down, proj_.data()}};

      phases_.run(base + 0, n_row_tasks, [&](int64_t i) {
        norm_quantize(reinterpret_cast<const float*>(w.attn_norm.data), i);
      });
      phases_.run(base + 1, qkv_split.n_tasks(), [&](int64_t i) {
        qkv_split.run(fkt, qkv_w, i, a_embd, arb_embd, [](size_t, int64_t, int64_t, int64_t, int64_t) {});
      });
      phases_.run(base + 2, n_seqs_, [&](int64_t s) {
        const int64_t b = token_start_[s], e = token_start_[s + 1];
        kernels::rope_apply(q_.data() + b * q_row, e - b, n_head, head_dim, n_rot,
                            rope_cache_.data() + b * n_rot);
        kernels::rope_apply(k_.data() + b * k_row, e - b, n_head_kv, head_dim, n_rot,
                            rope_cache_.data() + b * n_rot);
        kernels::attention_batch one = ab;  // sequence s alone; rows stay absolute
        one.n_seqs = 1;
        one.token_start = token_start_.data() + s;
        one.block_tables = block_tables_.data() + s;
        one.block_table_lens = block_table_lens_.data() + s;
        kernels::store_kv(view, one, k_.data(), v_.data());
      });
      phases_.run(base + 3, attn_tasks_.size(), [&](int64_t i) { attn_tasks_.run(i, view); });
      phases_.run(base + 4, n_row_tasks, [&](int64_t i) { quantize(attn_.data(), q_row, a_attn, i); });
      phases_.run(base + 5, o_split.n_tasks(), [&](int64_t i) {
        o_split.run(fkt, o_w, i, a_attn, arb_attn,
                    [&](size_t, int64_t p0, int64_t p1, int64_t t0, int64_t t1) {
                      add_residual(*fw.wo, proj_.data(), p0, p1, t0, t1);
                    });
      });
      phases_.run(base + 6, n_row_tasks, [&](int64_t i) {
        norm_quantize(reinterpret_cast<const float*>(w.ffn_norm.data), i);
      });
      phases_.run(base + 7, gate_split.n_tasks(), [&](int64_t i) {
        gate_split.run(fkt, gate_w, i, a_embd, arb_embd,
                       [&](size_t, int64_t p0, int64_t p1, int64_t t0, int64_t t1) {
                         // Wup on the same panels and tokens, then silu*mul on those rows.
                         fkt.gemm(*fw.w_up, p0, p1, a_embd + static_cast<uint64_t>(t0) * arb_embd,
                                  arb_embd, t1 - t0, up_.data() + t0 * n_ff, n_ff);
                         const int64_t r0 = p0 * kernels::k_panel_rows;
                         const int64_t r1 = std::min(n_ff, p1 * kernels::k_panel_rows);
                         for (int64_t t = t0; t < t1; ++t)
                           kernels::silu_mul(kt, gate_.data() + t * n_ff + r0,
                                             up_.data() + t * n_ff + r0,
                                             gate_.data() + t * n_ff + r0, r1 - r0);
                       });
      });
      phases_.run(base + 8, n_row_tasks, [&](int64_t i) { quantize(gate_.data(), n_ff, a_ff, i); });
      phases_.run(base + 9, down_split.n_tasks(), [&](int64_t i) {
        down_split.run(fkt, down_w, i, a_ff, arb_ff,
                       [&](size_t, int64_t p0, int64_t p1, int64_t t0, int64_t t1) {
                         add_residual(*fw.w_down, proj_.data(), p0, p1, t0, t1);
                       });
      });
    }
  });
}

}  // namespace troupe::engine
