// ops: the small per-token operations of a llama layer. All work on contiguous float rows,
// single-threaded (they are cheap next to matmul and attention; the caller may split rows
// across a pool itself). Each has a kernel_table overload for tests; the short form uses
// active_kernels(). All are safe to call concurrently on disjoint data.
#pragma once

#include <cstdint>

#include "kernels/cpu/kernel_table.hpp"
#include "memory/tensor_view.hpp"

namespace troupe::kernels {

// RMSNorm of n_rows rows of n floats: y[r][i] = x[r][i] / sqrt(mean_i(x[r]^2) + eps) * w[i].
// x, y: [n_rows, n]; w: [n]. y may equal x (in place).
void rms_norm(const float* x, const float* w, float* y, int64_t n_rows, int64_t n, float eps);
void rms_norm(const kernel_table& kt, const float* x, const float* w, float* y, int64_t n_rows,
              int64_t n, float eps);

// y[i] = silu(gate[i]) * up[i], i < n (SwiGLU). y may equal gate or up.
void silu_mul(const float* gate, const float* up, float* y, int64_t n);
void silu_mul(const kernel_table& kt, const float* gate, const float* up, float* y, int64_t n);

// In-place softmax of one row of n floats (n >= 1). -inf entries get probability 0.
void softmax(float* x, int64_t n);
void softmax(const kernel_table& kt, float* x, int64_t n);

// y[i] += x[i], i < n (the residual connection).
void add_inplace(float* y, const float* x, int64_t n);

// Embedding lookup: out[j] = dequantized row ids[j] of w, j < n_ids.
// w: [rows = w.ne1, w.ne0]; out: [n_ids, w.ne0] float. REQUIRES 0 <= ids[j] < w.ne1 (checked,
// aborts: token ids are validated by the tokenizer/request layer before they get here).
void get_rows(const tensor_view& w, const int32_t* ids, int64_t n_ids, float* out);

// ---- RoPE, llama.cpp NORM mode (GGUF llama weights: Q/K rows were permuted by the
// converter so that rotating ADJACENT pairs (x[2i], x[2i+1]) equals HF's half-split rotation).
//   theta_i = pos * freq_base^(-2i/n_rot), i < n_rot/2
//   x'[2i]   = x[2i] * cos(theta_i) - x[2i+1] * sin(theta_i)
//   x'[2i+1] = x[2i] * sin(theta_i) + x[2i+1] * cos(theta_i)
// Dimensions >= n_rot pass through unchanged.
//
// Two steps so one step's cos/sin serve every layer and both Q and K:
// rope_cache: [n_tokens][n_rot/2][2] floats = (cos, sin) of theta_i at positions[t]; the angle
// is built as llama.cpp does (theta = pos; theta *= freq_base^(-2/n_rot) per pair, in float).
// REQUIRES: n_rot even.
void rope_fill_cache(const int32_t* positions, int64_t n_tokens, int32_t n_rot, float freq_base,
                     float* rope_cache);

// Rotates x in place: x: [n_tokens, n_heads, head_dim] (row stride n_heads * head_dim).
// REQUIRES: n_rot <= head_dim, rope_cache from rope_fill_cache with the same n_tokens/n_rot.
void rope_apply(float* x, int64_t n_tokens, int32_t n_heads, int32_t head_dim, int32_t n_rot,
                const float* rope_cache);

}  // namespace troupe::kernels
