// The fast arithmetic's matmul (kernels/cpu/fast_matmul.hpp): every variant the CPU has gives
// the reference variant's bits; an output does not depend on the batch, the tile, the thread
// split (batch invariance); and the result is close to fp32 activations x dequantized weights,
// much closer than 8-bit activations (llama.cpp's arithmetic) get.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernel_test_util.hpp"
#include "kernels/cpu/cpu_features.hpp"
#include "kernels/cpu/fast_kernel_variants.hpp"
#include "kernels/cpu/fast_matmul.hpp"
#include "kernels/cpu/matmul.hpp"
#include "kernels/cpu/thread_pool.hpp"
#include "memory/dequantize.hpp"
#include "memory/quant_blocks.hpp"

using namespace troupe;
using namespace troupe::kernels;
using kernel_test::make_weight;
using kernel_test::random_floats;

namespace {

// fp32 activations x dequantized weights, summed in double: the accuracy reference.
std::vector<float> exact_product(const tensor_view& w, const std::vector<float>& x, int64_t tokens) {
  std::vector<float> wf(static_cast<size_t>(w.ne0));
  std::vector<float> y(static_cast<size_t>(tokens * w.ne1));
  for (int64_t r = 0; r < w.ne1; ++r) {
    dequantize_row(w.type, w.row(r), wf.data(), w.ne0);
    for (int64_t t = 0; t < tokens; ++t) {
      double s = 0;
      for (int64_t i = 0; i < w.ne0; ++i) s += static_cast<double>(wf[i]) * x[t * w.ne0 + i];
      y[t * w.ne1 + r] = static_cast<float>(s);
    }
  }
  return y;
}

// Activations with the outliers real models have: a few channels 30x larger than the rest.
std::vector<float> activations_with_outliers(std::mt19937& rng, int64_t tokens, int64_t k) {
  auto x = random_floats(rng, static_cast<size_t>(tokens * k));
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t i = 5; i < k; i += 97) x[t * k + i] *= 30.0f;
  return x;
}

std::vector<float> run(const fast_kernel_table& kt, const packed_weight& p, const float* x,
                       int64_t tokens, thread_pool& pool) {
  std::vector<float> y(static_cast<size_t>(tokens * p.n()), -1.0f);
  fast_matmul(kt, p, x, tokens, y.data(), pool);
  return y;
}

bool same_bits(const float* a, const float* b, size_t n) { return std::memcmp(a, b, n * 4) == 0; }

// The integer of weight (row, block b, element j) as the GGUF block stores it (quant_blocks.hpp:
// nibbles / int8; Q4_0's -8 offset lives in the packed m_w, not in the integers).
int32_t gguf_weight_int(const tensor_view& w, int64_t row, int64_t b, int j) {
  const uint8_t* p = w.row(row);
  if (w.type == ggml_type::q8_0) {
    block_q8_0 blk;
    std::memcpy(&blk, p + sizeof blk * b, sizeof blk);
    return blk.qs[j];
  }
  uint8_t qs[16];
  if (w.type == ggml_type::q4_1) {
    block_q4_1 blk;
    std::memcpy(&blk, p + sizeof blk * b, sizeof blk);
    std::memcpy(qs, blk.qs, 16);
  } else {
    block_q4_0 blk;
    std::memcpy(&blk, p + sizeof blk * b, sizeof blk);
    std::memcpy(qs, blk.qs, 16);
  }
  return j < 16 ? (qs[j] & 0x0F) : (qs[j - 16] >> 4);
}

const ggml_type k_types[] = {ggml_type::q4_0, ggml_type::q4_1, ggml_type::q8_0};

}  // namespace

