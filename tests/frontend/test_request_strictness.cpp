// Strict parameters (issue 11, point 2): every top-level field is implemented, a documented
// no-op, or refused naming it; anything else is OpenAI's "Unrecognized request argument".
#include <catch2/catch.hpp>

#include <string>

#include "frontend/constraint_params.hpp"
#include "frontend/openai_request.hpp"

using namespace troupe::frontend;

namespace {

const std::string chat_head = R"({"messages":[{"role":"user","content":"hi"}])";

auto chat_with(const std::string& field, const parse_options& o = {}) {
  return parse_chat_request(chat_head + "," + field + "}", o);
}
auto completion_with(const std::string& field, const parse_options& o = {}) {
  return parse_completion_request(R"({"prompt":"hi",)" + field + "}", o);
}

}  // namespace

TEST_CASE("an unknown field is OpenAI's 400, unless the operator ignores unknown fields") {
  auto r = chat_with(R"("foo": 1)");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error.http_status == 400);
  CHECK(r.error.to_json() ==
        R"({"error":{"message":"Unrecognized request argument supplied: foo",)"
        R"("type":"invalid_request_error","param":null,"code":null}})");
  auto two = completion_with(R"("foo": 1, "bar": {"x": [1]})");
  REQUIRE_FALSE(two.ok());
  CHECK(two.error.message == "Unrecognized request arguments supplied: foo, bar");
  CHECK(chat_with(R"("foo": 1)", {.ignore_unknown_fields = true}).ok());
  CHECK(completion_with(R"("foo": 1)", {.ignore_unknown_fields = true}).ok());
  // A bad value of a known field is still a 400 naming it, whatever the switch says.
  auto bad = chat_with(R"("foo": 1, "temperature": 9)", {.ignore_unknown_fields = true});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error.param == "temperature");
}

TEST_CASE("fields of the other endpoint are unknown there") {
  CHECK(completion_with(R"("messages": [])").error.message.find("Unrecognized") == 0);
  CHECK(completion_with(R"("tools": [])").error.message.find("Unrecognized") == 0);
  CHECK(chat_with(R"("prompt": "x")").error.message.find("Unrecognized") == 0);
  CHECK(chat_with(R"("suffix": "x")").error.message.find("Unrecognized") == 0);
}

TEST_CASE("documented no-ops are accepted when their type is right") {
  for (const char* f : {R"("user": "u")", R"("metadata": {"k": "v"})", R"("store": true)",
                        R"("service_tier": "auto")", R"("safety_identifier": "s")",
                        R"("prompt_cache_key": "k")", R"("prompt_cache_retention": "24h")",
                        R"("prompt_cache_options": {"mode": "implicit"})",
                        R"("modalities": ["text"])", R"("parallel_tool_calls": true)",
                        R"("stream": true, "stream_options": {"include_obfuscation": false})"}) {
    INFO(f);
    CHECK(chat_with(f).ok());
  }
  CHECK(completion_with(R"("user": "u")").ok());
  CHECK(chat_with(R"("store": "yes")").error.param == "store");
  CHECK(chat_with(R"("metadata": 3)").error.param == "metadata");
  CHECK(chat_with(R"("modalities": ["text", "audio"])").error.param == "modalities");
}

TEST_CASE("parameters troupe cannot honour are refused naming them, their off value accepted") {
  struct refused {
    const char* field;
    const char* param;
  };
  for (auto [f, param] : {refused{R"("audio": {"voice": "alloy", "format": "wav"})", "audio"},
                          refused{R"("prediction": {"type": "content", "content": "x"})",
                                  "prediction"},
                          refused{R"("web_search_options": {})", "web_search_options"},
                          refused{R"("moderation": {"model": "m"})", "moderation"},
                          refused{R"("reasoning_effort": "low")", "reasoning_effort"},
                          refused{R"("verbosity": "low")", "verbosity"},
                          refused{R"("continue_final_message": true)", "continue_final_message"},
                          refused{R"("response_format": {"type": "sound"})", "response_format"},
                          // Tool calling is implemented (frontend/tool_calling.hpp); a choice
                          // that must call a tool needs one.
                          refused{R"("tool_choice": "required")", "tool_choice"},
                          refused{R"("tool_choice": {"type": "function", "function":
                                  {"name": "f"}})",
                                  "tool_choice"},
                          refused{R"("functions": [{"name": "f"}])", "functions"},
                          refused{R"("function_call": "auto")", "function_call"},
                          refused{R"("guided_regex": "(a)\\1")", "guided_regex"},
                          refused{R"("structured_outputs": {"json": {}, "regex": "a"})",
                                  "structured_outputs"},
                          refused{R"("guided_whitespace_pattern": " *")",
                                  "guided_whitespace_pattern"},
                          refused{R"("grammar": "root ::= (")", "grammar"}}) {
    INFO(f);
    auto r = chat_with(f);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error.http_status == 400);
    CHECK(r.error.param == param);
    CHECK(r.error.message.find(param) != std::string::npos);
  }
  CHECK(completion_with(R"("suffix": "tail")").error.param == "suffix");
  CHECK(completion_with(R"x("guided_regex": "a(?=b)")x").error.param == "guided_regex");
  CHECK(completion_with(R"("response_format": {"type": "sound"})").error.param ==
        "response_format");
  for (const char* f : {R"("response_format": {"type": "json_object"})",
                        R"("guided_choice": ["a", "b"])", R"("grammar": "root ::= \"a\"")",
                        R"("guided_regex": "a+")", R"("structured_outputs": {"json": {}})"}) {
    INFO(f);  // implemented (frontend/structured_output.hpp): a grammar, not a refusal
    auto r = chat_with(f);
    REQUIRE(r.ok());
    CHECK_FALSE(r.value->grammar.empty());
  }
  for (const char* f : {R"("response_format": {"type": "text"})", R"("response_format": null)",
                        R"("tools": null)", R"("tool_choice": "none")", R"("function_call": "none")",
                        R"("tools": [{"type": "function", "function": {"name": "f"}}])",
                        R"("tool_choice": "auto")",
                        R"("audio": null)", R"("continue_final_message": false)",
                        R"("guided_json": null)", R"("reasoning_effort": null)",
                        R"("guided_decoding_backend": "xgrammar")"}) {
    INFO(f);
    CHECK(chat_with(f).ok());
  }
  CHECK(completion_with(R"("suffix": "")").ok());
  CHECK(completion_with(R"("suffix": null)").ok());
}

