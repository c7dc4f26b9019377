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

// Tokens per tile of a task: the quantized activations of a tile (64 x ~1 KiB for K = 1536)
// stay in L2 while the task's weight rows stream past them.
constexpr int64_t k_token_chunk = 64;

}  // namespace

void matmul(const tensor_view& w, const float* x, int64_t n_tokens, float* y, thread_pool& pool) {
  matmul(active_kernels(), w, x, n_tokens, y, pool);
}

void matmul(const kernel_table& kt, const tensor_view& w, const float* x, int64_t n_tokens,
            float* y, thread_pool& pool) {
  const gemm_plan plan = plan_for(kt, w.type);
  TROUPE_ASSERT(plan.fn != nullptr);  // unsupported weight type: the loader rejects these
  TROUPE_ASSERT(n_tokens >= 0);
  const int64_t k = w.ne0;
  const int64_t n = w.ne1;
  if (n_tokens == 0 || n == 0) return;

  const uint8_t* a = reinterpret_cast<const uint8_t*>(x);
  uint64_t a_row_bytes = static_cast<uint64_t>(k) * sizeof(float);
  if (plan.quantized) {
    TROUPE_ASSERT(k % 32 == 0);
    a_row_bytes = act_row_bytes(k);
    // 64 bytes of slack to align the start: the kernels load act rows with aligned loads.
    thread_local std::vector<uint8_t> scratch;
    const uint64_t need = a_row_bytes * static_cast<uint64_t>(n_tokens) + 64;
    if (scratch.size() < need) scratch.resize(need);
    uint8_t* q = scratch.data() + (64 - reinterpret_cast<uintptr_t>(scratch.data()) % 64) % 64;
    // Quantizing is ~1% of the product; only worth the pool for prefill-sized batches.
    if (n_tokens >= 16) {
      pool.parallel_for(n_tokens, [&](int64_t t, int) {
        kt.quantize_row_act(x + t * k, q + static_cast<uint64_t>(t) * a_row_bytes, k);
      });
    } else {
      for (int64_t t = 0; t < n_tokens; ++t)
        kt.quantize_row_act(x + t * k, q + static_cast<uint64_t>(t) * a_row_bytes, k);
    }
    a = q;
  }

  // Row chunks: enough tasks (~8 per thread) to balance, each a multiple of 4 rows (the SIMD
  // tile height) and at most 64 rows so a chunk's weights stay in L1/L2 across token tiles.
  const int64_t threads = pool.num_threads();
  int64_t row_chunk = (n + 8 * threads - 1) / (8 * threads);
  row_chunk = std::clamp<int64_t>((row_chunk + 3) / 4 * 4, 4, 64);
  const int64_t n_row_chunks = (n + row_chunk - 1) / row_chunk;
  const int64_t n_token_chunks = (n_tokens + k_token_chunk - 1) / k_token_chunk;

  pool.parallel_for(n_row_chunks * n_token_chunks, [&](int64_t task, int) {
    const int64_t rc = task % n_row_chunks;
    const int64_t tc = task / n_row_chunks;
    const int64_t r0 = rc * row_chunk;
    const int64_t rows = std::min(row_chunk, n - r0);
    const int64_t t0 = tc * k_token_chunk;
    const int64_t toks = std::min(k_token_chunk, n_tokens - t0);
    plan.fn(k, w.row(r0), w.row_bytes, rows, a + static_cast<uint64_t>(t0) * a_row_bytes,
            a_row_bytes, toks, y + t0 * n + r0, n);
  });
}

}  // namespace troupe::kernels
