#include "actors/step_cost_model.hpp"

#include <algorithm>
#include <cmath>

#include "troupe/result.hpp"

namespace troupe::actors {

namespace {

// Features are scaled to be ~1 for a typical step, so one prior weight means "as much as one
// typical observation" for every coefficient and the 3x3 system stays well conditioned.
constexpr std::array<double, 3> feature_scale = {1.0, 64.0, 65536.0};

using vec3 = std::array<double, 3>;
using mat3 = std::array<vec3, 3>;

// Solves a x = b over the indices in `use` (others are fixed at 0). Gaussian elimination with
// partial pivoting; the ridge term keeps the matrix positive definite.
vec3 solve(mat3 a, vec3 b, const std::array<bool, 3>& use) {
  for (size_t i = 0; i < 3; ++i) {
    if (use[i]) continue;
    for (size_t j = 0; j < 3; ++j) a[i][j] = a[j][i] = 0;
    a[i][i] = 1;
    b[i] = 0;
  }
  for (size_t col = 0; col < 3; ++col) {
    size_t piv = col;
    for (size_t r = col + 1; r < 3; ++r)
      if (std::abs(a[r][col]) > std::abs(a[piv][col])) piv = r;
    std::swap(a[col], a[piv]);
    std::swap(b[col], b[piv]);
    TROUPE_ASSERT(a[col][col] != 0);
    for (size_t r = col + 1; r < 3; ++r) {
      const double f = a[r][col] / a[col][col];
      for (size_t c = col; c < 3; ++c) a[r][c] -= f * a[col][c];
      b[r] -= f * b[col];
    }
  }
  vec3 x{};
  for (size_t i = 3; i-- > 0;) {
    double s = b[i];
    for (size_t c = i + 1; c < 3; ++c) s -= a[i][c] * x[c];
    x[i] = s / a[i][i];
  }
  return x;
}

}  // namespace

void step_shape::add_chunk(int64_t first_position, int64_t num_new_tokens) {
  num_tokens += num_new_tokens;
  // Token at position p attends to p + 1 positions: sum over p in [first, first + n).
  const auto n = static_cast<double>(num_new_tokens);
  attention_positions += n * static_cast<double>(first_position) + n * (n + 1) / 2;
}

step_cost_model::step_cost_model(coefficients prior, double decay, double prior_weight)
    : prior_(prior), decay_(decay), prior_weight_(prior_weight) {
  TROUPE_ASSERT(decay > 0 && decay <= 1 && prior_weight > 0);
  TROUPE_ASSERT(prior.fixed_s >= 0 && prior.per_token_s >= 0 && prior.per_context_s >= 0);
}

std::array<double, 3> step_cost_model::features(const step_shape& s) {
  return {1.0 / feature_scale[0], static_cast<double>(s.num_tokens) / feature_scale[1],
          s.attention_positions / feature_scale[2]};
}

void step_cost_model::observe(const step_shape& s, double seconds) {
  if (!(seconds > 0) || !std::isfinite(seconds) || s.num_tokens <= 0) return;
  const auto x = features(s);
  for (size_t i = 0; i < 3; ++i) {
    for (size_t j = 0; j < 3; ++j) xtx_[i][j] = decay_ * xtx_[i][j] + x[i] * x[j];
    xty_[i] = decay_ * xty_[i] + x[i] * seconds;
  }
  ++num_observations_;
  is_fit_stale_ = true;
}

void step_cost_model::refit() const {
  // Ridge toward the prior, in scaled units: (X'X + w I) t = X'y + w t0.
  const vec3 t0 = {prior_.fixed_s * feature_scale[0], prior_.per_token_s * feature_scale[1],
                   prior_.per_context_s * feature_scale[2]};
  mat3 a = xtx_;
  vec3 b = xty_;
  for (size_t i = 0; i < 3; ++i) {
    a[i][i] += prior_weight_;
    b[i] += prior_weight_ * t0[i];
  }
  // Non-negative least squares by elimination: a negative coefficient is fixed at 0 and the
  // others refit (at most three rounds).
  std::array<bool, 3> use = {true, true, true};
  vec3 t = solve(a, b, use);
  for (int round = 0; round < 3; ++round) {
    size_t worst = 3;
    for (size_t i = 0; i < 3; ++i)
      if (use[i] && t[i] < 0 && (worst == 3 || t[i] < t[worst])) worst = i;
    if (worst == 3) break;
    use[worst] = false;
    t = solve(a, b, use);
  }
  for (double& v : t) v = std::max(0.0, v);
  fit_ = {t[0] / feature_scale[0], t[1] / feature_scale[1], t[2] / feature_scale[2]};
  is_fit_stale_ = false;
}

step_cost_model::coefficients step_cost_model::fit() const {
  if (is_fit_stale_) refit();
  return fit_;
}

double step_cost_model::predict_s(const step_shape& s) const {
  const coefficients c = fit();
  return c.fixed_s + c.per_token_s * static_cast<double>(s.num_tokens) +
         c.per_context_s * s.attention_positions;
}

double step_cost_model::predict_prefill_s(int64_t first_position, int64_t num_tokens) const {
  step_shape s;
  s.add_chunk(first_position, num_tokens);
  return predict_s(s);
}

int64_t step_cost_model::max_chunk_tokens(const step_shape& base, int64_t first_position,
                                          int64_t max_tokens, double max_s) const {
  // The prediction grows with n (coefficients >= 0): binary search the last n that fits.
  auto fits = [&](int64_t n) {
    step_shape s = base;
    s.add_chunk(first_position, n);
    return predict_s(s) <= max_s;
  };
  if (max_tokens <= 0 || !fits(1)) return 0;
  int64_t lo = 1, hi = max_tokens;  // fits(lo) holds
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo + 1) / 2;
    if (fits(mid))
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

}  // namespace troupe::actors
