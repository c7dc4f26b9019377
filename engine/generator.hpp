// generator: the simplest generation loop -- one sequence, prefill then decode, over llama_model,
// the sampler and a streaming detokenizer. Used by `troupe generate`; the serving runtime drives
// llama_model through the scheduler instead and does not use this class.
//
// Ownership: borrows the model file, tokenizer and thread pool (they must outlive it). Each
// generate() call allocates the K/V pages for prompt + max_tokens positions once, and reuses
// them for every step of that call.
// Threading: one generate() at a time, on the thread that drives the pool.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/llama_model.hpp"
#include "engine/sampler.hpp"
#include "kernels/cpu/thread_pool.hpp"
#include "memory/llama_model_file.hpp"
#include "tokenizer/tokenizer.hpp"
#include "troupe/result.hpp"

namespace troupe::engine {

struct generation_request {
  std::vector<int32_t> prompt;       // token ids, >= 1
  sampling_params sampling;          // validated by generate()
  int32_t max_tokens = 256;          // capped so prompt + output fit the model's context
  int32_t prefill_chunk = 512;       // prompt tokens per forward call
  int32_t block_size = 16;           // K/V positions per page
};

struct generation_result {
  std::vector<int32_t> tokens;       // generated ids, without the end-of-generation token
  std::string finish_reason;         // "stop" (end-of-generation token) or "length"
  int64_t prompt_tokens = 0;
  double prompt_seconds = 0.0;       // prefill forward passes, up to the first sampled token
  int64_t decode_steps = 0;          // forward passes after the prefill (one token each)
  double decode_seconds = 0.0;       // those passes plus their sampling
};

class generator {
 public:
  // opts: the arithmetic (default llama.cpp-exact); fast mode needs opts.packed.
  generator(const llama_model_file& file, const tokenizer& tok, kernels::thread_pool& pool,
            model_options opts = {});

  // Generates until an end-of-generation token (unless sampling.ignore_eos) or max_tokens.
  // on_text receives the text of the generated tokens as it becomes complete UTF-8 (never an
  // end-of-generation token's text). Errors: bad sampling parameters, an empty prompt, a prompt
  // that does not fit the context, a K/V allocation failure.
  result<generation_result> generate(const generation_request& request,
                                     const std::function<void(std::string_view)>& on_text);

 private:
  const llama_model_file* file_;
  tokenizer tok_;
  llama_model model_;
  sampler sampler_;
};

}  // namespace troupe::engine