TEST_CASE("fast matmul: every variant gives the reference's bits", "[fast_matmul]") {
  std::mt19937 rng(7);
  thread_pool pool(2);
  for (ggml_type type : k_types) {
    // Token counts that end in every partial tile of 8 tokens (and in the 64-token chunks of
    // fast_matmul_split); panels of fewer than 16 rows alone and after full ones.
    for (auto [rows, k, tokens] : {std::tuple{16, 32, 1}, {37, 96, 3}, {64, 576, 13},
                                   {200, 160, 70}, {5, 64, 9}, {3, 32, 18}, {21, 64, 23},
                                   {16, 96, 12}}) {
      auto w = make_weight(rng, type, rows, k);
      auto packed = packed_weight::pack(w.view);
      REQUIRE(packed.ok());
      const auto x = activations_with_outliers(rng, tokens, k);
      const auto ref = run(reference_fast_kernels(), *packed, x.data(), tokens, pool);
      for (const fast_kernel_table* kt : available_fast_kernel_tables()) {
        INFO(ggml_type_name(type) << " " << rows << "x" << k << " tokens " << tokens << " "
                                  << kt->name);
        const auto y = run(*kt, *packed, x.data(), tokens, pool);
        CHECK(same_bits(y.data(), ref.data(), y.size()));
      }
    }
  }
}

TEST_CASE("fast matmul: a token's outputs do not depend on its batch", "[fast_matmul]") {
  std::mt19937 rng(11);
  thread_pool one(1), two(2);
  const int64_t rows = 576, k = 576, tokens = 77;
  for (ggml_type type : k_types) {
    auto w = make_weight(rng, type, rows, k);
    auto packed = packed_weight::pack(w.view);
    REQUIRE(packed.ok());
    const auto x = activations_with_outliers(rng, tokens, k);
    for (const fast_kernel_table* kt : available_fast_kernel_tables()) {
      INFO(ggml_type_name(type) << " " << kt->name);
      const auto all = run(*kt, *packed, x.data(), tokens, two);
      // Each token alone (a decode step), and in batches of other sizes and offsets.
      for (int64_t t = 0; t < tokens; t += 5) {
        const auto alone = run(*kt, *packed, x.data() + t * k, 1, one);
        CHECK(same_bits(alone.data(), all.data() + t * rows, rows));
      }
      const auto tail = run(*kt, *packed, x.data() + 13 * k, tokens - 13, one);
      CHECK(same_bits(tail.data(), all.data() + 13 * rows, tail.size()));
    }
  }
}

TEST_CASE("fast matmul: Q/K/V together equal each alone", "[fast_matmul]") {
  std::mt19937 rng(3);
  thread_pool pool(2);
  const int64_t k = 576, tokens = 20;
  auto wq = make_weight(rng, ggml_type::q4_1, 576, k);
  auto wk = make_weight(rng, ggml_type::q8_0, 192, k);
  auto pq = packed_weight::pack(wq.view);
  auto pk = packed_weight::pack(wk.view);
  REQUIRE((pq.ok() && pk.ok()));
  const auto x = activations_with_outliers(rng, tokens, k);
  std::vector<float> yq(tokens * 576), yk(tokens * 192);
  const fast_matmul_output outs[] = {{&*pq, yq.data()}, {&*pk, yk.data()}};
  fast_matmul_multi(active_fast_kernels(), outs, x.data(), tokens, pool);
  CHECK(same_bits(yq.data(), run(active_fast_kernels(), *pq, x.data(), tokens, pool).data(), yq.size()));
  CHECK(same_bits(yk.data(), run(active_fast_kernels(), *pk, x.data(), tokens, pool).data(), yk.size()));
}

TEST_CASE("fast matmul: closer to fp32 than 8-bit activations", "[fast_matmul]") {
  std::mt19937 rng(5);
  thread_pool pool(2);
  const int64_t rows = 256, k = 576, tokens = 16;
  for (ggml_type type : k_types) {
    auto w = make_weight(rng, type, rows, k);
    auto packed = packed_weight::pack(w.view);
    REQUIRE(packed.ok());
    const auto x = activations_with_outliers(rng, tokens, k);
    const auto truth = exact_product(w.view, x, tokens);
    const auto fast = run(active_fast_kernels(), *packed, x.data(), tokens, pool);
    std::vector<float> q8(truth.size());
    matmul(w.view, x.data(), tokens, q8.data(), pool);  // llama.cpp's arithmetic
    const double e_fast = kernel_test::nmse(fast.data(), truth.data(), truth.size());
    const double e_q8 = kernel_test::nmse(q8.data(), truth.data(), truth.size());
    INFO(ggml_type_name(type) << ": nmse fast " << e_fast << ", 8-bit activations " << e_q8);
    CHECK(e_fast < 1e-8);
    CHECK(e_fast * 100 < e_q8);
  }
}

