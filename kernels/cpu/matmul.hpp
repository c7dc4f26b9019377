// matmul: y = x · Wᵀ for a weight matrix in any supported ggml type, on the thread pool.
//
//   y[t][n] = sum_k x[t][k] * W[n][k]
//   x: [n_tokens, K] float, row t at x + t * K         (K = w.ne0)
//   W: tensor_view, N = w.ne1 rows of K elements, type F32/F16/BF16/Q4_0/Q4_1/Q5_0/Q5_1/Q8_0/
//      Q4_K/Q5_K/Q6_K
//   y: [n_tokens, N] float, row t at y + t * N
//
// Quantized weights: x is first quantized once per call to 8-bit blocks (Q8_0 for Q4_0/Q5_0/
// Q8_0, Q8_1 for Q4_1/Q5_1, Q8_K for the K-quants: what llama.cpp's ggml-cpu pairs them with),
// then integer dot products in ggml's x86 order, so the result is llama.cpp's vec_dot's. F16/BF16/F32 weights dot against float x.
// Work is split into chunks of output rows across the pool; for n_tokens > 1 each chunk is
// tiled so that a weight row is read once for several tokens (prefill, batched decode).
//
// REQUIRES: w.type supported, K % 32 == 0 for quantized types (% 256 for K-quants), y does not overlap x, n_tokens>=0.
// Threading: the calling thread drives `pool` (one caller per pool at a time). Uses a
// thread_local scratch buffer of the calling thread for the quantized activations.
#pragma once

#include <cstdint>
#include <span>

#include "kernels/cpu/kernel_table.hpp"
#include "kernels/cpu/thread_pool.hpp"
#include "memory/tensor_view.hpp"

namespace troupe::kernels {

void matmul(const tensor_view& w, const float* x, int64_t n_tokens, float* y, thread_pool& pool);

// Same, with an explicit kernel variant (tests, benchmarks).
void matmul(const kernel_table& kt, const tensor_view& w, const float* x, int64_t n_tokens,
            float* y, thread_pool& pool);

// Several weights applied to the same x (Q/K/V; gate/up): x is quantized once and all the
// row chunks of all the weights share one parallel_for (one pool wake-up instead of several).
// Every weight must have the same K = ne0; types may differ. outputs[i].y: [n_tokens,
// outputs[i].w->ne1]. Same requirements as matmul; the y buffers must not overlap.
struct matmul_output {
  const tensor_view* w = nullptr;
  float* y = nullptr;
};
//
// q4_k_gemm_order ([n_tokens] or empty) only matters for Q4_K matrices of 8k rows, which
// llama.cpp's x86 build repacks and sums in one of two orders (kernel_table.hpp,
// gemm_q4_k_x8 / gemm_q4_k_x8x4): 1 for a token llama.cpp would run through its gemm, 0 through
// its gemv. Empty: as one llama.cpp mul_mat of these n_tokens rows (tokens [0, n - n % 4) by
// the gemm), which depends on the batch; the engine passes a per-token choice instead
// (llama_model::prepare_batch), so that batching stays invisible (invariant 2).
void matmul_multi(std::span<const matmul_output> outputs, const float* x, int64_t n_tokens,
                  thread_pool& pool, std::span<const uint8_t> q4_k_gemm_order = {});
void matmul_multi(const kernel_table& kt, std::span<const matmul_output> outputs, const float* x,
                  int64_t n_tokens, thread_pool& pool, std::span<const uint8_t> q4_k_gemm_order = {});

}  // namespace troupe::kernels
