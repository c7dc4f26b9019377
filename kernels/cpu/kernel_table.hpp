// kernel_table: one variant of the CPU kernels (reference / AVX2+FMA / AVX-512 VNNI) as a table
// of function pointers, chosen once at run time from detected_cpu_features().
//
// The engine calls the high-level operations (matmul.hpp, ops.hpp, paged_attention.hpp), which
// use active_kernels() unless given a table; tests call them with every table of
// available_kernel_tables() and compare against reference_kernels() (the oracle: plain scalar
// C++, dequantize-then-dot, obviously correct).
//
// Every entry is a pure function of its arguments (no state, no allocation); all entries may be
// called concurrently from any thread. Pointers may be unaligned unless stated.
#pragma once

#include <cstdint>
#include <vector>

namespace troupe::kernels {

// Quantized activations ("act rows"), the input of the quantized gemms. For k = 32 * nb:
//     int8 qs[nb * 32] | float d[nb] | float s[nb] | int32 sum[nb]    act_row_bytes(k) bytes
// Block b: x[32b + j] ~= d[b] * qs[32b + j]. d, qs and s are exactly llama.cpp's block_q8_1
// values (d = fp16(max|x| / 127), q = round(x / d), s = fp16(d * sum(q))), and d, qs those of
// block_q8_0; sum[b] = sum(q) exactly (kernels that bias weights to unsigned bytes subtract
// bias * sum). Unpacked so the kernels get aligned int8 vectors and float scales without
// per-use fp16 conversions. Rows start 64-byte aligned (the row size is a multiple of 64 and
// the caller aligns the buffer).
constexpr uint64_t act_row_bytes(int64_t k) {
  const uint64_t nb = static_cast<uint64_t>(k / 32);
  return (nb * 44 + 63) / 64 * 64;
}

// K-quant activations ("act_k rows"), the input of the Q4_K/Q5_K/Q6_K gemms: for k = 256 * nb,
// nb consecutive llama.cpp block_q8_k (memory/quant_blocks.hpp: float d, int8 qs[256], int16
// bsums[16]; 292 bytes each, so blocks are 4-byte aligned only) then padding to a multiple of
// 64 bytes. The values are exactly those of ggml's quantize_row_q8_K, which its x86 build uses.
constexpr uint64_t act_k_row_bytes(int64_t k) {
  const uint64_t nb = static_cast<uint64_t>(k / 256);
  return (nb * 292 + 63) / 64 * 64;
}

// Computes, for r in [0, n_rows) and t in [0, n_tokens):
//   y[t * ldy + r] = sum_{i<k} W[r][i] * A[t][i]
// w: row r at w + r * w_row_bytes, in the weight's ggml type (k elements per row).
// a: activation row t at a + t * a_row_bytes: float[k] for F32/F16/BF16 weights; an act row
//    (above) for Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 weights (Q4_0, Q5_0, Q8_0 use qs and d as Q8_0; Q4_1,
//    Q5_1 also s, as Q8_1); an act_k row for Q4_K/Q5_K/Q6_K weights.
// REQUIRES: k % 32 == 0 for quantized types, k % 256 == 0 for K-quants; y does not overlap w
// or a.
using gemm_fn = void (*)(int64_t k, const uint8_t* w, uint64_t w_row_bytes, int64_t n_rows,
                         const uint8_t* a, uint64_t a_row_bytes, int64_t n_tokens, float* y,
                         int64_t ldy);

// A tile of attention work: n_tok consecutive query tokens of ONE sequence times the n_group
// query heads that share ONE kv head (GQA), so that each K/V row read from the pages serves
// n_tok * n_group queries. Query (token i, head g) is the vector
//     q + i * tok_stride + g * head_dim          ([head_dim] floats, already roped)
// and its result goes to the same offset in out. It attends to positions [0, positions[i]]
// of the sequence (causal), reading them through block_table from the fp16 pages
//     k_pages / v_pages: [num_blocks][n_head_kv][block_size][head_dim], kv head kv_head.
// out = sum_p softmax_p(scale * q . K[p]) * V[p], with llama.cpp's roundings: q and the
// softmax weights rounded to fp16, sums in its orders (reference_kernels.cpp).
// Batch invariance: a query's result must not depend on the other queries of the tile, on
// how tiles are split, nor on block_size (tests/kernels/test_batch_invariance.cpp).
struct attention_tile {
  const float* q = nullptr;
  float* out = nullptr;
  int64_t tok_stride = 0;            // floats between consecutive tokens in q and out
  int32_t n_tok = 0;
  int32_t n_group = 0;
  const int32_t* positions = nullptr;  // [n_tok]
  const uint16_t* k_pages = nullptr;
  const uint16_t* v_pages = nullptr;
  const int32_t* block_table = nullptr;
  int32_t block_size = 0;
  int32_t n_head_kv = 0;
  int32_t kv_head = 0;
  int32_t head_dim = 0;
  float scale = 1.0f;
  // [n_tok] or nullptr (all 0): 1 where the query token was sampled by the engine (a decode
  // step), whose sums then follow llama.cpp's single-token order (reference_kernels.cpp).
  const uint8_t* single_token_order = nullptr;
};

struct kernel_table {
  const char* name;  // "reference", "avx2", "avx512"

