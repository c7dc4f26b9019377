// sampler: turns one row of logits into one token id, with OpenAI/vLLM sampling semantics.
//
// Order (vLLM v1, see the facts note §7), all in float32 on a private copy of the row:
//   1. logit_bias            logit[t] += bias[t]                       (additive, OpenAI)
//   2. ignore_eos            end-of-generation tokens -> -inf          (llama.cpp server's meaning)
//   3. repetition_penalty    for t in prompt ∪ output: logit > 0 ? logit / r : logit * r
//   4. frequency / presence  logit[t] -= frequency * count_out(t) + presence * (count_out(t) > 0)
//                            (OpenAI: output tokens only, additive; negative values allowed)
//   5. greedy                temperature < 1e-5: argmax (lowest id on ties), steps 6-9 skipped
//   6. temperature           logit /= T
//   7. min_p                 keep p_t >= min_p * p_max (softmax of the temperature-scaled logits)
//   8. top_k                 keep the k largest (ties at the k-th value broken by lower id)
//   9. top_p                 keep the smallest prefix (by descending probability) of the
//                            renormalised distribution whose mass reaches top_p; the top token is
//                            always kept
//  10. draw                  inverse CDF over the kept tokens in ascending id order, with
//                            u = draw_uniform(seed, index of the token being generated)
//
// Reproducibility: the random number for the i-th generated token of a request is a pure
// function of (seed, i) -- a counter-based generator (splitmix64 finaliser of seed and index),
// with no state carried between steps. So a request draws the same tokens whether it runs alone,
// in a batch, or is recomputed after a restart/preemption. A request without a user seed gets
// one from random_seed() once, when it is created.
//
// Logprobs: "processed" logprobs, as vLLM's logprobs_mode=processed_logprobs: the log-softmax of
// the logits after steps 1-4 and temperature scaling (step 6; none when greedy), before the
// min_p/top_k/top_p truncation. The chosen token's logprob and the top N come from that row.
//
// Thread-safety: a sampler holds scratch buffers; use one per thread. sample() does not
// allocate once its buffers have grown to the vocabulary size (first call).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "troupe/result.hpp"

namespace troupe::engine {

inline constexpr int32_t max_top_logprobs = 20;  // OpenAI's cap on top_logprobs

struct sampling_params {
  float temperature = 0.0f;          // 0 (or < 1e-5): greedy
  int32_t top_k = 0;                 // <= 0: off
  float top_p = 1.0f;                // (0, 1]; 1: off
  float min_p = 0.0f;                // [0, 1]; 0: off
  float repetition_penalty = 1.0f;   // > 0; 1: off
  float presence_penalty = 0.0f;     // [-2, 2]
  float frequency_penalty = 0.0f;    // [-2, 2]
  std::vector<std::pair<int32_t, float>> logit_bias;  // (token, bias in [-100, 100])
  uint64_t seed = 0;                 // see random_seed()
  int32_t top_logprobs = -1;         // -1: no logprobs; 0: only the chosen token's; N<=20: top N
  bool ignore_eos = false;           // ban end-of-generation tokens (generation never stops on EOS)
  // Not used by the sampler: -1, or N <= 20 when the executor must also return the prompt
  // tokens' logprobs with their top N (completions echo + logprobs; actors/prompt_logprobs.hpp).
  int32_t prompt_logprobs = -1;
  // Not used by the sampler: GBNF the output must match (structured outputs), empty for none.
  // The last stage masks the logits with it before sample() (grammar/grammar_constraint.hpp).
  std::string grammar;

  bool is_greedy() const { return temperature < 1e-5f; }
};

// Input errors (a value out of range, a logit_bias token outside the vocabulary) as a message
// that names the parameter.
status validate(const sampling_params& p, int32_t vocab_size);

// A fresh seed from the OS entropy source, for requests that did not give one.
uint64_t random_seed();

// The uniform number in [0, 1) used to draw the `index`-th generated token of a request with
// `seed`. Pure function; exposed for tests.
double draw_uniform(uint64_t seed, uint64_t index);

struct token_logprob {
  int32_t token = -1;
  float logprob = 0.0f;
};

struct sample_result {
  int32_t token = -1;
  float logprob = 0.0f;                 // of `token`; set only when top_logprobs >= 0
  std::vector<token_logprob> top;       // top N by logprob, descending (ties: lower id first)
};

// What the sampler needs to know about the request's tokens so far.
struct token_history {
  std::span<const int32_t> prompt;   // repetition penalty looks here and at `output`
  std::span<const int32_t> output;   // generated tokens; output.size() is the draw index
};

// Inverse CDF over non-negative weights (not necessarily normalised) in ascending id order: the
// id where the running sum first exceeds u * total. REQUIRES: some weight > 0; u in [0, 1).
int32_t draw_from(std::span<const float> weights, double u);

class sampler {
 public:
  // `end_of_generation`: the model's EOG token ids (banned when ignore_eos is set).
  sampler(int32_t vocab_size, std::vector<int32_t> end_of_generation);

  // Samples one token from `logits` (vocab_size floats, not modified). `out.top` keeps its
  // capacity between calls. REQUIRES: validate(p, vocab_size) passed; logits.size() == vocab.
  void sample(std::span<const float> logits, const sampling_params& p, const token_history& h,
              sample_result& out);

  // The distribution sample() would draw from, for speculative decoding with a draft model
  // (engine/speculative_sampler.hpp): probs (vocab_size floats) receives the probabilities after
  // every step 1-9 above (zero outside the kept set; greedy: 1 at the argmax); out.top as
  // sample() fills it, out.token = -1. processed_logprob(t) then gives t's logprob as sample()
  // reports it (valid only when p.top_logprobs >= 0, until the next call).
  // REQUIRES: as sample(); probs.size() == vocab_size.
  void distribution(std::span<const float> logits, const sampling_params& p,
                    const token_history& h, std::span<float> probs, sample_result& out);
  float processed_logprob(int32_t token) const;

  int32_t vocab_size() const { return vocab_size_; }

 private:
  // Steps 1-6 into work_, and out.top; then keep_candidates does 7-9 (candidates_ in ascending
  // id order) and returns the largest processed logit.
  void prepare(std::span<const float> logits, const sampling_params& p, const token_history& h,
               sample_result& out);
  float keep_candidates(const sampling_params& p);
  void apply_penalties(const sampling_params& p, const token_history& h);
  void collect_top_logprobs(int32_t n, sample_result& out);
  int32_t draw(const sampling_params& p, double u);

  int32_t vocab_size_;
  std::vector<int32_t> end_of_generation_;
  std::vector<float> work_;            // [vocab] processed logits
  std::vector<int32_t> counts_;        // [vocab] output counts; zero between calls
  std::vector<uint8_t> seen_;          // [vocab] prompt∪output membership; zero between calls
  std::vector<int32_t> touched_;       // ids whose counts_/seen_ entries must be reset
  std::vector<std::pair<float, int32_t>> candidates_;  // (logit, id) surviving truncation
  float log_normalizer_ = 0.0f;        // logsumexp of work_, for logprobs
};

}  // namespace troupe::engine
