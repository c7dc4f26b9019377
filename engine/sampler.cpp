#include "engine/sampler.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>

namespace troupe::engine {
namespace {

constexpr float neg_inf = -std::numeric_limits<float>::infinity();

uint64_t splitmix64_mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Descending by logit, ascending by id on ties: the one order used for every "top" decision so
// results never depend on the standard library's tie handling.
bool higher(const std::pair<float, int32_t>& a, const std::pair<float, int32_t>& b) {
  return a.first > b.first || (a.first == b.first && a.second < b.second);
}

bool in_range(float v, float lo, float hi) { return std::isfinite(v) && v >= lo && v <= hi; }

}  // namespace

status validate(const sampling_params& p, int32_t vocab_size) {
  auto bad = [](const std::string& what) { return status(error{"invalid sampling parameter: " + what}); };
  if (!std::isfinite(p.temperature) || p.temperature < 0.0f)
    return bad("temperature must be >= 0 (got " + std::to_string(p.temperature) + ")");
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f))
    return bad("top_p must be in (0, 1] (got " + std::to_string(p.top_p) + ")");
  if (!in_range(p.min_p, 0.0f, 1.0f))
    return bad("min_p must be in [0, 1] (got " + std::to_string(p.min_p) + ")");
  if (!std::isfinite(p.repetition_penalty) || p.repetition_penalty <= 0.0f)
    return bad("repetition_penalty must be > 0 (got " + std::to_string(p.repetition_penalty) + ")");
  if (!in_range(p.presence_penalty, -2.0f, 2.0f))
    return bad("presence_penalty must be in [-2, 2] (got " + std::to_string(p.presence_penalty) + ")");
  if (!in_range(p.frequency_penalty, -2.0f, 2.0f))
    return bad("frequency_penalty must be in [-2, 2] (got " + std::to_string(p.frequency_penalty) +
               ")");
  if (p.top_logprobs < -1 || p.top_logprobs > max_top_logprobs)
    return bad("top_logprobs must be in [0, 20] (got " + std::to_string(p.top_logprobs) + ")");
  for (const auto& [token, bias] : p.logit_bias) {
    if (token < 0 || token >= vocab_size)
      return bad("logit_bias token " + std::to_string(token) + " is outside the vocabulary (size " +
                 std::to_string(vocab_size) + ")");
    if (!in_range(bias, -100.0f, 100.0f))
      return bad("logit_bias for token " + std::to_string(token) + " must be in [-100, 100]");
  }
  return {};
}

uint64_t random_seed() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

double draw_uniform(uint64_t seed, uint64_t index) {
  // Two rounds of the splitmix64 finaliser over (seed, index): a counter-based generator, so the
  // draw depends only on these two numbers. 53 high bits give a double in [0, 1).
  const uint64_t z = splitmix64_mix(splitmix64_mix(seed) ^ (index * 0x9E3779B97F4A7C15ull));
  return static_cast<double>(z >> 11) * 0x1.0p-53;
}

sampler::sampler(int32_t vocab_size, std::vector<int32_t> end_of_generation)
    : vocab_size_(vocab_size), end_of_generation_(std::move(end_of_generation)) {
  TROUPE_ASSERT(vocab_size > 0);
  work_.resize(vocab_size);
  counts_.assign(vocab_size, 0);
  seen_.assign(vocab_size, 0);
  candidates_.reserve(vocab_size);
}

void sampler::apply_penalties(const sampling_params& p, const token_history& h) {
  const bool repetition = p.repetition_penalty != 1.0f;
  const bool additive = p.frequency_penalty != 0.0f || p.presence_penalty != 0.0f;
  if (!repetition && !additive) return;
  touched_.clear();
  auto mark = [&](int32_t t) {
    TROUPE_ASSERT(t >= 0 && t < vocab_size_);
    if (!seen_[t]) {
      seen_[t] = 1;
      touched_.push_back(t);
    }
  };
  for (int32_t t : h.output) {
    mark(t);
    ++counts_[t];
  }
  if (repetition)
    for (int32_t t : h.prompt) mark(t);
  for (int32_t t : touched_) {
    float& l = work_[t];
    if (repetition) l = l > 0.0f ? l / p.repetition_penalty : l * p.repetition_penalty;
    const int32_t c = counts_[t];
    if (c > 0) l -= p.frequency_penalty * static_cast<float>(c) + p.presence_penalty;
    counts_[t] = 0;  // leave the scratch zeroed for the next call
    seen_[t] = 0;
  }
}

void sampler::collect_top_logprobs(int32_t n, sample_result& out) {
  float m = neg_inf;
  for (float v : work_) m = std::max(m, v);
  double sum = 0.0;
  for (float v : work_) sum += std::exp(static_cast<double>(v - m));
  log_normalizer_ = m + static_cast<float>(std::log(sum));
  out.top.clear();
  if (n <= 0) return;
  // A sorted window of at most n entries; the vocabulary is scanned once.
  for (int32_t id = 0; id < vocab_size_; ++id) {
    const float v = work_[id];
    if (static_cast<int32_t>(out.top.size()) == n && !(v > out.top.back().logprob)) continue;
    token_logprob e{id, v};
    auto pos = std::upper_bound(out.top.begin(), out.top.end(), e,
                                [](const token_logprob& a, const token_logprob& b) {
                                  return a.logprob > b.logprob;
                                });
    out.top.insert(pos, e);
    if (static_cast<int32_t>(out.top.size()) > n) out.top.pop_back();
  }
  for (auto& e : out.top) e.logprob -= log_normalizer_;
}

