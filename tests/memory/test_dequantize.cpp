// Reference dequantization against blocks built by hand from the format description, and the
// reference quantizers' round trip error against the bound each format promises.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "memory/dequantize.hpp"
#include "memory/float16.hpp"
#include "memory/quant_blocks.hpp"

using namespace troupe;

namespace {

std::vector<float> dequant(ggml_type t, const void* src, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n), -12345.0f);
  dequantize_row(t, src, out.data(), n);
  return out;
}

std::vector<float> random_row(int64_t n, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = dist(rng);
  return x;
}

}  // namespace

TEST_CASE("Q4_1 block built by hand: y[j] = d*lo + m, y[j+16] = d*hi + m", "[dequantize]") {
  block_q4_1 b[2];
  b[0].d = 0x3800;  // 0.5
  b[0].m = 0x3C00;  // 1.0
  b[1].d = 0x4000;  // 2.0
  b[1].m = 0xBC00;  // -1.0
  for (int j = 0; j < 16; ++j) {
    b[0].qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
    b[1].qs[j] = static_cast<uint8_t>(3 | (12 << 4));
  }
  const auto y = dequant(ggml_type::q4_1, b, 64);
  for (int j = 0; j < 16; ++j) {
    CHECK(y[j] == 0.5f * j + 1.0f);
    CHECK(y[j + 16] == 0.5f * (15 - j) + 1.0f);
    CHECK(y[32 + j] == 2.0f * 3 - 1.0f);
    CHECK(y[48 + j] == 2.0f * 12 - 1.0f);
  }
}

TEST_CASE("Q4_0 block built by hand: y = d * (q - 8), low nibble first", "[dequantize]") {
  block_q4_0 b;
  b.d = 0x3400;  // 0.25
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const auto y = dequant(ggml_type::q4_0, &b, 32);
  for (int j = 0; j < 16; ++j) {
    CHECK(y[j] == 0.25f * (j - 8));
    CHECK(y[j + 16] == 0.25f * (7 - j));
  }
  CHECK(y[0] == -2.0f);
  CHECK(y[16] == 1.75f);
}

TEST_CASE("Q8_0 block built by hand: y = d * qs", "[dequantize]") {
  block_q8_0 b[2];
  b[0].d = 0x4000;  // 2.0
  b[1].d = 0xB800;  // -0.5
  for (int j = 0; j < 32; ++j) {
    b[0].qs[j] = static_cast<int8_t>(j - 16);
    b[1].qs[j] = static_cast<int8_t>(j == 0 ? -128 : 127);
  }
  const auto y = dequant(ggml_type::q8_0, b, 64);
  for (int j = 0; j < 32; ++j) CHECK(y[j] == 2.0f * (j - 16));
  CHECK(y[32] == 64.0f);
  CHECK(y[33] == -63.5f);
}

TEST_CASE("F32, F16 and BF16 rows, from unaligned sources", "[dequantize]") {
  const uint16_t halves[] = {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x8000, 0x3555};
  std::vector<uint8_t> buf(1 + sizeof(halves));
  std::memcpy(buf.data() + 1, halves, sizeof(halves));  // odd address on purpose
  const auto h = dequant(ggml_type::f16, buf.data() + 1, 6);
  CHECK(h[0] == 1.0f);
  CHECK(h[1] == -2.0f);
  CHECK(h[2] == 65504.0f);
  CHECK(h[3] == std::ldexp(1.0f, -24));
  CHECK(h[4] == 0.0f);
  CHECK(std::signbit(h[4]));
  CHECK(h[5] == Approx(0.33325195f).epsilon(1e-7));

  const uint16_t brains[] = {0x3F80, 0xC040, 0x4049};
  std::memcpy(buf.data() + 1, brains, sizeof(brains));
  const auto bf = dequant(ggml_type::bf16, buf.data() + 1, 3);
  CHECK(bf[0] == 1.0f);
  CHECK(bf[1] == -3.0f);
  CHECK(bf[2] == Approx(3.140625f).epsilon(0));

  const float floats[] = {1.5f, -0.0f, 3e38f};
  std::vector<uint8_t> fbuf(1 + sizeof(floats));
  std::memcpy(fbuf.data() + 1, floats, sizeof(floats));
  const auto f = dequant(ggml_type::f32, fbuf.data() + 1, 3);
  CHECK(f[0] == 1.5f);
  CHECK(f[2] == 3e38f);
}