  // x: [k] float -> one act row at y (64-byte aligned). REQUIRES: k % 32 == 0.
  void (*quantize_row_act)(const float* x, uint8_t* y, int64_t k);

  gemm_fn gemm_f32;
  gemm_fn gemm_f16;
  gemm_fn gemm_bf16;
  gemm_fn gemm_q4_0;   // act rows used as Q8_0
  gemm_fn gemm_q4_1;   // act rows used as Q8_1
  gemm_fn gemm_q8_0;   // act rows used as Q8_0
  gemm_fn gemm_q5_0;   // act rows used as Q8_0
  gemm_fn gemm_q5_1;   // act rows used as Q8_1

  // x: [k] float -> one act_k row at y (4-byte aligned at least). REQUIRES: k % 256 == 0.
  void (*quantize_row_act_k)(const float* x, uint8_t* y, int64_t k);
  gemm_fn gemm_q4_k;   // act_k rows
  // Q4_K in the orders of llama.cpp's repacked Q4_K (ggml-cpu repack.cpp, q4_K_8x8: what its
  // AVX2/AVX-512 build runs for a Q4_K matrix whose row count is a multiple of 8); act_k rows.
  // llama.cpp runs the first n - n % 4 tokens of an n-token mul_mat through its gemm (one fma
  // per 64 elements: gemm_q4_k_x8x4) and the others through its gemv (one fma per 256
  // elements: gemm_q4_k_x8). k_quant_reference.hpp has the formulas.
  gemm_fn gemm_q4_k_x8;
  gemm_fn gemm_q4_k_x8x4;
  gemm_fn gemm_q5_k;   // act_k rows
  gemm_fn gemm_q6_k;   // act_k rows

  // y[i] = x[i] / sqrt(mean(x^2) + eps) * w[i], i < n. y may equal x.
  void (*rms_norm)(const float* x, const float* w, float* y, int64_t n, float eps);
  // y[i] = silu(gate[i]) * up[i] = gate / (1 + exp(-gate)) * up. y may equal gate or up.
  void (*silu_mul)(const float* gate, const float* up, float* y, int64_t n);
  // x[i] = exp(x[i] - max) / sum; in place.
  void (*softmax)(float* x, int64_t n);

  void (*attention)(const attention_tile& tile);
};

// The oracle: plain scalar code, always available.
const kernel_table& reference_kernels();

// The tables this CPU can run, reference first, then faster ones (avx2, avx512), honouring the
// TROUPE_CPU cap. Tests loop over these.
std::vector<const kernel_table*> available_kernel_tables();

// The fastest available table; chosen once, thread-safe.
const kernel_table& active_kernels();

}  // namespace troupe::kernels
