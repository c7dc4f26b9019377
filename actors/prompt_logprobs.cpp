#include "actors/prompt_logprobs.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "troupe/result.hpp"

namespace troupe::actors {

void compute_prompt_logprob(std::span<const float> logits, int32_t target, int32_t top_n,
                            engine::sample_result& out) {
  TROUPE_ASSERT(target >= 0 && static_cast<size_t>(target) < logits.size() && top_n >= 0);
  float m = -std::numeric_limits<float>::infinity();
  for (float v : logits) m = std::max(m, v);
  // The normaliser is accumulated in double, as the sampler's is.
  double sum = 0.0;
  for (float v : logits) sum += std::exp(static_cast<double>(v - m));
  const float log_normalizer = m + static_cast<float>(std::log(sum));
  out.token = target;
  out.logprob = logits[static_cast<size_t>(target)] - log_normalizer;
  out.top.clear();
  if (top_n == 0) return;
  // A sorted window of at most top_n entries; one pass over the vocabulary.
  const auto n = static_cast<size_t>(top_n);
  for (size_t id = 0; id < logits.size(); ++id) {
    const float v = logits[id];
    if (out.top.size() == n && !(v > out.top.back().logprob)) continue;
    engine::token_logprob e{static_cast<int32_t>(id), v};
    auto pos = std::upper_bound(
        out.top.begin(), out.top.end(), e,
        [](const engine::token_logprob& a, const engine::token_logprob& b) {
          return a.logprob > b.logprob;
        });
    out.top.insert(pos, e);
    if (out.top.size() > n) out.top.pop_back();
  }
  for (auto& e : out.top) e.logprob -= log_normalizer;
}

prompt_logprobs_gatherer::prompt_logprobs_gatherer(int32_t top_n, int32_t num_prompt_tokens,
                                                   int32_t first_position)
    : active_(top_n >= 0 && first_position == 0),
      top_n_(std::max(top_n, 0)),
      num_prompt_tokens_(num_prompt_tokens) {}

void prompt_logprobs_gatherer::add_chunk(int32_t first_position, int32_t num_tokens,
                                         const float* rows, int64_t n_vocab,
                                         std::span<const int32_t> tokens) {
  if (!active_) return;
  const auto row_size = static_cast<size_t>(n_vocab);
  // The row of position p predicts the token at p + 1.
  auto add = [&](const float* row, int32_t p) {
    engine::sample_result lp;
    compute_prompt_logprob({row, row_size}, tokens[static_cast<size_t>(p) + 1], top_n_, lp);
    logprobs_.push_back(std::move(lp));
  };
  if (!pending_row_.empty()) {
    add(pending_row_.data(), first_position - 1);
    std::vector<float>().swap(pending_row_);
  }
  if (!wants_all_logits(first_position)) return;
  for (int32_t j = 0; j < num_tokens; ++j) {
    const int32_t p = first_position + j;
    if (p + 1 >= num_prompt_tokens_) break;
    const float* row = rows + static_cast<size_t>(j) * row_size;
    if (static_cast<size_t>(p) + 1 < tokens.size()) add(row, p);
    else pending_row_.assign(row, row + row_size);
  }
}

std::vector<engine::sample_result> prompt_logprobs_gatherer::take(std::size_t num_tokens_so_far) {
  std::vector<engine::sample_result> out;
  if (!active_) return out;
  active_ = false;
  // Positions are computed in order from 0, so the first sample finds every entry; anything
  // else would be a protocol breach, and an incomplete answer must not reach the client.
  if (num_tokens_so_far == static_cast<size_t>(num_prompt_tokens_) &&
      logprobs_.size() + 1 == static_cast<size_t>(num_prompt_tokens_))
    out = std::move(logprobs_);
  logprobs_.clear();
  std::vector<float>().swap(pending_row_);
  return out;
}

}  // namespace troupe::actors
