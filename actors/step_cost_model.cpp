#include "actors/step_cost_model.hpp"

#include <algorithm>
#include <cmath>

#include "troupe/result.hpp"

namespace troupe::actors {

namespace {

constexpr size_t num_features = step_cost_model::num_features;
using vec = std::array<double, num_features>;
using mat = std::array<vec, num_features>;

// The fit works in units of the prior: u_i = coefficient_i / prior_i, so that a feature's value
// times the prior is the seconds the prior charges for it. The penalty (the prior's weight)
// counts in squared seconds of a typical step, so one unit of prior_weight is about "as much as
// one observation".
constexpr double typical_step_s = 0.02;
// Of the prior's weight, this share pulls toward the prior itself; the rest only toward
// coefficients that keep the prior's proportions (see refit()).
constexpr double prior_point_share = 0.05;

vec to_vec(const step_cost_model::coefficients& c) {
  return {c.fixed_s, c.per_token_s, c.per_pair_s, c.per_kv_position_s};
}

// Solves a x = b over the indices in `use` (others are fixed at 0). Gaussian elimination with
// partial pivoting; the ridge term keeps the matrix positive definite.
vec solve(mat a, vec b, const std::array<bool, num_features>& use) {
  for (size_t i = 0; i < num_features; ++i) {
    if (use[i]) continue;
    for (size_t j = 0; j < num_features; ++j) a[i][j] = a[j][i] = 0;
    a[i][i] = 1;
    b[i] = 0;
  }
  for (size_t col = 0; col < num_features; ++col) {
    size_t piv = col;
    for (size_t r = col + 1; r < num_features; ++r)
      if (std::abs(a[r][col]) > std::abs(a[piv][col])) piv = r;
    std::swap(a[col], a[piv]);
    std::swap(b[col], b[piv]);
    TROUPE_ASSERT(a[col][col] != 0);
    for (size_t r = col + 1; r < num_features; ++r) {
      const double f = a[r][col] / a[col][col];
      for (size_t c = col; c < num_features; ++c) a[r][c] -= f * a[col][c];
      b[r] -= f * b[col];
    }
  }
  vec x{};
  for (size_t i = num_features; i-- > 0;) {
    double s = b[i];
    for (size_t c = i + 1; c < num_features; ++c) s -= a[i][c] * x[c];
    x[i] = s / a[i][i];
  }
  return x;
}

}  // namespace

void step_shape::add_chunk(int64_t first_position, int64_t num_new_tokens) {
  if (num_new_tokens <= 0) return;
  num_tokens += num_new_tokens;
  // Token at position p attends to p + 1 positions: sum over p in [first, first + n).
  const auto n = static_cast<double>(num_new_tokens);
  attention_pairs += n * static_cast<double>(first_position) + n * (n + 1) / 2;
  // The sequence reads its K/V through its last new token once (the attention kernels share
  // each K/V row among the query tokens of a chunk).
  kv_positions += static_cast<double>(first_position) + n;
}

step_cost_model::step_cost_model(coefficients prior, double decay, double prior_weight)
    : prior_(prior), decay_(decay), prior_weight_(prior_weight) {
  TROUPE_ASSERT(decay > 0 && decay <= 1 && prior_weight > 0);
  for (double c : to_vec(prior)) TROUPE_ASSERT(c >= 0);
}

step_cost_model::vec step_cost_model::features(const step_shape& s) {
  return {1.0, static_cast<double>(s.num_tokens), s.attention_pairs, s.kv_positions};
}

void step_cost_model::observe(const step_shape& s, double seconds) {
  if (!(seconds > 0) || !std::isfinite(seconds) || s.num_tokens <= 0) return;
  const vec x = features(s);
  for (size_t i = 0; i < num_features; ++i) {
    for (size_t j = 0; j < num_features; ++j) xtx_[i][j] = decay_ * xtx_[i][j] + x[i] * x[j];
    xty_[i] = decay_ * xty_[i] + x[i] * seconds;
  }
  ++num_observations_;
  is_fit_stale_ = true;
}

void step_cost_model::refit() const {
  // Ridge in units of the prior (u = coefficient / prior; a zero prior fixes its coefficient at
  // zero). The penalty pulls u mostly toward "all equal" -- the prior's proportions at whatever
  // overall speed the data says -- and only a little toward u = 1, the prior itself:
  //     (Z'Z + w s^2 ((1 - e) C + e I)) u = Z'y + w s^2 e 1,   C = I - 11'/k (centering),
  // Z the features times the prior. Data that fixes only some combinations (decodes alone: how
  // fixed + 4 tokens grows with the context) then scales the rest in proportion, instead of
  // zeroing one coefficient and inflating another.
  const vec prior = to_vec(prior_);
  std::array<bool, num_features> use{};
  size_t num_used = 0;
  for (size_t i = 0; i < num_features; ++i) num_used += (use[i] = prior[i] > 0);
  vec t{};
  if (num_used > 0) {
    mat a{};
    vec b{};
    for (size_t i = 0; i < num_features; ++i) {
      if (!use[i]) continue;
      for (size_t j = 0; j < num_features; ++j)
        if (use[j]) a[i][j] = xtx_[i][j] * prior[i] * prior[j];
      b[i] = xty_[i] * prior[i];
    }
    const double w = prior_weight_ * typical_step_s * typical_step_s;
    for (size_t i = 0; i < num_features; ++i) {
      if (!use[i]) continue;
      for (size_t j = 0; j < num_features; ++j)
        if (use[j]) a[i][j] -= w * (1 - prior_point_share) / static_cast<double>(num_used);
      a[i][i] += w;
      b[i] += w * prior_point_share;
    }
    // Non-negative least squares by elimination: a negative coefficient is fixed at 0 and the
    // others refit (at most one round per feature).
    vec u = solve(a, b, use);
    for (size_t round = 0; round < num_features; ++round) {
      size_t worst = num_features;
      for (size_t i = 0; i < num_features; ++i)
        if (use[i] && u[i] < 0 && (worst == num_features || u[i] < u[worst])) worst = i;
      if (worst == num_features) break;
      use[worst] = false;
      u = solve(a, b, use);
    }
    for (size_t i = 0; i < num_features; ++i) t[i] = use[i] ? std::max(0.0, u[i]) * prior[i] : 0;
  }
  fit_ = {t[0], t[1], t[2], t[3]};
  is_fit_stale_ = false;
}

step_cost_model::coefficients step_cost_model::fit() const {
  if (is_fit_stale_) refit();
  return fit_;
}

double step_cost_model::predict_s(const step_shape& s) const {
  const coefficients c = fit();
  return c.fixed_s + c.per_token_s * static_cast<double>(s.num_tokens) +
         c.per_pair_s * s.attention_pairs + c.per_kv_position_s * s.kv_positions;
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
