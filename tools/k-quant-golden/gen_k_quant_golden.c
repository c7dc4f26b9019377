// Writes the golden data of tests/kernels/test_k_quant_golden.cpp with ggml's OWN code: for each
// weight type, random rows quantized by ggml_quantize_chunk, dequantized by the type's to_float,
// random activations quantized by ggml-cpu's from_float for the type's vec_dot_type (the x86
// quantizer llama.cpp runs), and every (row, token) dot by ggml-cpu's vec_dot.
// Built and run by tools/gen-k-quant-golden against the ggml of the llama-cpp-python sdist.
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

#include "ggml-cpu.h"
#include "ggml.h"

enum { K = 512, N_ROWS = 3, N_TOKENS = 3 };

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

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s OUT.bin\n", argv[0]);
    return 2;
  }
  ggml_cpu_init();
  const enum ggml_type types[] = {GGML_TYPE_Q5_0, GGML_TYPE_Q5_1, GGML_TYPE_Q4_K, GGML_TYPE_Q5_K,
                                  GGML_TYPE_Q6_K};
  const int n_cases = (int)(sizeof types / sizeof types[0]);
  FILE* f = fopen(argv[1], "wb");
  if (!f) {
    perror(argv[1]);
    return 1;
  }
  fwrite("TKQG", 1, 4, f);
  put_u32(f, 1);
  put_u32(f, (uint32_t)n_cases);
  static float w[N_ROWS * K], deq[N_ROWS * K], x[N_TOKENS * K], dots[N_TOKENS * N_ROWS];
  for (int c = 0; c < n_cases; ++c) {
    const enum ggml_type wt = types[c];
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
    put_u32(f, (uint32_t)wt);
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
