// Fast paged attention (issue 9's "fast" arithmetic mode): fp32 throughout, batch-invariant by
// construction, with query tiles that let every widened K/V row serve many queries.
//
// Same inputs, page layout and causal/GQA semantics as kernels::paged_attention
// (paged_attention.hpp: read it first); store_kv is unchanged. What differs is the arithmetic:
//   - q stays fp32 (multiplied by scale once), K/V are widened from their fp16 pages exactly;
//   - scores, softmax and the weighted sum of V are fp32 (no fp16 rounding of q or weights);
//   - batch.single_token_order is ignored: every token uses the one order below.
//
// ---- the arithmetic of one query (token at position p, query head h), SIMD variants ----
// Keys are visited in fixed tiles of ABSOLUTE positions [0, T), [T, 2T), ... (T =
// k_fast_attention_key_tile), up to the tile holding p, with an online softmax:
//   s_k   = sum_d (q_d * scale) * K[k][d]          one fma chain, d = 0, 1, ..., head_dim-1
//   m'    = max(m, max_{k in tile, k <= p} s_k)
//   alpha = m' == m ? 1 : exp(m - m')              (exp(-inf) = 0 on the first tile)
//   l     = l * alpha, then l += exp(s_k - m') for the tile's keys k <= p in order
//   o[d]  = o[d] * alpha, then o[d] = fma(exp(s_k - m'), V[k][d], o[d]) for k <= p in order
//   out   = o / l
// Keys after p take no part at all. Nothing in this list depends on the other queries of the
// call, on how they are grouped into tasks, on block_size, on the number of threads, nor on
// whether the token is computed as a decode step, inside a prefill chunk (any chunking), or
// again after preemption.
//
// ---- variants and guarantees ----
// Three variants, picked once per process from detected_cpu_features() (TROUPE_CPU caps it):
// avx512 (AVX-512 F/BW/VL/DQ + VNNI CPUs), avx2 (AVX2 + FMA + F16C), scalar (the reference).
//   - Batch invariance, bit for bit, within a variant: a query's output bits depend only on
//     q, scale, its position and the K/V values at positions <= p (tested in
//     tests/kernels/test_fast_attention.cpp against every way of batching listed above).
//   - avx2 and avx512 give the same bits as each other where both run SIMD (the same
//     operations lane by lane, exp a Cephes polynomial; tested). The scalar variant does NOT:
//     it uses std::exp and a plain two-pass softmax over all keys (max, then sequential sums
//     in position order). In fast mode a process uses one variant throughout (fp32-reference
//     mode runs the scalar one), and a stage restarted on the same machine computes the same
//     bits.
//   - Every variant agrees with attention computed in double precision to 1.5e-7..3.5e-7
//     relative RMS error over the output (fp32 rounding; the test bound is 1e-6).
//   - The SIMD variants need head_dim % 16 == 0 (avx512) or % 8 == 0 (avx2) and at most 64
//     query heads per kv head; other shapes use the scalar variant (chosen by the model shape
//     only, so still invariant).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cpu/paged_attention.hpp"
#include "kernels/cpu/thread_pool.hpp"

namespace troupe::kernels {

// T above: the key tile of the SIMD variants' online softmax.
constexpr int32_t k_fast_attention_key_tile = 32;
// Consecutive tokens of one sequence in one task (times the query heads of one kv head).
constexpr int32_t k_fast_attention_query_tokens = 16;

enum class fast_attention_variant { scalar, avx2, avx512 };

const char* fast_attention_variant_name(fast_attention_variant v);

// The variants this CPU can run (scalar first), honouring TROUPE_CPU. Tests loop over these.
std::vector<fast_attention_variant> available_fast_attention_variants();

// The fastest available variant; chosen once, thread-safe.
fast_attention_variant active_fast_attention_variant();

// out[t][h] = softmax attention of q[t][h] over positions 0..positions[t] of its sequence, in
// the arithmetic above. q, out: [n_tokens, n_head, head_dim] float; group = n_head /
// kv.n_head_kv. REQUIRES: n_head % kv.n_head_kv == 0; out does not overlap q; every block a
// query reaches is in its table and < kv.num_blocks (checked: aborts); positions < 2^24.
// Parallel on pool over tasks of (sequence, kv head, up to k_fast_attention_query_tokens
// consecutive tokens) with all query heads of that kv head, largest first. The calling thread
// drives the pool; scratch is per thread (thread_local), so any pool may be used.
void paged_attention_fast(const kv_layer_view& kv, const attention_batch& batch, const float* q,
                          int32_t n_head, float scale, float* out, thread_pool& pool);
// The same with a given variant. REQUIRES: v is in available_fast_attention_variants().
void paged_attention_fast(fast_attention_variant v, const kv_layer_view& kv,
                          const attention_batch& batch, const float* q, int32_t n_head,
                          float scale, float* out, thread_pool& pool);

// The tasks of paged_attention_fast, for a caller that runs them inside its own pool dispatch
// (task_phases): build() makes the task list (same checks, same tasks, same bits), then run(i)
// for every i < size(), on any threads. Keep the object to reuse its list's memory; the
// pointers given to build() must stay valid while tasks run.
class fast_attention_tasks {
 public:
  void build(fast_attention_variant v, const kv_layer_view& kv, const attention_batch& batch,
             const float* q, int32_t n_head, float scale, float* out);
  int64_t size() const { return static_cast<int64_t>(tasks_.size()); }
  void run(int64_t i) const { run(i, kv_); }
  // The same task on other pages of build()'s shape (another layer: the list depends only on
  // the batch and the shape).
  void run(int64_t i, const kv_layer_view& kv) const;

 private:
  struct task {
    int32_t seq;
    int32_t kv_head;
    int64_t t0;
    int32_t n_tok;
    int64_t cost;  // keys x tokens, to hand out the big tasks first
  };
  std::vector<task> tasks_;
  fast_attention_variant variant_ = fast_attention_variant::scalar;
  kv_layer_view kv_;
  attention_batch batch_;
  const float* q_ = nullptr;
  float* out_ = nullptr;
  float scale_ = 1.0f;
  int32_t group_ = 0;
  int32_t max_n_pos_ = 0;
  bool simd_ = false;
  int64_t scratch_floats_ = 0;
};

}  // namespace troupe::kernels
