// Writes the golden data of tests/kernels/test_k_quant_golden.cpp with ggml's OWN code: for each
// weight type, random rows quantized by ggml_quantize_chunk, dequantized by the type's to_float,
// random activations quantized by ggml-cpu's from_float for the type's vec_dot_type (the x86
// quantizer llama.cpp runs), and every (row, token) dot by ggml-cpu's vec_dot.
// Built and run by tools/gen-k-quant-golden against the ggml of the llama-cpp-python sdist.
//
// A last case runs Q4_K the way llama.cpp's model code does on x86: the weight in ggml-cpu's
// CPU_REPACK buffer (repacked to interleaved 8-row blocks on upload) and a real mul_mat graph
// of 5 tokens (4 through the repacked gemm, 1 through its gemv), on 1 thread. Its dots are
// recorded under weight type 1012 (Q4_K, repacked order); dequantized values are the plain
// to_float's.
//
// Output (little-endian): "TKQG", u32 version (1), u32 n_cases, then per case
//   u32 weight_type, act_type, k, n_rows, n_tokens;
//   weight rows      [n_rows * row_size(weight_type, k)] bytes
//   dequantized      [n_rows * k] f32
//   activations      [n_tokens * k] f32
//   quantized acts   [n_tokens * row_size(act_type, k)] bytes
//   dots             [n_tokens * n_rows] f32, token-major: dots[t * n_rows + r]
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"
#include "ggml.h"

enum { K = 512, MAX_ROWS = 8, MAX_TOKENS = 5 };

