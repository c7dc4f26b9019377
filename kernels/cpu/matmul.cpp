#include "kernels/cpu/matmul.hpp"

#include <algorithm>
#include <vector>

#include "troupe/result.hpp"

namespace troupe::kernels {

namespace {

struct gemm_plan {
  gemm_fn fn = nullptr;
  bool quantized = false;  // takes act rows (kernel_table.hpp) rather than float x
};

gemm_plan plan_for(const kernel_table& kt, ggml_type type) {
  switch (type) {
    case ggml_type::f32: return {kt.gemm_f32, false};
    case ggml_type::f16: return {kt.gemm_f16, false};
    case ggml_type::bf16: return {kt.gemm_bf16, false};
    case ggml_type::q4_0: return {kt.gemm_q4_0, true};
    case ggml_type::q4_1: return {kt.gemm_q4_1, true};
    case ggml_type::q8_0: return {kt.gemm_q8_0, true};
    default: return {};
  }
}

// Tokens per tile of a task: the act rows of a tile (64 x ~1 KiB for K = 1536) stay in L2
// while the task's weight rows stream past them.
constexpr int64_t k_token_chunk = 64;
constexpr size_t k_max_outputs = 8;

}  // namespace

void matmul(const tensor_view& w, const float* x, int64_t n_tokens, float* y, thread_pool& pool) {
  matmul(active_kernels(), w, x, n_tokens, y, pool);
}

void matmul(const kernel_table& kt, const tensor_view& w, const float* x, int64_t n_tokens,
            float* y, thread_pool& pool) {
  const matmul_output out{&w, y};
  matmul_multi(kt, std::span<const matmul_output>(&out, 1), x, n_tokens, pool);
}

void matmul_multi(std::span<const matmul_output> outputs, const float* x, int64_t n_tokens,
                  thread_pool& pool) {
  matmul_multi(active_kernels(), outputs, x, n_tokens, pool);
}

void matmul_multi(const kernel_table& kt, std::span<const matmul_output> outputs, const float* x,
                  int64_t n_tokens, thread_pool& pool) {
  TROUPE_ASSERT(n_tokens >= 0);
  TROUPE_ASSERT(!outputs.empty() && outputs.size() <= k_max_outputs);
  if (n_tokens == 0) return;
  const int64_t k = outputs[0].w->ne0;
  gemm_plan plans[k_max_outputs];
  bool any_quantized = false;
  for (size_t i = 0; i < outputs.size(); ++i) {
    plans[i] = plan_for(kt, outputs[i].w->type);
    TROUPE_ASSERT(plans[i].fn != nullptr);  // unsupported weight type: the loader rejects these
    TROUPE_ASSERT(outputs[i].w->ne0 == k);
    any_quantized = any_quantized || plans[i].quantized;
  }

  const uint64_t f_row_bytes = static_cast<uint64_t>(k) * sizeof(float);
  const uint64_t q_row_bytes = act_row_bytes(k);
  const uint8_t* q = nullptr;
  if (any_quantized) {
    TROUPE_ASSERT(k % 32 == 0);
    // 64 bytes of slack to align the start: the kernels load act rows with aligned loads.
    thread_local std::vector<uint8_t> scratch;
    const uint64_t need = q_row_bytes * static_cast<uint64_t>(n_tokens) + 64;
    if (scratch.size() < need) scratch.resize(need);
    uint8_t* qw = scratch.data() + (64 - reinterpret_cast<uintptr_t>(scratch.data()) % 64) % 64;
    // Quantizing is ~1% of the product; only worth the pool for prefill-sized batches.
    if (n_tokens >= 16) {
      pool.parallel_for(n_tokens, [&](int64_t t, int) {
        kt.quantize_row_act(x + t * k, qw + static_cast<uint64_t>(t) * q_row_bytes, k);
      });
    } else {
      for (int64_t t = 0; t < n_tokens; ++t)
        kt.quantize_row_act(x + t * k, qw + static_cast<uint64_t>(t) * q_row_bytes, k);
    }
    q = qw;
  }

  // Row chunks: enough tasks (~8 per thread over all outputs) to balance, each a multiple of
  // 8 rows (the quantized kernels' row group: a chunk of 4 * odd rows would end in a half-used
  // group) and at most 64 rows so a chunk's weights stay in L1/L2 across the token tiles.
  // The split never changes a result: every output is computed the same way in any chunk
  // (simd_kernels.inl, batch invariance).
  int64_t total_rows = 0;
  for (const auto& o : outputs) total_rows += o.w->ne1;
  if (total_rows == 0) return;
  const int64_t threads = pool.num_threads();
  int64_t row_chunk = (total_rows + 8 * threads - 1) / (8 * threads);
  row_chunk = std::clamp<int64_t>((row_chunk + 7) / 8 * 8, 8, 64);
  int64_t chunk_start[k_max_outputs + 1] = {0};  // first row chunk of each output
  for (size_t i = 0; i < outputs.size(); ++i)
    chunk_start[i + 1] = chunk_start[i] + (outputs[i].w->ne1 + row_chunk - 1) / row_chunk;
  const int64_t n_row_chunks = chunk_start[outputs.size()];
  const int64_t n_token_chunks = (n_tokens + k_token_chunk - 1) / k_token_chunk;

  pool.parallel_for(n_row_chunks * n_token_chunks, [&](int64_t task, int) {
    const int64_t rc = task % n_row_chunks;
    const int64_t tc = task / n_row_chunks;
    size_t i = 0;
    while (rc >= chunk_start[i + 1]) ++i;
    const tensor_view& w = *outputs[i].w;
    const int64_t n = w.ne1;
    const int64_t r0 = (rc - chunk_start[i]) * row_chunk;
    const int64_t rows = std::min(row_chunk, n - r0);
    const int64_t t0 = tc * k_token_chunk;
    const int64_t toks = std::min(k_token_chunk, n_tokens - t0);
    const uint64_t arb = plans[i].quantized ? q_row_bytes : f_row_bytes;
    const uint8_t* a = plans[i].quantized ? q : reinterpret_cast<const uint8_t*>(x);
    plans[i].fn(k, w.row(r0), w.row_bytes, rows, a + static_cast<uint64_t>(t0) * arb, arb, toks,
                outputs[i].y + t0 * n + r0, n);
  });
}

}  // namespace troupe::kernels
