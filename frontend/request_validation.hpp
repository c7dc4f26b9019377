// request_validation: the one validation of a generation request. The parser
// (frontend/openai_request.hpp) checks what the body alone decides (types, ranges, which fields
// exist); this checks what needs the model and the server's limits -- token ids inside the
// vocabulary, prompt + max_tokens within max_model_len and within the KV cache a sequence can
// hold, n within the sequences a step runs -- and fills the defaults that depend on them
// (max_tokens, the seed). What it returns is what the scheduler trusts: the scheduler only
// asserts these properties (actors/scheduler_policy.cpp), it never answers a client about them.
//
// Errors are values with a structured `param` ("prompt", "max_tokens", "logit_bias",
// "stop_token_ids[2]", "n"): nothing downstream recovers a parameter name from message text.
// Plain functions, no CAF, no HTTP; callable from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/sampler.hpp"
#include "frontend/openai_request.hpp"

namespace troupe::frontend {

// The limits of this server and model that a request must fit.
struct server_limits {
  std::int32_t vocab_size = 0;
  std::int32_t max_model_len = 0;          // prompt + output tokens of one sequence
  std::int32_t max_num_seqs = 0;           // a request's n choices run in one step
  std::int64_t max_kv_tokens_per_seq = 0;  // KV blocks * block size: what one sequence can hold
};

// One prompt after templating and tokenization (completions may send several).
struct tokenized_prompt {
  std::vector<std::int32_t> ids;
  std::string text;  // the prompt's text (echo; a token prompt's decoded text)
  bool from_token_ids = false;  // the client sent ids: each must be inside the vocabulary
};

// A request the scheduler can take as it is.
struct validated_request {
  std::vector<tokenized_prompt> prompts;  // non-empty; every prompt has >= 1 token in the vocab
  std::int32_t max_tokens = 0;            // >= 1; every prompt + max_tokens fits both limits
  std::int64_t num_prompt_tokens = 0;     // over all prompts
  engine::sampling_params sampling;       // engine::validate() holds; seed filled
};

// REQUIRES: req came from parse_chat_request / parse_completion_request (ranges checked);
// limits are positive. Returns the validated request or the 400 to send, naming its parameter.
parsed<validated_request> validate_generation(const generation_request& req,
                                              std::vector<tokenized_prompt> prompts,
                                              const server_limits& limits);

}  // namespace troupe::frontend
