// draft_proposer: prompt-lookup (n-gram) drafts for speculative decoding -- plain functions, no
// CAF, no model.
//
// A decoding sequence that copies from its input (a rewrite, a summary quoting its source, a code
// edit) repeats n-grams of its prompt. Prompt lookup (vLLM's "[ngram]" speculator, Saxena 2023)
// takes the last n tokens of the sequence, finds them earlier in prompt + output, and proposes
// the tokens that followed that earlier occurrence as the next tokens. The scheduler sends them
// with the last sampled token as one chunk; the executor verifies them (engine/
// speculative_sampler.hpp), so a wrong draft costs compute, never correctness.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace troupe::actors {

// Up to max_num_drafts tokens that followed the most recent earlier occurrence of the longest
// suffix n-gram of `tokens`, for n from max_ngram down to min_ngram (the first n with a match
// wins). The occurrence may overlap the suffix (a repeating pattern continues itself); drafts stop
// at the end of `tokens`. Empty when nothing matches or max_num_drafts <= 0.
// REQUIRES: 1 <= min_ngram <= max_ngram.
std::vector<int32_t> propose_prompt_lookup_drafts(std::span<const int32_t> tokens,
                                                  int32_t min_ngram, int32_t max_ngram,
                                                  int32_t max_num_drafts);

}  // namespace troupe::actors