TEST_CASE("fast matmul: packing refuses what it cannot hold", "[fast_matmul]") {
  std::mt19937 rng(1);
  auto w = make_weight(rng, ggml_type::f16, 4, 64);
  w.view.name = "blk.0.attn_q.weight";
  auto p = packed_weight::pack(w.view);
  REQUIRE_FALSE(p.ok());
  CHECK(p.message().find("blk.0.attn_q.weight") != std::string::npos);
  CHECK(p.message().find("F16") != std::string::npos);
}

// The AMX variant runs only on CPUs with AMX, behind a start-up self-check. Its layout steps
// (B tiles from the packed records, the hi/lo byte planes of the activations) use no tile
// instruction, so they are checked here on any AVX-512 CPU: a scalar model of tdpbssd /
// tdpbusd over them must give exactly the reference's integer block sums.
TEST_CASE("fast matmul: AMX tiles and byte planes carry the reference's integers",
          "[fast_matmul][amx]") {
  if (!detected_cpu_features().avx512_vnni) {
    WARN("no AVX-512 on this CPU: the AMX layout steps are not checked");
    return;
  }
  std::mt19937 rng(21);
  const int64_t rows = 16, k = 96, nb = k / 32;
  for (ggml_type type : k_types) {
    auto w = make_weight(rng, type, rows, k);
    auto packed = packed_weight::pack(w.view);
    REQUIRE(packed.ok());
    const auto x = activations_with_outliers(rng, 3, k);
    const uint64_t arb = act16_row_bytes(k);
    std::vector<uint8_t> act_storage(arb * 3 + 64);
    uint8_t* act = act_storage.data() + (64 - reinterpret_cast<uintptr_t>(act_storage.data()) % 64) % 64;
    for (int t = 0; t < 3; ++t) amx_fast_kernels().quantize_row(x.data() + t * k, act + t * arb, k);
    alignas(64) uint8_t btile[512];
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* rec = packed->panel(0) + packed->block_bytes() * static_cast<uint64_t>(b);
      amx_unpack_b_tile(rec, packed->kind(), btile);
      for (int t = 0; t < 3; ++t) {
        const uint8_t* row = act + t * arb;
        const auto* q = reinterpret_cast<const int16_t*>(row);
        const auto* hi = reinterpret_cast<const int8_t*>(row + act16_split_offset(k));
        const uint8_t* lo = row + act16_split_offset(k) + k;
        for (int n = 0; n < 16; ++n) {
          // tdpbssd / tdpbusd: C[t][n] += sum_{r<8, i<4} A[t][4r+i] * B[r][4n+i] (B signed).
          int32_t c_hi = 0, c_lo = 0;
          for (int r = 0; r < 8; ++r)
            for (int i = 0; i < 4; ++i) {
              const int32_t bw = static_cast<int8_t>(btile[r * 64 + 4 * n + i]);
              c_hi += hi[32 * b + 4 * r + i] * bw;
              c_lo += lo[32 * b + 4 * r + i] * bw;
            }
          // The reference's integer, from the GGUF block itself (nibbles / int8 as stored;
          // Q4_0's -8 offset lives in the packed m_w, not in the integers).
          int32_t want = 0;
          for (int j = 0; j < 32; ++j) want += gguf_weight_int(w.view, n, b, j) * q[32 * b + j];
          INFO(ggml_type_name(type) << " block " << b << " token " << t << " row " << n);
          CHECK(256 * c_hi + c_lo == want);
        }
      }
    }
  }
}