struct golden_case {
  enum ggml_type type;
  int n_rows, n_tokens;
  int repacked;  // through the CPU_REPACK buffer and a mul_mat graph
};

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static double uniform01(void) {  // xorshift64*: deterministic across platforms
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (double)((rng_state * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0;
}

// Values with a different magnitude per 16 elements (so K-quant sub-block scales differ and use
// their high bits), an occasional outlier, and (for activations) one all-zero 256-block.
static void fill(float* x, int n, int zero_block) {
  for (int g = 0; g < n; g += 16) {
    const double scale = 0.001 + 3.0 * uniform01() * uniform01();
    const double shift = uniform01() < 0.3 ? scale * (uniform01() - 0.5) : 0.0;
    for (int j = g; j < g + 16; ++j) {
      double v = scale * (2.0 * uniform01() - 1.0) + shift;
      if (uniform01() < 0.01) v *= 8.0;
      x[j] = (float)v;
    }
  }
  if (zero_block >= 0) memset(x + 256 * zero_block, 0, 256 * sizeof(float));
}

static void put_u32(FILE* f, uint32_t v) { fwrite(&v, 4, 1, f); }

static void die(const char* what) {
  fprintf(stderr, "gen_k_quant_golden: %s\n", what);
  exit(1);
}

// y[t * n_rows + r] = mul_mat(W, X) with W (type, quantized bytes wq) in the CPU_REPACK buffer.
static void repacked_mul_mat(enum ggml_type type, const void* wq, int n_rows, int k, const float* x,
                             int n_tokens, float* y) {
  ggml_backend_t backend = ggml_backend_cpu_init();
  ggml_backend_cpu_set_n_threads(backend, 1);
  ggml_backend_dev_t dev = ggml_backend_get_device(backend);
  ggml_backend_reg_t reg = ggml_backend_dev_backend_reg(dev);
  ggml_backend_dev_get_extra_bufts_t get_extra =
      (ggml_backend_dev_get_extra_bufts_t)ggml_backend_reg_get_proc_address(reg, "ggml_backend_dev_get_extra_bufts");
  if (!get_extra) die("the CPU backend has no extra buffer types");
  ggml_backend_buffer_type_t repack = NULL;
  for (ggml_backend_buffer_type_t* b = get_extra(dev); b && *b; ++b)
    if (strcmp(ggml_backend_buft_name(*b), "CPU_REPACK") == 0) repack = *b;
  if (!repack) die("no CPU_REPACK buffer type (built without GGML_CPU_REPACK?)");

  struct ggml_init_params ip = {ggml_tensor_overhead() * 8 + ggml_graph_overhead(), NULL, true};
  struct ggml_context* wctx = ggml_init(ip);
  struct ggml_tensor* w = ggml_new_tensor_2d(wctx, type, k, n_rows);
  ggml_backend_buffer_t wbuf = ggml_backend_alloc_ctx_tensors_from_buft(wctx, repack);
  if (!wbuf) die("allocating the repacked weight failed");
  ggml_backend_tensor_set(w, wq, 0, ggml_nbytes(w));  // repacks

  struct ggml_context* ctx = ggml_init(ip);
  struct ggml_tensor* xt = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, k, n_tokens);
  struct ggml_tensor* yt = ggml_mul_mat(ctx, w, xt);
  struct ggml_cgraph* gf = ggml_new_graph(ctx);
  ggml_build_forward_expand(gf, yt);
  ggml_backend_buffer_t buf = ggml_backend_alloc_ctx_tensors(ctx, backend);
  ggml_backend_tensor_set(xt, x, 0, ggml_nbytes(xt));
  if (ggml_backend_graph_compute(backend, gf) != GGML_STATUS_SUCCESS) die("mul_mat failed");
  ggml_backend_tensor_get(yt, y, 0, ggml_nbytes(yt));
  ggml_backend_buffer_free(buf);
  ggml_backend_buffer_free(wbuf);
  ggml_free(ctx);
  ggml_free(wctx);
  ggml_backend_free(backend);
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s OUT.bin\n", argv[0]);
    return 2;
  }
  ggml_cpu_init();
  const struct golden_case cases[] = {
      {GGML_TYPE_Q5_0, 3, 3, 0}, {GGML_TYPE_Q5_1, 3, 3, 0}, {GGML_TYPE_Q4_K, 3, 3, 0},
      {GGML_TYPE_Q5_K, 3, 3, 0}, {GGML_TYPE_Q6_K, 3, 3, 0}, {GGML_TYPE_Q4_K, 8, 5, 1},
  };
  const int n_cases = (int)(sizeof cases / sizeof cases[0]);
  FILE* f = fopen(argv[1], "wb");
  if (!f) {
    perror(argv[1]);
    return 1;
  }
  fwrite("TKQG", 1, 4, f);
  put_u32(f, 1);
  put_u32(f, (uint32_t)n_cases);
  static float w[MAX_ROWS * K], deq[MAX_ROWS * K], x[MAX_TOKENS * K], dots[MAX_TOKENS * MAX_ROWS];
  for (int c = 0; c < n_cases; ++c) {
    const enum ggml_type wt = cases[c].type;
    const int N_ROWS = cases[c].n_rows, N_TOKENS = cases[c].n_tokens;
    const struct ggml_type_traits_cpu* cpu = ggml_get_type_traits_cpu(wt);
    const enum ggml_type at = cpu->vec_dot_type;
    const size_t wrs = ggml_row_size(wt, K), ars = ggml_row_size(at, K);
    uint8_t* wq = calloc(N_ROWS, wrs);
    uint8_t* xq = calloc(N_TOKENS, ars);
    for (int r = 0; r < N_ROWS; ++r) fill(w + r * K, K, -1);
    for (int t = 0; t < N_TOKENS; ++t) fill(x + t * K, K, t == N_TOKENS - 1 ? 1 : -1);
    ggml_quantize_chunk(wt, w, wq, 0, N_ROWS, K, NULL);
    for (int r = 0; r < N_ROWS; ++r) ggml_get_type_traits(wt)->to_float(wq + r * wrs, deq + r * K, K);
    for (int t = 0; t < N_TOKENS; ++t) ggml_get_type_traits_cpu(at)->from_float(x + t * K, xq + t * ars, K);
    for (int t = 0; t < N_TOKENS; ++t)
      for (int r = 0; r < N_ROWS; ++r)
        cpu->vec_dot(K, &dots[t * N_ROWS + r], 0, wq + r * wrs, 0, xq + t * ars, 0, 1);
    if (cases[c].repacked) {
      float vec_dots[MAX_TOKENS * MAX_ROWS];
      memcpy(vec_dots, dots, sizeof dots);
      repacked_mul_mat(wt, wq, N_ROWS, K, x, N_TOKENS, dots);
      int differ = 0;
      for (int i = 0; i < N_TOKENS * N_ROWS; ++i) differ += memcmp(&dots[i], &vec_dots[i], 4) != 0;
      printf("repacked %s: %d of %d dots differ from vec_dot's bits\n", ggml_type_name(wt), differ,
             N_TOKENS * N_ROWS);
    }
    put_u32(f, (uint32_t)wt + (cases[c].repacked ? 1000u : 0u));
    put_u32(f, (uint32_t)at);
    put_u32(f, K);
    put_u32(f, N_ROWS);
    put_u32(f, N_TOKENS);
    fwrite(wq, wrs, N_ROWS, f);
    fwrite(deq, sizeof(float), N_ROWS * K, f);
    fwrite(x, sizeof(float), N_TOKENS * K, f);
    fwrite(xq, ars, N_TOKENS, f);
    fwrite(dots, sizeof(float), N_TOKENS * N_ROWS, f);
    printf("%-5s x %-5s: %d rows x %d tokens, k = %d\n", ggml_type_name(wt), ggml_type_name(at), N_ROWS,
           N_TOKENS, K);
    free(wq);
    free(xq);
  }
  return fclose(f) == 0 ? 0 : 1;
}
