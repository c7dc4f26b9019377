// verify_drafts: every emitted token is the token plain decoding samples at that position (same
// draw index, same penalty history), so greedy and seeded outputs do not change with drafts; and
// for temperature > 0 the emitted distribution is the target's (a chi-square test over fixed
// seeds: P(accept) = p(draft), the rejected case follows the residual).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "engine/speculative_sampler.hpp"

using namespace troupe::engine;

namespace {

constexpr int32_t vocab = 8;

// Two rows of logits: the one after t0 and the one after the draft.
std::vector<float> two_rows() {
  return {1.0f, 2.5f, 0.2f, 2.0f, -1.0f, 1.5f, 0.0f, -3.0f,   // row 0
          0.5f, -1.0f, 2.2f, 1.0f, 2.0f, 0.0f, 1.8f, -2.0f};  // row 1
}

// The target distribution of one row after temperature and top-k (penalties off).
std::vector<double> target_probs(std::span<const float> row, float temperature, int32_t top_k) {
  std::vector<float> sorted(row.begin(), row.end());
  std::sort(sorted.begin(), sorted.end(), std::greater<>());
  const float kth = sorted[static_cast<size_t>(top_k - 1)];
  std::vector<double> p(row.size(), 0.0);
  double total = 0.0;
  for (size_t i = 0; i < row.size(); ++i)
    if (row[i] >= kth) total += p[i] = std::exp(static_cast<double>(row[i] / temperature));
  for (auto& x : p) x /= total;
  return p;
}

double chi_square(const std::vector<int>& counts, const std::vector<double>& p, int n) {
  double chi = 0.0;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == 0.0) {
      REQUIRE(counts[i] == 0);
      continue;
    }
    const double e = p[i] * n;
    chi += (counts[i] - e) * (counts[i] - e) / e;
  }
  return chi;
}

}  // namespace

TEST_CASE("verified drafts emit exactly what plain decoding samples, token by token",
          "[spec_sampler]") {
  sampler s(vocab, {});
  const std::vector<float> rows = [] {
    std::vector<float> r;
    for (int j = 0; j < 4; ++j)
      for (int t = 0; t < vocab; ++t) r.push_back(std::sin(1.7f * t + 2.3f * j) * 3.0f);
    return r;
  }();
  for (float temperature : {0.0f, 0.8f, 1.5f})
    for (uint64_t seed = 1; seed <= 200; ++seed) {
      sampling_params p;
      p.temperature = temperature;
      p.seed = seed;
      p.frequency_penalty = 0.7f;  // the history of every row must include the earlier drafts
      p.repetition_penalty = 1.3f;
      p.top_logprobs = 2;
      // prompt 3 tokens, 2 output tokens so far (the last is t0 at position 4), then 3 drafts.
      std::vector<int32_t> tokens = {1, 2, 3, 5, 6};
      const std::vector<int32_t> drafts = {static_cast<int32_t>(seed % vocab),
                                           static_cast<int32_t>(seed * 3 % vocab), 4};
      // Plain decoding: one sample per row, history growing by the drafts while they agree.
      std::vector<sample_result> plain;
      std::vector<int32_t> hist = tokens;
      for (int j = 0; j <= 3; ++j) {
        plain.emplace_back();
        const std::span<const int32_t> all(hist);
        s.sample(std::span<const float>(rows).subspan(static_cast<size_t>(j) * vocab, vocab), p,
                 {all.first(3), all.subspan(3)}, plain.back());
        if (j == 3 || plain.back().token != drafts[static_cast<size_t>(j)]) break;
        hist.push_back(drafts[static_cast<size_t>(j)]);
      }
      tokens.insert(tokens.end(), drafts.begin(), drafts.end());
      std::vector<sample_result> spec;
      verify_drafts(s, rows, drafts, p, tokens, 3, 4, spec);
      INFO("temperature " << temperature << " seed " << seed);
      REQUIRE(spec.size() == plain.size());
      for (size_t i = 0; i < spec.size(); ++i) {
        CHECK(spec[i].token == plain[i].token);
        CHECK(spec[i].logprob == plain[i].logprob);
        CHECK(spec[i].top.size() == plain[i].top.size());
      }
    }
}

