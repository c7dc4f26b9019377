// rms_norm, silu_mul, softmax (every variant vs the reference and vs the formula), rope (vs
// the formula in double, and as a rotation), get_rows (vs the dequantizer), add_inplace.
//
// Tolerances: relative error per element 1e-5 for the variants (float sums, polynomial exp
// with relative error ~2e-7); rope 1e-5 absolute for positions < 256 (llama.cpp's float angle
// recurrence drifts with position; that drift is intended, it is what llama.cpp computes).
#include <catch2/catch.hpp>

#include <sstream>

#include "kernel_test_util.hpp"
#include "kernels/cpu/ops.hpp"

using namespace troupe;
using namespace troupe::kernels;
using kernel_test::random_floats;

namespace {
void require_close(const std::vector<float>& got, const std::vector<float>& want, double rel,
                   const std::string& what) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    const double tol = rel * std::max(1.0, std::fabs(static_cast<double>(want[i])));
    if (std::fabs(static_cast<double>(got[i]) - want[i]) > tol) {
      FAIL(what << ": element " << i << " got " << got[i] << " want " << want[i]
                << " (tolerance " << tol << ")");
    }
  }
}
}  // namespace

TEST_CASE("rms_norm, silu_mul, softmax: variants match the reference", "[ops]") {
  std::mt19937 rng(11);
  for (int64_t n : {1, 7, 8, 33, 576, 1536}) {
    const auto x = random_floats(rng, static_cast<size_t>(3 * n), -4.0f, 4.0f);
    const auto w = random_floats(rng, static_cast<size_t>(n));
    const auto up = random_floats(rng, static_cast<size_t>(n));
    std::vector<float> ref_norm(x.size()), ref_silu(static_cast<size_t>(n)), ref_soft(x.begin(), x.begin() + n);
    rms_norm(reference_kernels(), x.data(), w.data(), ref_norm.data(), 3, n, 1e-5f);
    silu_mul(reference_kernels(), x.data(), up.data(), ref_silu.data(), n);
    softmax(reference_kernels(), ref_soft.data(), n);

    // The reference against the formulas, element 0 of row 0.
    double ss = 0.0;
    for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[static_cast<size_t>(i)]) * x[static_cast<size_t>(i)];
    REQUIRE(ref_norm[0] == Approx(x[0] / std::sqrt(ss / n + 1e-5) * w[0]).epsilon(1e-6));
    REQUIRE(ref_silu[0] == Approx(x[0] / (1 + std::exp(-x[0])) * up[0]).epsilon(1e-6));
    double total = 0.0;
    for (float p : ref_soft) total += p;
    REQUIRE(total == Approx(1.0).epsilon(1e-6));

    for (const kernel_table* kt : available_kernel_tables()) {
      std::ostringstream p;
      p << "variant " << kt->name << " n=" << n;
      std::vector<float> norm(x.size()), silu(static_cast<size_t>(n)), soft(x.begin(), x.begin() + n);
      rms_norm(*kt, x.data(), w.data(), norm.data(), 3, n, 1e-5f);
      silu_mul(*kt, x.data(), up.data(), silu.data(), n);
      softmax(*kt, soft.data(), n);
      require_close(norm, ref_norm, 1e-5, "rms_norm " + p.str());
      require_close(silu, ref_silu, 1e-5, "silu_mul " + p.str());
      require_close(soft, ref_soft, 1e-5, "softmax " + p.str());
      // in place
      std::vector<float> inplace(x.begin(), x.begin() + n);
      silu_mul(*kt, inplace.data(), up.data(), inplace.data(), n);
      require_close(inplace, ref_silu, 1e-5, "silu_mul in place " + p.str());
    }
  }
}

