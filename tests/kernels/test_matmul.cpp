// matmul: every kernel variant against the reference (the oracle), and the reference against
// the exact product of the dequantized weights (so the oracle itself is checked).
//
// Tolerances (normalized MSE, sum (y - ref)^2 / sum ref^2, as llama.cpp's test-backend-ops):
//   - a SIMD variant vs the reference: 1e-10 for F32/F16/BF16 weights (both dot floats; only
//     summation order differs); 0 for quantized weights: every table quantizes and sums in
//     llama.cpp's x86 order (kernels/cpu/ggml_arithmetic.hpp), bit for bit.
//   - reference vs float product of dequantized W and unquantized x: 2e-4 (the 8-bit
//     activation quantization, ~1/254 relative per element, is the whole difference);
//     checked on cases with at least 32 outputs.
#include <catch2/catch.hpp>

#include <sstream>

#include "kernel_test_util.hpp"
#include "kernels/cpu/kernel_table.hpp"
#include "kernels/cpu/matmul.hpp"
#include "memory/quant_blocks.hpp"

using namespace troupe;
using namespace troupe::kernels;
using kernel_test::make_weight;
using kernel_test::nmse;
using kernel_test::random_floats;

namespace {

bool is_quantized(ggml_type t) {
  return t != ggml_type::f32 && t != ggml_type::f16 && t != ggml_type::bf16;
}

std::vector<float> exact_product(const tensor_view& w, const std::vector<float>& x,
                                 int64_t n_tokens) {
  std::vector<float> row(static_cast<size_t>(w.ne0));
  std::vector<float> y(static_cast<size_t>(n_tokens * w.ne1));
  for (int64_t r = 0; r < w.ne1; ++r) {
    dequantize_row(w.type, w.row(r), row.data(), w.ne0);
    for (int64_t t = 0; t < n_tokens; ++t) {
      double s = 0.0;
      for (int64_t i = 0; i < w.ne0; ++i)
        s += static_cast<double>(row[static_cast<size_t>(i)]) * x[static_cast<size_t>(t * w.ne0 + i)];
      y[static_cast<size_t>(t * w.ne1 + r)] = static_cast<float>(s);
    }
  }
  return y;
}

void check_case(std::mt19937& rng, thread_pool& pool, ggml_type type, int64_t n_rows, int64_t k,
                int64_t n_tokens) {
  const auto w = make_weight(rng, type, n_rows, k);
  const auto x = random_floats(rng, static_cast<size_t>(n_tokens * k));
  const size_t ny = static_cast<size_t>(n_tokens * n_rows);
  std::vector<float> ref(ny, -1.0f);
  matmul(reference_kernels(), w.view, x.data(), n_tokens, ref.data(), pool);

  std::ostringstream params;
  params << "type=" << ggml_type_name(type) << " N=" << n_rows << " K=" << k
         << " n_tokens=" << n_tokens << " threads=" << pool.num_threads();
  // Checked where there are enough outputs for the NMSE to be an average: a single dot of
  // random vectors can cancel to near zero and make any relative measure meaningless.
  if (ny >= 32) {
    const auto exact = exact_product(w.view, x, n_tokens);
    const double e = nmse(ref.data(), exact.data(), ny);
    INFO("reference vs exact float product: " << params.str() << " nmse=" << e
                                              << " (max 2e-4)");
    REQUIRE(e < (is_quantized(type) ? 2e-4 : 1e-12));
  }
  for (const kernel_table* kt : available_kernel_tables()) {
    std::vector<float> y(ny, -1.0f);
    matmul(*kt, w.view, x.data(), n_tokens, y.data(), pool);
    const double e = nmse(y.data(), ref.data(), ny);
    const double tol = is_quantized(type) ? 0.0 : 1e-10;
    INFO("variant " << kt->name << " vs reference: " << params.str() << " nmse=" << e
                    << " (max " << tol << ")");
    REQUIRE(e <= tol);
  }
}

}  // namespace

TEST_CASE("matmul: every variant matches the reference on random shapes", "[matmul]") {
  std::mt19937 rng(1234);
  thread_pool pool1(1), pool3(3);
  const ggml_type types[] = {ggml_type::q4_0, ggml_type::q4_1, ggml_type::q8_0,
                             ggml_type::f32,  ggml_type::f16,  ggml_type::bf16};
  // K multiples of 32 but not of 256 (576, 1536 are the default model's), odd row counts,
  // n_tokens 1..33 around the tile sizes and the 64-token chunk.
  const int64_t ks[] = {32, 96, 576, 1536};
  const int64_t rows[] = {1, 5, 67, 130};
  const int64_t tokens[] = {1, 2, 3, 4, 5, 8, 17, 32, 33};
  for (ggml_type type : types)
    for (int64_t k : ks)
      for (int64_t n : rows)
        for (int64_t t : tokens) check_case(rng, (n + t) % 2 ? pool1 : pool3, type, n, k, t);
}

TEST_CASE("matmul: Q5 and K-quant weights, every variant matches the reference", "[matmul][k_quant]") {
  std::mt19937 rng(4321);
  thread_pool pool1(1), pool3(3);
  const int64_t rows[] = {1, 5, 16, 67};  // Q4_K: 16 rows take the repacked order
  const int64_t tokens[] = {1, 2, 5, 17, 33};
  for (ggml_type type : {ggml_type::q5_0, ggml_type::q5_1})
    for (int64_t k : {32, 96, 576})
      for (int64_t n : rows)
        for (int64_t t : tokens) check_case(rng, (n + t) % 2 ? pool1 : pool3, type, n, k, t);
  for (ggml_type type : {ggml_type::q4_k, ggml_type::q5_k, ggml_type::q6_k})
    for (int64_t k : {256, 512, 1536})
      for (int64_t n : rows)
        for (int64_t t : tokens) check_case(rng, (n + t) % 2 ? pool1 : pool3, type, n, k, t);
}