TEST_CASE("the constraint table has one reader per parameter") {
  for (const auto& p : constraint_params()) {
    INFO(p.name);
    CHECK(p.read != nullptr);
    CHECK(find_constraint_param(p.name, endpoint_kind::chat) == &p);
  }
  CHECK(find_constraint_param("tools", endpoint_kind::completions) == nullptr);
  CHECK(find_constraint_param("response_format", endpoint_kind::completions) != nullptr);
}

TEST_CASE("vLLM extensions troupe implements stay accepted") {
  CHECK(chat_with(R"("top_k": 5, "min_p": 0.1, "repetition_penalty": 1.1, "min_tokens": 1,
                     "ignore_eos": true, "stop_token_ids": [2], "skip_special_tokens": false,
                     "add_generation_prompt": true, "speculative_decoding": false,
                     "stream": true, "stream_options": {"include_usage": true,
                     "continuous_usage_stats": true})")
            .ok());
  CHECK(completion_with(R"("echo": true, "logprobs": 2, "best_of": 1, "top_k": -1)").ok());
}

TEST_CASE("unknown keys inside messages and content parts are 400s naming them") {
  auto chat = [](const std::string& messages, const parse_options& o = {}) {
    return parse_chat_request(R"({"messages":)" + messages + "}", o);
  };
  auto unknown = chat(R"([{"role":"user","content":"hi","foo":1}])");
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error.http_status == 400);
  CHECK(unknown.error.param == "messages[0].foo");
  CHECK(unknown.error.message ==
        "Additional properties are not allowed ('foo' was unexpected) - 'messages.0'");
  // The role decides, whatever the key order: tool_call_id belongs to tool messages only.
  CHECK(chat(R"([{"role":"system","content":"s"},{"tool_call_id":"c1","role":"user","content":"hi"}])")
            .error.param == "messages[1].tool_call_id");
  CHECK(chat(R"([{"role":"user","content":"hi","refusal":null}])").error.param ==
        "messages[0].refusal");
  const auto part = chat(R"([{"role":"user","content":[{"type":"text","text":"hi","bar":2}]}])");
  CHECK(part.error.param == "messages[0].content[0].bar");
  CHECK(part.error.message ==
        "Additional properties are not allowed ('bar' was unexpected) - 'messages.0.content.0'");
  // The keys OpenAI documents for each role pass (accepting is not implementing them).
  for (const char* ok : {
           R"([{"role":"system","content":"s","name":"n"},{"role":"developer","content":"d","name":"n"},
               {"role":"user","content":"hi","name":"alice"}])",
           R"([{"role":"user","content":"hi"},{"role":"assistant","content":null,"name":"bot",
               "refusal":null,"audio":null,"function_call":null,"tool_calls":[]},
               {"role":"tool","content":"42","tool_call_id":"call_1"},{"role":"user","content":"ok"}])",
       }) {
    INFO(ok);
    auto r = chat(ok);
    INFO(r.error.message);
    CHECK(r.ok());
  }
  // The operator's switch ignores them, as it ignores unknown top-level fields.
  CHECK(chat(R"([{"role":"user","content":[{"type":"text","text":"hi","bar":2}],"foo":1}])",
             {.ignore_unknown_fields = true})
            .ok());
  // vLLM's /tokenize ignores them, as it ignores unknown fields.
  CHECK(parse_tokenize_request(R"({"messages":[{"role":"user","content":"hi","foo":1}]})").ok());
}