TEST_CASE("quantize -> dequantize round trips stay within each format's step", "[dequantize]") {
  constexpr int64_t n = 32 * 64;
  const auto x = random_row(n, 42, 0.7f);
  // fp16 keeps 11 significant bits, so a stored d or m can be off by 2^-11 relative.
  constexpr float fp16_rel = 1.0f / 2048.0f;

  SECTION("Q8_0: |err| <= d/2") {
    std::vector<block_q8_0> q(n / 32);
    quantize_row_q8_0(x.data(), q.data(), n);
    const auto y = dequant(ggml_type::q8_0, q.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const float d = fp16_to_fp32(q[i / 32].d);
      REQUIRE(std::fabs(y[i] - x[i]) <= d * (0.5f + 127 * fp16_rel) + 1e-7f);
    }
  }
  SECTION("Q8_1: as Q8_0, and s = d * sum(q)") {
    std::vector<block_q8_1> q(n / 32);
    quantize_row_q8_1(x.data(), q.data(), n);
    for (const auto& b : q) {
      int sum = 0;
      for (int8_t v : b.qs) sum += v;
      const float d = fp16_to_fp32(b.d);
      // s is rounded from the unrounded d, so allow both d's and s's fp16 rounding.
      const float margin = 2 * std::fabs(d * sum) * fp16_rel + 1e-6f;
      CHECK(fp16_to_fp32(b.s) == Approx(d * sum).margin(margin));
    }
    std::vector<block_q8_0> q0(n / 32);
    quantize_row_q8_0(x.data(), q0.data(), n);
    for (size_t i = 0; i < q.size(); ++i) {
      CHECK(q[i].d == q0[i].d);
      CHECK(std::memcmp(q[i].qs, q0[i].qs, 32) == 0);
    }
  }
  SECTION("Q4_0: |err| <= |d| (the extreme opposite the max can clamp)") {
    std::vector<block_q4_0> q(n / 32);
    quantize_row_q4_0(x.data(), q.data(), n);
    const auto y = dequant(ggml_type::q4_0, q.data(), n);
    double mean_abs_err = 0;
    for (int64_t i = 0; i < n; ++i) {
      const float d = std::fabs(fp16_to_fp32(q[i / 32].d));
      REQUIRE(std::fabs(y[i] - x[i]) <= d * (1.0f + 8 * fp16_rel) + 1e-7f);
      mean_abs_err += std::fabs(y[i] - x[i]) / d;
    }
    CHECK(mean_abs_err / n < 0.3);  // rounding, not truncation: about d/4 on average
  }
  SECTION("Q4_1: |err| <= d/2 around m") {
    std::vector<block_q4_1> q(n / 32);
    quantize_row_q4_1(x.data(), q.data(), n);
    const auto y = dequant(ggml_type::q4_1, q.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const float d = fp16_to_fp32(q[i / 32].d);
      const float m = fp16_to_fp32(q[i / 32].m);
      REQUIRE(std::fabs(y[i] - x[i]) <=
              d * (0.5f + 15 * fp16_rel) + std::fabs(m) * fp16_rel + 1e-6f);
    }
  }
}

TEST_CASE("an all-zero block quantizes to zeros without dividing by zero", "[dequantize]") {
  std::vector<float> x(32, 0.0f);
  block_q4_0 a;
  block_q4_1 b;
  block_q8_0 c;
  quantize_row_q4_0(x.data(), &a, 32);
  quantize_row_q4_1(x.data(), &b, 32);
  quantize_row_q8_0(x.data(), &c, 32);
  for (float v : dequant(ggml_type::q4_0, &a, 32)) CHECK(v == 0.0f);
  for (float v : dequant(ggml_type::q4_1, &b, 32)) CHECK(v == 0.0f);
  for (float v : dequant(ggml_type::q8_0, &c, 32)) CHECK(v == 0.0f);
}