TEST_CASE("greedy verification accepts drafts while they are the argmax", "[spec_sampler]") {
  sampler s(vocab, {});
  const auto rows = two_rows();  // argmax row 0: 1; row 1: 2
  sampling_params p;
  std::vector<sample_result> out;
  verify_drafts(s, rows, std::vector<int32_t>{1}, p, std::vector<int32_t>{0, 7, 1}, 1, 1, out);
  REQUIRE(out.size() == 2);
  CHECK(out[0].token == 1);
  CHECK(out[1].token == 2);
  verify_drafts(s, rows, std::vector<int32_t>{3}, p, std::vector<int32_t>{0, 7, 3}, 1, 1, out);
  REQUIRE(out.size() == 1);
  CHECK(out[0].token == 1);  // the model's own token replaces the rejected draft
}

TEST_CASE("rejection sampling keeps the target distribution (chi-square, fixed seeds)",
          "[spec_sampler]") {
  sampler s(vocab, {});
  const auto rows = two_rows();
  sampling_params p;
  p.temperature = 0.9f;
  p.top_k = 5;
  const auto p0 = target_probs(std::span<const float>(rows).first(vocab), p.temperature, p.top_k);
  const auto p1 = target_probs(std::span<const float>(rows).subspan(vocab), p.temperature, p.top_k);
  // Chi-square critical value at 99.9% for 4 degrees of freedom (5 kept tokens): 18.47.
  constexpr double critical = 18.47;
  constexpr int num_draws = 40000;
  for (int32_t draft : {1, 3, 6}) {  // a likely, a middling and a truncated (p = 0) draft
    INFO("draft " << draft);
    std::vector<int> first(vocab, 0), second(vocab, 0), plain(vocab, 0);
    int num_accepted = 0;
    std::vector<sample_result> out;
    sample_result one;
    for (int i = 0; i < num_draws; ++i) {
      p.seed = 1000003ull * static_cast<uint64_t>(i) + 17;
      verify_drafts(s, rows, std::vector<int32_t>{draft}, p, std::vector<int32_t>{0, 7, draft},
                    1, 1, out);
      ++first[out[0].token];
      if (out.size() == 2) {
        ++num_accepted;
        ++second[out[1].token];
      }
      // The non-speculative sampler with another set of seeds: its own empirical distribution.
      p.seed = 7777777ull * static_cast<uint64_t>(i) + 5;
      const std::vector<int32_t> prompt = {0}, output = {7};
      s.sample(std::span<const float>(rows).first(vocab), p, {prompt, output}, one);
      ++plain[one.token];
    }
    CHECK(chi_square(first, p0, num_draws) < critical);
    CHECK(chi_square(plain, p0, num_draws) < critical);
    // Acceptance probability p(draft): within 4 standard deviations.
    const double pa = p0[static_cast<size_t>(draft)];
    CHECK(std::abs(num_accepted - pa * num_draws) <= 4 * std::sqrt(num_draws * pa * (1 - pa)) + 1);
    if (num_accepted > 1000) CHECK(chi_square(second, p1, num_accepted) < critical);
    // The rejected case follows the residual: p without the draft, renormalised.
    std::vector<int> rejected = first;
    rejected[static_cast<size_t>(draft)] -= num_accepted;
    CHECK(rejected[static_cast<size_t>(draft)] == 0);
    std::vector<double> residual = p0;
    residual[static_cast<size_t>(draft)] = 0.0;
    for (auto& x : residual) x /= 1.0 - pa;
    CHECK(chi_square(rejected, residual, num_draws - num_accepted) < critical);
  }
}

