// Fuzz target: the OpenAI request parsers (frontend/openai_request.hpp, simdjson on-demand).
//
// Contract: parse_* never throws and never crashes on any body; a refusal is a 400 naming its
// field; an accepted request holds only values inside the documented ranges (the engine relies
// on them without checking again). All four parsers read every input.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz/fuzz_check.hpp"
#include "frontend/openai_request.hpp"
#include "frontend/tool_calling.hpp"
#include "grammar/grammar_rules.hpp"

namespace {

using namespace troupe::net;
using namespace troupe::frontend;

template <class T>
void check_refusal(const parsed<T>& p) {
  if (p.ok()) return;
  FUZZ_CHECK(p.error.http_status == 400);
  FUZZ_CHECK(!p.error.message.empty());
}

void check_generation(const parsed<generation_request>& p) {
  check_refusal(p);
  if (!p.ok()) return;
  const auto& r = *p.value;
  if (r.kind == endpoint_kind::completions) {
    FUZZ_CHECK(!r.prompts.empty());
    FUZZ_CHECK(r.prompts.size() <= static_cast<std::size_t>(max_num_prompts));
  } else {
    FUZZ_CHECK(!r.messages.empty());
  }
  if (r.max_tokens) FUZZ_CHECK(*r.max_tokens >= 1 && *r.max_tokens <= INT32_MAX);
  FUZZ_CHECK(r.min_tokens >= 0 && r.min_tokens <= INT32_MAX);
  FUZZ_CHECK(r.temperature >= 0.0 && r.temperature <= 2.0);
  FUZZ_CHECK(r.top_p > 0.0 && r.top_p <= 1.0);
  FUZZ_CHECK(r.top_k >= 0);
  FUZZ_CHECK(r.min_p >= 0.0 && r.min_p <= 1.0);
  FUZZ_CHECK(r.n >= 1 && r.n <= max_n);
  FUZZ_CHECK(r.presence_penalty >= -2.0 && r.presence_penalty <= 2.0);
  FUZZ_CHECK(r.frequency_penalty >= -2.0 && r.frequency_penalty <= 2.0);
  FUZZ_CHECK(r.repetition_penalty > 0.0 && r.repetition_penalty <= 2.0);
  for (const auto& [id, bias] : r.logit_bias) {
    FUZZ_CHECK(id >= 0);
    FUZZ_CHECK(std::isfinite(bias) && bias >= -100.0f && bias <= 100.0f);
  }
  FUZZ_CHECK(r.top_logprobs >= 0 && r.top_logprobs <= max_top_logprobs);
  FUZZ_CHECK(r.stop.size() <= static_cast<std::size_t>(max_num_stop_strings));
  for (auto id : r.stop_token_ids) FUZZ_CHECK(id >= 0);
  for (const auto& prompt : r.prompts)
    for (auto id : prompt.tokens) FUZZ_CHECK(id >= 0);
  // Tool calling: a checked choice, and for required/named a call grammar that always parses
  // (the serving backend hands it to the sampler without another check).
  if (r.kind != endpoint_kind::chat) return;
  FUZZ_CHECK(r.tool_choice.has_value());
  if (*r.tool_choice == tool_choice_mode::required || *r.tool_choice == tool_choice_mode::named) {
    FUZZ_CHECK(!r.tools.empty() && r.grammar.empty());
    FUZZ_CHECK(troupe::parse_gbnf(tool_call_grammar(r, "<tool_call>", "</tool_call>", "\n")).ok());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  check_generation(parse_completion_request(body));
  check_generation(parse_chat_request(body));
  auto t = parse_tokenize_request(body);
  check_refusal(t);
  if (t.ok() && t.value->is_chat) FUZZ_CHECK(!t.value->messages.empty());
  auto d = parse_detokenize_request(body);
  check_refusal(d);
  if (d.ok())
    for (auto id : d.value->tokens) FUZZ_CHECK(id >= 0);
  return 0;
}
