#include "engine/speculative_sampler.hpp"

#include <algorithm>

namespace troupe::engine {

void verify_drafts(sampler& s, std::span<const float> rows, std::span<const int32_t> drafts,
                   const sampling_params& p, std::span<const int32_t> tokens,
                   int32_t num_prompt_tokens, int32_t first_position,
                   std::vector<sample_result>& out) {
  const auto k = static_cast<int64_t>(drafts.size());
  const auto n_vocab = static_cast<size_t>(s.vocab_size());
  TROUPE_ASSERT(rows.size() == static_cast<size_t>(k + 1) * n_vocab);
  TROUPE_ASSERT(static_cast<int64_t>(tokens.size()) == first_position + 1 + k);
  TROUPE_ASSERT(num_prompt_tokens >= 0 && num_prompt_tokens <= first_position + 1);
  const auto prompt = tokens.first(static_cast<size_t>(num_prompt_tokens));
  out.clear();
  for (int64_t j = 0; j <= k; ++j) {
    // What a plain decode step at this position sees: the tokens through position
    // first_position + j, of which those past the prompt are output (and the draw index).
    const auto end = static_cast<size_t>(first_position + 1 + j);
    token_history h{prompt, tokens.subspan(prompt.size(), end - prompt.size())};
    out.emplace_back();
    s.sample(rows.subspan(static_cast<size_t>(j) * n_vocab, n_vocab), p, h, out.back());
    if (j == k || out.back().token != drafts[static_cast<size_t>(j)]) break;
  }
}

double draw_uniform_draft(uint64_t seed, uint64_t index) {
  return draw_uniform(seed ^ 0x6a09e667f3bcc908ull, index);
}
double draw_uniform_accept(uint64_t seed, uint64_t index) {
  return draw_uniform(seed ^ 0xbb67ae8584caa73bull, index);
}
double draw_uniform_residual(uint64_t seed, uint64_t index) {
  return draw_uniform(seed ^ 0x3c6ef372fe94f82bull, index);
}

void verify_drafts_with_probs(sampler& s, std::span<const float> rows,
                              std::span<const int32_t> drafts, std::span<const float> draft_probs,
                              const sampling_params& p, std::span<const int32_t> tokens,
                              int32_t num_prompt_tokens, int32_t first_position,
                              std::vector<sample_result>& out) {
  const auto k = static_cast<int64_t>(drafts.size());
  const auto n_vocab = static_cast<size_t>(s.vocab_size());
  TROUPE_ASSERT(rows.size() == static_cast<size_t>(k + 1) * n_vocab);
  TROUPE_ASSERT(draft_probs.size() == static_cast<size_t>(k) * n_vocab);
  TROUPE_ASSERT(static_cast<int64_t>(tokens.size()) == first_position + 1 + k);
  TROUPE_ASSERT(num_prompt_tokens >= 0 && num_prompt_tokens <= first_position + 1);
  const auto prompt = tokens.first(static_cast<size_t>(num_prompt_tokens));
  thread_local std::vector<float> target;  // p_j, then the residual; one row, reused
  target.resize(n_vocab);
  out.clear();
  for (int64_t j = 0; j <= k; ++j) {
    const auto end = static_cast<size_t>(first_position + 1 + j);
    token_history h{prompt, tokens.subspan(prompt.size(), end - prompt.size())};
    const auto row = rows.subspan(static_cast<size_t>(j) * n_vocab, n_vocab);
    out.emplace_back();
    if (j == k) {  // every draft held: the bonus token is a plain sample
      s.sample(row, p, h, out.back());
      break;
    }
    sample_result& r = out.back();
    s.distribution(row, p, h, target, r);
    const auto q = draft_probs.subspan(static_cast<size_t>(j) * n_vocab, n_vocab);
    const int32_t d = drafts[static_cast<size_t>(j)];
    const auto index = static_cast<uint64_t>(h.output.size());
    const double pd = target[static_cast<size_t>(d)], qd = q[static_cast<size_t>(d)];
    // accept with min(1, p/q): u < p/q  <=>  u q < p (q(d) > 0 for a draft drawn from q).
    if (draw_uniform_accept(p.seed, index) * qd < pd) {
      r.token = d;
    } else {
      double residual_mass = 0.0;
      for (size_t x = 0; x < n_vocab; ++x) {
        target[x] = std::max(0.0f, target[x] - q[x]);
        residual_mass += target[x];
      }
      // p == q on the support leaves no residual; only reachable through rounding, and then
      // p itself is the right law (the draft was rejected with probability ~0).
      if (!(residual_mass > 0.0)) s.distribution(row, p, h, target, r);
      r.token = draw_from(target, draw_uniform_residual(p.seed, index));
    }
    r.logprob = p.top_logprobs >= 0 ? s.processed_logprob(r.token) : 0.0f;
    if (r.token != d) break;
  }
}

}  // namespace troupe::engine
