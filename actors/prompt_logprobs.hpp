// prompt_logprobs: the logprobs of a sequence's prompt tokens, for /v1/completions with echo and
// logprobs (OpenAI and vLLM return them then: entry i is prompt token i+1 given tokens 0..i).
//
// Raw logprobs: the log-softmax of the model's logits row, with no logit_bias, penalties or
// temperature (vLLM computes prompt logprobs from the raw logits too). `top` holds the `top_n`
// most likely tokens, descending, ties broken by the lower id -- the sampler's order.
//
// The executor's last stage owns one gatherer per sequence (engine_step_executor's seq_state).
// It asks for a logits row per prompt token of each chunk, computes the logprobs after the
// forward pass, and hands them out once, with the sequence's first sampled token. Only a
// sequence whose K/V it computed from position 0 can gather them all (no prefix-cache hit, not
// a forked n>1 choice); the others stay inactive. A chunk that ends inside the prompt keeps its
// last row (n_vocab floats) until the next chunk brings the token that row predicts.
// Plain classes, no state shared; one thread at a time.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/sampler.hpp"

namespace troupe::actors {

// out.token = target, out.logprob = log p(target | row), out.top = the top_n best.
// REQUIRES: 0 <= target < logits.size(); 0 <= top_n.
void compute_prompt_logprob(std::span<const float> logits, int32_t target, int32_t top_n,
                            engine::sample_result& out);

class prompt_logprobs_gatherer {
 public:
  prompt_logprobs_gatherer() = default;  // inactive
  // top_n < 0 (not asked) or first_position > 0 (K/V before it not computed here): inactive.
  prompt_logprobs_gatherer(int32_t top_n, int32_t num_prompt_tokens, int32_t first_position);

  bool is_active() const { return active_; }
  // Whether the chunk starting at first_position needs one logits row per token.
  bool wants_all_logits(int32_t first_position) const {
    return active_ && first_position < num_prompt_tokens_ - 1;
  }
  // After the forward pass of a chunk of num_tokens at first_position: `rows` are its logits
  // rows (num_tokens of them if wants_all_logits(first_position), else the last one only);
  // `tokens` every token of the sequence so far, the chunk's included.
  void add_chunk(int32_t first_position, int32_t num_tokens, const float* rows, int64_t n_vocab,
                 std::span<const int32_t> tokens);
  // With the sequence's first sampled token (tokens.size() == num_prompt_tokens): the prompt's
  // logprobs (num_prompt_tokens - 1 entries); empty otherwise or when inactive. Inactive after.
  std::vector<engine::sample_result> take(std::size_t num_tokens_so_far);

 private:
  bool active_ = false;
  int32_t top_n_ = 0;
  int32_t num_prompt_tokens_ = 0;
  std::vector<engine::sample_result> logprobs_;
  std::vector<float> pending_row_;
};

}  // namespace troupe::actors