TEST_CASE("matmul_multi: weights needing different activation formats share one x", "[matmul][k_quant]") {
  // A Q4_K_M file mixes Q5_0 (rows of 576) and K-quants; here one call holds Q5_0, Q4_K, Q6_K
  // and F32 weights, so x is quantized both to Q8_0 blocks and to Q8_K blocks.
  std::mt19937 rng(77);
  thread_pool pool(2);
  const int64_t k = 512, n_tokens = 6;
  const ggml_type types[] = {ggml_type::q5_0, ggml_type::q4_k, ggml_type::q6_k, ggml_type::f32};
  std::vector<kernel_test::weight> ws;
  for (ggml_type t : types) ws.push_back(make_weight(rng, t, 24, k));
  const auto x = random_floats(rng, static_cast<size_t>(n_tokens * k));
  for (const kernel_table* kt : available_kernel_tables()) {
    std::vector<std::vector<float>> ys(ws.size(), std::vector<float>(24 * n_tokens));
    std::vector<matmul_output> outs;
    for (size_t i = 0; i < ws.size(); ++i) outs.push_back({&ws[i].view, ys[i].data()});
    matmul_multi(*kt, outs, x.data(), n_tokens, pool);
    for (size_t i = 0; i < ws.size(); ++i) {
      std::vector<float> alone(24 * n_tokens);
      matmul(reference_kernels(), ws[i].view, x.data(), n_tokens, alone.data(), pool);
      INFO(kt->name << " " << ggml_type_name(types[i]));
      if (is_quantized(types[i]))
        CHECK(ys[i] == alone);
      else
        CHECK(nmse(ys[i].data(), alone.data(), alone.size()) < 1e-10);
    }
  }
}

TEST_CASE("matmul: float weights take any row length", "[matmul]") {
  std::mt19937 rng(99);
  thread_pool pool(2);
  for (ggml_type type : {ggml_type::f32, ggml_type::f16, ggml_type::bf16})
    for (int64_t k : {1, 7, 13, 100})
      for (int64_t t : {1, 3, 6}) check_case(rng, pool, type, 9, k, t);
}

TEST_CASE("matmul: prefill-sized batches span several token chunks", "[matmul]") {
  std::mt19937 rng(7);
  thread_pool pool(2);
  check_case(rng, pool, ggml_type::q4_1, 70, 576, 130);
  check_case(rng, pool, ggml_type::q8_0, 33, 64, 65);
}

TEST_CASE("activation quantizers agree with llama.cpp's reference Q8_1 quantizer", "[matmul]") {
  std::mt19937 rng(5);
  for (const kernel_table* kt : available_kernel_tables()) {
    for (int64_t k : {32, 64, 576}) {
      auto x = random_floats(rng, static_cast<size_t>(k), -3.0f, 3.0f);
      x[3] = 0.0f;
      std::fill(x.begin() + 32, x.begin() + std::min<int64_t>(k, 64), 0.0f);  // an all-zero block
      const int64_t nb = k / 32;
      std::vector<block_q8_1> want(static_cast<size_t>(nb));
      quantize_row_q8_1(x.data(), want.data(), k);
      alignas(64) uint8_t got[1024];  // >= act_row_bytes(576) = 768
      kt->quantize_row_act(x.data(), got, k);
      const auto* d = reinterpret_cast<const float*>(got + nb * 32);
      for (int64_t b = 0; b < nb; ++b) {
        const auto& w = want[static_cast<size_t>(b)];
        INFO("variant " << kt->name << " k=" << k << " block " << b);
        REQUIRE(d[b] == fp16_to_fp32(w.d));
        // A variant may round exact halves to even where the reference rounds away from zero:
        // q may then differ by one step, and s = d * sum(q) by a few d.
        for (int j = 0; j < 32; ++j)
          REQUIRE(std::abs(int(w.qs[j]) - int(int8_t(got[b * 32 + j]))) <= 1);
        REQUIRE(std::fabs(d[nb + b] - fp16_to_fp32(w.s)) <=
                2.0f * d[b] + 1e-3f * std::fabs(fp16_to_fp32(w.s)));
      }
    }
  }
}

TEST_CASE("matmul_multi equals separate matmuls (shared x, mixed types and sizes)", "[matmul]") {
  std::mt19937 rng(77);
  thread_pool pool(2);
  for (int64_t t : {1, 4, 70}) {
    const auto wq = make_weight(rng, ggml_type::q4_1, 64, 96);
    const auto wk = make_weight(rng, ggml_type::q8_0, 21, 96);
    const auto wv = make_weight(rng, ggml_type::f16, 5, 96);
    const auto x = random_floats(rng, static_cast<size_t>(t * 96));
    for (const kernel_table* kt : available_kernel_tables()) {
      std::vector<float> yq(static_cast<size_t>(t * 64)), yk(static_cast<size_t>(t * 21)), yv(static_cast<size_t>(t * 5));
      const matmul_output outs[] = {{&wq.view, yq.data()}, {&wk.view, yk.data()}, {&wv.view, yv.data()}};
      matmul_multi(*kt, outs, x.data(), t, pool);
      for (const auto& o : outs) {
        std::vector<float> single(static_cast<size_t>(t * o.w->ne1));
        matmul(*kt, *o.w, x.data(), t, single.data(), pool);
        INFO("variant " << kt->name << " type " << ggml_type_name(o.w->type) << " n_tokens " << t);
        for (size_t i = 0; i < single.size(); ++i) REQUIRE(o.y[i] == single[i]);
      }
    }
  }
}
