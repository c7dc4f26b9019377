#include "frontend/request_validation.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "troupe/result.hpp"

namespace troupe::frontend {

namespace {

using net::invalid_parameter;

parsed<validated_request> refuse(api_error e) {
  parsed<validated_request> out;
  out.error = std::move(e);
  return out;
}

bool in_vocab(std::int32_t id, const server_limits& l) { return id >= 0 && id < l.vocab_size; }

// The prompt's name in messages: chat has one (its messages), a completions batch names each.
std::string prompt_name(bool chat, std::size_t k, std::size_t num_prompts) {
  if (chat) return "messages";
  return num_prompts > 1 ? fmt::format("prompt[{}]", k) : "prompt";
}

}  // namespace

parsed<validated_request> validate_generation(const generation_request& req,
                                              std::vector<tokenized_prompt> prompts,
                                              const server_limits& limits) {
  const bool chat = req.kind == endpoint_kind::chat;
  const std::string prompt_param = chat ? "messages" : "prompt";
  if (prompts.empty()) return refuse(invalid_parameter(prompt_param, "the prompt has no tokens"));

  // Token prompts: every id inside the vocabulary. A single token list arrives as prompt=[ids]:
  // its ids are prompt[i], not prompt[0][i].
  for (std::size_t k = 0; k < prompts.size(); ++k) {
    const auto& p = prompts[k];
    const std::string where = prompt_name(chat, k, prompts.size());
    if (p.ids.empty()) return refuse(invalid_parameter(prompt_param, where + " has no tokens"));
    if (!p.from_token_ids) continue;
    for (std::size_t i = 0; i < p.ids.size(); ++i)
      if (!in_vocab(p.ids[i], limits))
        return refuse(invalid_parameter(
            "prompt", fmt::format("{}[{}]: token id {} is outside the vocabulary [0, {})", where,
                                  i, p.ids[i], limits.vocab_size)));
  }

  // What one sequence can hold: the model's context, and the KV cache of this server.
  const std::int64_t max_len = limits.max_model_len;
  const std::int64_t capacity = std::min<std::int64_t>(max_len, limits.max_kv_tokens_per_seq);
  std::int64_t max_tokens = 0;
  std::int64_t num_prompt_total = 0;
  for (std::size_t k = 0; k < prompts.size(); ++k) {
    const auto num_prompt = static_cast<std::int64_t>(prompts[k].ids.size());
    const std::string which =
        prompts.size() > 1 ? fmt::format("prompt[{}] has {} tokens", k, num_prompt)
                           : fmt::format("your prompt has {} tokens", num_prompt);
    if (num_prompt >= capacity)
      return refuse(invalid_parameter(
          prompt_param, fmt::format("This model's maximum context length is {} tokens. However, "
                                    "{}.",
                                    capacity, which)));
    // Unset: chat takes what the context leaves, completions OpenAI's 16.
    const std::int64_t want = req.max_tokens ? *req.max_tokens : chat ? capacity - num_prompt : 16;
    if (num_prompt + want > capacity)
      return refuse(invalid_parameter(
          "max_tokens",
          fmt::format("This model's maximum context length is {} tokens. However, you requested "
                      "{} tokens ({} in {}, {} in the completion). Please reduce the length of "
                      "the prompt or of max_tokens.",
                      capacity, num_prompt + want, num_prompt,
                      prompts.size() > 1 ? fmt::format("prompt[{}]", k) : "the prompt", want)));
    max_tokens = want;  // the same for every prompt unless chat (one prompt)
    num_prompt_total += num_prompt;
  }

  // A request's n choices are forked sequences that run in the same steps.
  if (req.n > limits.max_num_seqs)
    return refuse(invalid_parameter(
        "n", fmt::format("'n' must be at most {} on this server (its max_num_seqs), got {}",
                         limits.max_num_seqs, req.n)));
  for (const auto& [id, bias] : req.logit_bias)
    if (!in_vocab(id, limits))
      return refuse(invalid_parameter(
          "logit_bias", fmt::format("'logit_bias' token id {} is outside the vocabulary [0, {})",
                                    id, limits.vocab_size)));
  for (std::size_t i = 0; i < req.stop_token_ids.size(); ++i)
    if (!in_vocab(req.stop_token_ids[i], limits))
      return refuse(invalid_parameter(
          fmt::format("stop_token_ids[{}]", i),
          fmt::format("token id {} is outside the vocabulary [0, {})", req.stop_token_ids[i],
                      limits.vocab_size)));

  // A finished grammar allows only end tokens, which ignore_eos bans: nothing would be left to
  // sample from.
  if (!req.grammar.empty() && req.ignore_eos)
    return refuse(invalid_parameter(
        "ignore_eos", "ignore_eos cannot be combined with response_format or guided_* (a "
                      "finished structured output may only end)"));

  validated_request v;
  auto& sp = v.sampling;
  sp.temperature = static_cast<float>(req.temperature);
  sp.top_k = req.top_k;
  sp.top_p = static_cast<float>(req.top_p);
  sp.min_p = static_cast<float>(req.min_p);
  sp.repetition_penalty = static_cast<float>(req.repetition_penalty);
  sp.presence_penalty = static_cast<float>(req.presence_penalty);
  sp.frequency_penalty = static_cast<float>(req.frequency_penalty);
  sp.logit_bias = req.logit_bias;
  sp.seed = req.seed ? *req.seed : engine::random_seed();
  sp.top_logprobs = req.logprobs ? req.top_logprobs : -1;
  sp.ignore_eos = req.ignore_eos;
  sp.grammar = req.grammar;
  // Completions echo + logprobs also return the prompt tokens' logprobs (OpenAI, vLLM).
  sp.prompt_logprobs = req.echo && req.logprobs && !chat ? req.top_logprobs : -1;
  // The parser's ranges and the vocabulary checks above are engine::validate's, parameter by
  // parameter; a failure here is a parser bug, not a client's.
  TROUPE_ASSERT(engine::validate(sp, limits.vocab_size).ok());

  v.prompts = std::move(prompts);
  v.max_tokens = static_cast<std::int32_t>(max_tokens);
  v.num_prompt_tokens = num_prompt_total;
  return {std::move(v), {}};
}

}  // namespace troupe::frontend