float sampler::keep_candidates(const sampling_params& p) {
  candidates_.clear();
  float m = neg_inf;
  for (int32_t id = 0; id < vocab_size_; ++id) m = std::max(m, work_[id]);
  // min_p: p_t >= min_p * p_max  <=>  logit_t >= max_logit + ln(min_p).
  const float floor = p.min_p > 0.0f ? m + std::log(p.min_p) : neg_inf;
  for (int32_t id = 0; id < vocab_size_; ++id)
    if (work_[id] >= floor && work_[id] > neg_inf) candidates_.emplace_back(work_[id], id);
  TROUPE_ASSERT(!candidates_.empty());

  if (p.top_k > 0 && static_cast<size_t>(p.top_k) < candidates_.size()) {
    std::nth_element(candidates_.begin(), candidates_.begin() + (p.top_k - 1), candidates_.end(),
                     higher);
    candidates_.resize(p.top_k);
  }
  if (p.top_p < 1.0f) {
    double total = 0.0;
    for (const auto& c : candidates_) total += std::exp(static_cast<double>(c.first - m));
    const double target = static_cast<double>(p.top_p) * total;
    // Most of the mass usually sits in a few tokens: sort a growing prefix, not the whole vocab.
    size_t sorted_n = 0, keep = 0;
    double before = 0.0;
    for (size_t window = 64;; window *= 8) {
      const size_t w = std::min(window, candidates_.size());
      std::partial_sort(candidates_.begin() + sorted_n, candidates_.begin() + w, candidates_.end(),
                        higher);
      sorted_n = w;
      while (keep < sorted_n && before < target) {
        before += std::exp(static_cast<double>(candidates_[keep].first - m));
        ++keep;
      }
      if (keep < sorted_n || sorted_n == candidates_.size()) break;
    }
    candidates_.resize(std::max<size_t>(keep, 1));
  }
  // Ascending id order, so that a draw is a function of the kept set alone.
  std::sort(candidates_.begin(), candidates_.end(),
            [](const auto& a, const auto& b) { return a.second < b.second; });
  return m;
}

int32_t sampler::draw(const sampling_params& p, double u) {
  const float m = keep_candidates(p);
  // Inverse CDF in ascending id order.
  double total = 0.0;
  for (const auto& c : candidates_) total += std::exp(static_cast<double>(c.first - m));
  const double target = u * total;
  double acc = 0.0;
  for (const auto& c : candidates_) {
    acc += std::exp(static_cast<double>(c.first - m));
    if (acc > target) return c.second;
  }
  return candidates_.back().second;  // only reachable through rounding at u close to 1
}

void sampler::prepare(std::span<const float> logits, const sampling_params& p,
                      const token_history& h, sample_result& out) {
  TROUPE_ASSERT(static_cast<int32_t>(logits.size()) == vocab_size_);
  std::copy(logits.begin(), logits.end(), work_.begin());
  for (const auto& [token, bias] : p.logit_bias) work_[token] += bias;
  if (p.ignore_eos)
    for (int32_t t : end_of_generation_)
      if (t >= 0 && t < vocab_size_) work_[t] = neg_inf;
  apply_penalties(p, h);

  if (!p.is_greedy()) {
    const float inv_t = 1.0f / p.temperature;
    for (float& v : work_) v *= inv_t;
  }
  if (p.top_logprobs >= 0) collect_top_logprobs(p.top_logprobs, out);
  else out.top.clear();
}

void sampler::sample(std::span<const float> logits, const sampling_params& p,
                     const token_history& h, sample_result& out) {
  prepare(logits, p, h, out);
  if (p.is_greedy()) {
    out.token = static_cast<int32_t>(std::max_element(work_.begin(), work_.end()) - work_.begin());
  } else {
    out.token = draw(p, draw_uniform(p.seed, h.output.size()));
  }
  out.logprob = p.top_logprobs >= 0 ? work_[out.token] - log_normalizer_ : 0.0f;
}

void sampler::distribution(std::span<const float> logits, const sampling_params& p,
                           const token_history& h, std::span<float> probs, sample_result& out) {
  TROUPE_ASSERT(static_cast<int32_t>(probs.size()) == vocab_size_);
  prepare(logits, p, h, out);
  out.token = -1;
  std::fill(probs.begin(), probs.end(), 0.0f);
  if (p.is_greedy()) {
    probs[static_cast<size_t>(std::max_element(work_.begin(), work_.end()) - work_.begin())] = 1;
    return;
  }
  const float m = keep_candidates(p);
  double total = 0.0;
  for (const auto& c : candidates_) total += std::exp(static_cast<double>(c.first - m));
  for (const auto& c : candidates_)
    probs[static_cast<size_t>(c.second)] =
        static_cast<float>(std::exp(static_cast<double>(c.first - m)) / total);
}

float sampler::processed_logprob(int32_t token) const {
  TROUPE_ASSERT(token >= 0 && token < vocab_size_);
  return work_[static_cast<size_t>(token)] - log_normalizer_;
}

int32_t draw_from(std::span<const float> weights, double u) {
  double total = 0.0;
  for (float w : weights) total += std::max(0.0f, w);
  TROUPE_ASSERT(total > 0.0);
  const double target = u * total;
  double acc = 0.0;
  int32_t last = -1;
  for (size_t id = 0; id < weights.size(); ++id) {
    if (!(weights[id] > 0.0f)) continue;
    acc += weights[id];
    last = static_cast<int32_t>(id);
    if (acc > target) return last;
  }
  return last;  // only reachable through rounding at u close to 1
}

}  // namespace troupe::engine