TEST_CASE("sampler::distribution is the law sample() draws from", "[spec_sampler]") {
  sampler s(vocab, {});
  const auto rows = two_rows();
  const auto row = std::span<const float>(rows).first(vocab);
  sampling_params p;
  p.temperature = 0.9f;
  p.top_k = 5;
  std::vector<float> probs(vocab);
  sample_result r;
  const std::vector<int32_t> prompt = {0};
  s.distribution(row, p, {prompt, {}}, probs, r);
  const auto want = target_probs(row, p.temperature, p.top_k);
  for (int t = 0; t < vocab; ++t) CHECK(probs[t] == Approx(want[t]).margin(1e-6));
  p.temperature = 0.0f;  // greedy: a point mass at the argmax
  s.distribution(row, p, {prompt, {}}, probs, r);
  CHECK(probs == std::vector<float>{0, 1, 0, 0, 0, 0, 0, 0});
}

TEST_CASE("the general rule with a draft distribution q keeps the target distribution "
          "(chi-square, fixed seeds)",
          "[spec_sampler]") {
  // A draft model's q differs from p everywhere, and puts mass on tokens p truncated away (6, 7
  // are outside p's top 5): accept min(1, p/q), resample from norm(max(p - q, 0)).
  sampler s(vocab, {});
  auto rows = two_rows();
  rows.insert(rows.end(), {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f});  // bonus row
  sampling_params p;
  p.temperature = 0.9f;
  p.top_k = 5;
  const auto p0 = target_probs(std::span<const float>(rows).first(vocab), p.temperature, p.top_k);
  const auto p1 = target_probs(std::span<const float>(rows).subspan(vocab, vocab), p.temperature,
                               p.top_k);
  const std::vector<float> q0 = {0.05f, 0.1f, 0.3f, 0.05f, 0.1f, 0.1f, 0.2f, 0.1f};
  const std::vector<float> q1 = {0.2f, 0.05f, 0.05f, 0.3f, 0.1f, 0.1f, 0.1f, 0.1f};
  std::vector<float> q(q0);
  q.insert(q.end(), q1.begin(), q1.end());
  double expect_accept = 0.0;  // sum_x min(p0, q0)
  for (int t = 0; t < vocab; ++t) expect_accept += std::min(p0[t], static_cast<double>(q0[t]));

  constexpr double critical = 18.47;  // 99.9 %, 4 degrees of freedom (p keeps 5 tokens)
  constexpr int num_draws = 40000;
  std::vector<int> first(vocab, 0), second(vocab, 0);
  int num_accepted = 0;
  std::vector<sample_result> out;
  for (int i = 0; i < num_draws; ++i) {
    p.seed = 1000003ull * static_cast<uint64_t>(i) + 17;
    // What draft_model does: draw each draft from its row of q with the draft's own uniform.
    const std::vector<int32_t> drafts = {draw_from(q0, draw_uniform_draft(p.seed, 1)),
                                         draw_from(q1, draw_uniform_draft(p.seed, 2))};
    verify_drafts_with_probs(s, rows, drafts, q, p,
                             std::vector<int32_t>{0, 7, drafts[0], drafts[1]}, 1, 1, out);
    REQUIRE(!out.empty());
    REQUIRE(out.size() <= 3);
    ++first[out[0].token];
    if (out[0].token == drafts[0]) {
      ++num_accepted;
      REQUIRE(out.size() >= 2);
      ++second[out[1].token];
    } else {
      REQUIRE(out.size() == 1);  // a rejection ends the run
    }
  }
  CHECK(chi_square(first, p0, num_draws) < critical);
  CHECK(chi_square(second, p1, num_accepted) < critical);
  // Acceptance is sum min(p, q) -- more than the point-mass rule's sum p q would get.
  CHECK(std::abs(num_accepted - expect_accept * num_draws) <=
        4 * std::sqrt(num_draws * expect_accept * (1 - expect_accept)) + 1);
  double point_mass_accept = 0.0;
  for (int t = 0; t < vocab; ++t) point_mass_accept += p0[t] * q0[t];
  CHECK(expect_accept > point_mass_accept + 0.05);
}
