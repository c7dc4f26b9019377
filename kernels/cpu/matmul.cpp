#include "kernels/cpu/matmul.hpp"

#include <algorithm>
#include <vector>

#include "troupe/result.hpp"

namespace troupe::kernels {

namespace {

// What a gemm reads as activations (kernel_table.hpp): float x, act rows (Q8_0/Q8_1 values) or
// act_k rows (Q8_K blocks, for the K-quants).
enum class act_kind { f32, q8, q8_k };

struct gemm_plan {
  gemm_fn fn = nullptr;
  act_kind act = act_kind::f32;
  gemm_fn fn_grouped = nullptr;  // repacked Q4_K: the order of llama.cpp's gemm (4-token groups)
};

gemm_plan plan_for(const kernel_table& kt, const tensor_view& w) {
  switch (w.type) {
    case ggml_type::f32: return {kt.gemm_f32, act_kind::f32};
    case ggml_type::f16: return {kt.gemm_f16, act_kind::f32};
    case ggml_type::bf16: return {kt.gemm_bf16, act_kind::f32};
    case ggml_type::q4_0: return {kt.gemm_q4_0, act_kind::q8};
    case ggml_type::q4_1: return {kt.gemm_q4_1, act_kind::q8};
    case ggml_type::q8_0: return {kt.gemm_q8_0, act_kind::q8};
    case ggml_type::q5_0: return {kt.gemm_q5_0, act_kind::q8};
    case ggml_type::q5_1: return {kt.gemm_q5_1, act_kind::q8};
    // llama.cpp's x86 build repacks Q4_K matrices of 8k rows and sums them in another order
    // (kernel_table.hpp, gemm_q4_k_x8); the others go through its vec_dot.
    case ggml_type::q4_k:
      if (w.ne1 % 8 == 0) return {kt.gemm_q4_k_x8, act_kind::q8_k, kt.gemm_q4_k_x8x4};
      return {kt.gemm_q4_k, act_kind::q8_k};
    case ggml_type::q5_k: return {kt.gemm_q5_k, act_kind::q8_k};
    case ggml_type::q6_k: return {kt.gemm_q6_k, act_kind::q8_k};
    default: return {};
  }
}

// Quantizes the n_tokens rows of x into a 64-byte aligned buffer of `scratch`, row_bytes apart.
// Quantizing is ~1% of the product; only worth the pool for prefill-sized batches.
const uint8_t* quantize_rows(void (*quantize)(const float*, uint8_t*, int64_t), const float* x,
                             int64_t k, int64_t n_tokens, uint64_t row_bytes,
                             std::vector<uint8_t>& scratch, thread_pool& pool) {
  // 64 bytes of slack to align the start: the kernels load act rows with aligned loads.
  const uint64_t need = row_bytes * static_cast<uint64_t>(n_tokens) + 64;
  if (scratch.size() < need) scratch.resize(need);
  uint8_t* qw = scratch.data() + (64 - reinterpret_cast<uintptr_t>(scratch.data()) % 64) % 64;
  if (n_tokens >= 16) {
    pool.parallel_for(n_tokens, [&](int64_t t, int) {
      quantize(x + t * k, qw + static_cast<uint64_t>(t) * row_bytes, k);
    });
  } else {
    for (int64_t t = 0; t < n_tokens; ++t) quantize(x + t * k, qw + static_cast<uint64_t>(t) * row_bytes, k);
  }
  return qw;
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
                  thread_pool& pool, std::span<const uint8_t> q4_k_gemm_order) {
  matmul_multi(active_kernels(), outputs, x, n_tokens, pool, q4_k_gemm_order);
}

void matmul_multi(const kernel_table& kt, std::span<const matmul_output> outputs, const float* x,
                  int64_t n_tokens, thread_pool& pool, std::span<const uint8_t> q4_k_gemm_order) {
  TROUPE_ASSERT(n_tokens >= 0);
  TROUPE_ASSERT(q4_k_gemm_order.empty() || static_cast<int64_t>(q4_k_gemm_order.size()) == n_tokens);
  TROUPE_ASSERT(!outputs.empty() && outputs.size() <= k_max_outputs);
  if (n_tokens == 0) return;
  const int64_t k = outputs[0].w->ne0;
  gemm_plan plans[k_max_outputs];
  bool wants[3] = {};
  for (size_t i = 0; i < outputs.size(); ++i) {
    plans[i] = plan_for(kt, *outputs[i].w);
    TROUPE_ASSERT(plans[i].fn != nullptr);  // unsupported weight type: the loader rejects these
    TROUPE_ASSERT(outputs[i].w->ne0 == k);
    wants[static_cast<int>(plans[i].act)] = true;
  }

  // One quantization of x per activation format the weights need (a file may mix Q5_0 and
  // K-quants in one layer), each into its own thread_local buffer.
  const uint64_t row_bytes[3] = {static_cast<uint64_t>(k) * sizeof(float), act_row_bytes(k),
                           act_k_row_bytes(k)};
  const uint8_t* act[3] = {reinterpret_cast<const uint8_t*>(x), nullptr, nullptr};
  if (wants[static_cast<int>(act_kind::q8)]) {
    TROUPE_ASSERT(k % 32 == 0);
    thread_local std::vector<uint8_t> scratch;
    act[1] = quantize_rows(kt.quantize_row_act, x, k, n_tokens, row_bytes[1], scratch, pool);
  }
  if (wants[static_cast<int>(act_kind::q8_k)]) {
    TROUPE_ASSERT(k % 256 == 0);
    thread_local std::vector<uint8_t> scratch_k;
    act[2] = quantize_rows(kt.quantize_row_act_k, x, k, n_tokens, row_bytes[2], scratch_k, pool);
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
    const uint64_t arb = row_bytes[static_cast<int>(plans[i].act)];
    const uint8_t* a = act[static_cast<int>(plans[i].act)];
    if (plans[i].fn_grouped == nullptr) {
      plans[i].fn(k, w.row(r0), w.row_bytes, rows, a + static_cast<uint64_t>(t0) * arb, arb, toks,
                  outputs[i].y + t0 * n + r0, n);
      return;
    }
    // Runs of tokens that take the same order.
    auto grouped = [&](int64_t t) {
      return q4_k_gemm_order.empty() ? t < n_tokens - n_tokens % 4 : q4_k_gemm_order[static_cast<size_t>(t)] != 0;
    };
    for (int64_t t = t0; t < t0 + toks;) {
      int64_t e = t + 1;
      while (e < t0 + toks && grouped(e) == grouped(t)) ++e;
      (grouped(t) ? plans[i].fn_grouped : plans[i].fn)(k, w.row(r0), w.row_bytes, rows,
                                                        a + static_cast<uint64_t>(t) * arb, arb,
                                                        e - t, outputs[i].y + t * n + r0, n);
      t = e;
    }
  });
}

}  // namespace troupe::kernels
