// The requests of a benchmark run: how long each prompt and each output is, when each request
// arrives, and the prompt text itself.
//
// Synthetic length shapes (sample_lengths). The means come from the vLLM paper (Kwon et al.,
// "Efficient Memory Management for Large Language Model Serving with PagedAttention", SOSP 2023,
// Fig. 11): ShareGPT has mean input 161.31 and mean output 337.99 tokens; Alpaca (our "short chat")
// mean input 19.31 and mean output 58.45. The shape is ours: a log-normal with that mean
// (mu = ln(mean) - sigma^2/2) and the sigma below, which gives the long right tail of those
// histograms; samples are clipped as vLLM's ShareGPT sampler filters (>= 4 tokens, prompt <= 1024,
// prompt + output <= 2048), so the realised means are a little lower than the paper's:
//   sharegpt:   input  lognormal(mean 161.31, sigma 1.0) clipped [4, 1024]
//               output lognormal(mean 337.99, sigma 0.9) clipped [4, 1024]
//   short-chat: input  lognormal(mean 19.31,  sigma 0.7) clipped [4, 256]
//               output lognormal(mean 58.45,  sigma 0.8) clipped [4, 256]
// A fixed output length (--output-len) overrides the output draw.
//
// Arrivals (arrival_times): all at t = 0 for an infinite rate (closed loop; the concurrency cap
// paces them), else a renewal process with gamma-distributed gaps of mean 1/rate and shape
// `burstiness` (1.0 = exponential gaps = Poisson arrivals, as vLLM's --burstiness).
//
// Everything is deterministic for a given seed. Pure functions; any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "troupe/result.hpp"

namespace troupe::bench {

struct lognormal_shape {
  double mean = 0;    // of the unclipped distribution
  double sigma = 0;   // of the underlying normal
  int64_t min = 0, max = 0;  // clip range, inclusive
};

struct length_profile {
  std::string name;
  lognormal_shape input, output;
};

// "sharegpt" or "short-chat"; error naming the choices otherwise.
result<length_profile> find_length_profile(std::string_view name);

struct length_pair {
  int64_t input = 0, output = 0;
};

// n (input, output) pairs drawn from the profile with the given seed.
std::vector<length_pair> sample_lengths(const length_profile& p, size_t n, uint64_t seed);

// n arrival offsets in seconds, non-decreasing, starting at the first gap (or 0 when the rate is
// infinite). REQUIRES: rate > 0, burstiness > 0.
std::vector<double> arrival_times(size_t n, double rate_per_s, double burstiness, uint64_t seed);

// One request to send.
struct bench_request {
  std::string prompt;
  int64_t prompt_tokens = 0;   // the client's count (0 when unknown)
  int64_t max_tokens = 0;
};

// Text <-> tokens for building prompts of exact lengths; a real tokenizer in troupe bench, a toy
// one in tests.
struct token_codec {
  std::function<std::vector<int32_t>(std::string_view)> encode;
  std::function<std::string(const std::vector<int32_t>&)> decode;
};

// A prompt of about `tokens` tokens: random words from a fixed list of common English words,
// encoded, cut to `tokens` ids and decoded, so the server sees (up to re-tokenization at the cut)
// that many tokens. Returns the text and its token count as re-encoded.
bench_request synthesize_request(const token_codec& codec, int64_t tokens, int64_t max_tokens,
                                 uint64_t seed);

// Requests from a JSONL file: one object per line with "prompt" (string, required) and optionally
// "max_tokens" or "output_len" (integer). Lines without an output length use default_max_tokens.
// Blank lines are skipped. Errors name the file and line.
result<std::vector<bench_request>> load_dataset(const std::string& path,
                                                int64_t default_max_tokens,
                                                const token_codec* codec);

}  // namespace troupe::bench