TEST_CASE("softmax handles -inf and extreme logits", "[ops]") {
  for (const kernel_table* kt : available_kernel_tables()) {
    std::vector<float> x = {-INFINITY, 0.0f, 1000.0f, -1000.0f, 999.0f, -INFINITY, 5.0f, 1.0f, 2.0f};
    softmax(*kt, x.data(), static_cast<int64_t>(x.size()));
    INFO("variant " << kt->name);
    REQUIRE(x[0] == 0.0f);
    REQUIRE(x[5] == 0.0f);
    REQUIRE(x[2] == Approx(1.0 / (1.0 + std::exp(-1.0))).epsilon(1e-5));
    REQUIRE(x[4] == Approx(std::exp(-1.0) / (1.0 + std::exp(-1.0))).epsilon(1e-5));
  }
}

TEST_CASE("rope: adjacent pairs rotated by pos * base^(-2i/n_rot)", "[ops]") {
  std::mt19937 rng(17);
  const int32_t n_heads = 3, head_dim = 64, n_rot = 64;
  const float base = 100000.0f;
  const int32_t positions[] = {0, 1, 5, 100, 255};
  const int64_t n_tokens = 5;
  auto x = random_floats(rng, static_cast<size_t>(n_tokens * n_heads * head_dim));
  const auto orig = x;
  std::vector<float> cache(static_cast<size_t>(n_tokens * n_rot));
  rope_fill_cache(positions, n_tokens, n_rot, base, cache.data());
  rope_apply(x.data(), n_tokens, n_heads, head_dim, n_rot, cache.data());
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int32_t h = 0; h < n_heads; ++h)
      for (int32_t i = 0; i < n_rot / 2; ++i) {
        const size_t o = static_cast<size_t>((t * n_heads + h) * head_dim + 2 * i);
        const double theta = positions[t] * std::pow(static_cast<double>(base), -2.0 * i / n_rot);
        const double x0 = orig[o], x1 = orig[o + 1];
        INFO("token " << t << " pos " << positions[t] << " head " << h << " pair " << i);
        REQUIRE(std::fabs(x[o] - (x0 * std::cos(theta) - x1 * std::sin(theta))) < 1e-5);
        REQUIRE(std::fabs(x[o + 1] - (x0 * std::sin(theta) + x1 * std::cos(theta))) < 1e-5);
      }
  // Position 0 is the identity.
  for (int32_t i = 0; i < n_heads * head_dim; ++i) REQUIRE(x[static_cast<size_t>(i)] == orig[static_cast<size_t>(i)]);
}

TEST_CASE("rope: dims past n_rot pass through", "[ops]") {
  std::mt19937 rng(18);
  const int32_t positions[] = {9};
  auto x = random_floats(rng, 2 * 16);
  const auto orig = x;
  std::vector<float> cache(8);
  rope_fill_cache(positions, 1, 8, 10000.0f, cache.data());
  rope_apply(x.data(), 1, 2, 16, 8, cache.data());
  for (int h = 0; h < 2; ++h)
    for (int i = 8; i < 16; ++i) REQUIRE(x[static_cast<size_t>(h * 16 + i)] == orig[static_cast<size_t>(h * 16 + i)]);
  REQUIRE(x[0] != orig[0]);
}

TEST_CASE("get_rows dequantizes the requested rows; add_inplace adds", "[ops]") {
  std::mt19937 rng(21);
  for (ggml_type type : {ggml_type::q8_0, ggml_type::q4_1, ggml_type::f16, ggml_type::f32}) {
    const auto w = kernel_test::make_weight(rng, type, 10, 64);
    const int32_t ids[] = {7, 0, 7, 9};
    std::vector<float> out(4 * 64), row(64);
    get_rows(w.view, ids, 4, out.data());
    for (int j = 0; j < 4; ++j) {
      dequantize_row(type, w.view.row(ids[j]), row.data(), 64);
      for (int i = 0; i < 64; ++i) REQUIRE(out[static_cast<size_t>(j * 64 + i)] == row[static_cast<size_t>(i)]);
    }
  }
  std::vector<float> y = {1, 2, 3, 4, 5, 6, 7, 8, 9}, x = {9, 8, 7, 6, 5, 4, 3, 2, 1};
  add_inplace(y.data(), x.data(), 9);
  for (float v : y) REQUIRE(v == 10.0f);
}
