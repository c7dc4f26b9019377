#include "engine/speculative_sampler.hpp"

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

}  // namespace troupe::engine
