#include <catch2/catch.hpp>

#include "frontend/openai_request.hpp"

using namespace troupe::net;
using namespace troupe::frontend;

namespace {
// The param an invalid body is blamed on (fails the test if the body parsed).
std::string chat_error_param(const std::string& body) {
  auto r = parse_chat_request(body);
  REQUIRE(!r.ok());
  CHECK(r.error.http_status == 400);
  return r.error.param;
}
std::string completion_error_param(const std::string& body) {
  auto r = parse_completion_request(body);
  REQUIRE(!r.ok());
  CHECK(r.error.http_status == 400);
  return r.error.param;
}
}  // namespace

TEST_CASE("a full chat request parses into its fields") {
  auto r = parse_chat_request(R"({
    "model": "smol", "messages": [
      {"role": "system", "content": "be brief"},
      {"role": "user", "content": [{"type": "text", "text": "hi "}, {"type": "text", "text": "there"}]}
    ],
    "max_completion_tokens": 32, "temperature": 0.5, "top_p": 0.9, "top_k": 40, "min_p": 0.05,
    "seed": 7, "n": 2, "presence_penalty": 0.5, "frequency_penalty": -0.5,
    "repetition_penalty": 1.1, "logit_bias": {"42": -100, "7": 3.5}, "logprobs": true,
    "top_logprobs": 3, "stop": ["\n\n", "END"], "stream": true,
    "stream_options": {"include_usage": true}, "user": "u1", "ignore_eos": true,
    "tools": null
  })");
  REQUIRE(r.ok());
  auto& q = *r.value;
  CHECK(q.kind == endpoint_kind::chat);
  CHECK(q.model == "smol");
  REQUIRE(q.messages.size() == 2);
  CHECK(q.messages[0].role == "system");
  CHECK(q.messages[1].content == "hi there");
  CHECK(q.max_tokens == 32);
  CHECK(q.temperature == 0.5);
  CHECK(q.top_p == 0.9);
  CHECK(q.top_k == 40);
  CHECK(q.min_p == 0.05);
  CHECK(q.seed == 7u);
  CHECK(q.n == 2);
  CHECK(q.presence_penalty == 0.5);
  CHECK(q.frequency_penalty == -0.5);
  CHECK(q.repetition_penalty == 1.1);
  REQUIRE(q.logit_bias.size() == 2);
  CHECK(q.logit_bias[0] == std::pair<std::int32_t, float>{42, -100.f});
  CHECK(q.logit_bias[1] == std::pair<std::int32_t, float>{7, 3.5f});
  CHECK(q.logprobs);
  CHECK(q.top_logprobs == 3);
  CHECK(q.stop == std::vector<std::string>{"\n\n", "END"});
  CHECK(q.stream);
  CHECK(q.include_usage);
  CHECK(q.user == "u1");
  CHECK(q.ignore_eos);
}

TEST_CASE("completions accept string, token-array and single-element array prompts") {
  auto a = parse_completion_request(R"({"model":"m","prompt":"Once upon","max_tokens":5,
                                        "logprobs":2,"echo":true,"stop":"\n"})");
  REQUIRE(a.ok());
  REQUIRE(a.value->prompts.size() == 1);
  CHECK(a.value->prompts[0].text == "Once upon");
  CHECK(!a.value->prompts[0].is_tokens);
  CHECK(a.value->max_tokens == 5);
  CHECK(a.value->logprobs);
  CHECK(a.value->top_logprobs == 2);
  CHECK(a.value->echo);
  CHECK(a.value->stop == std::vector<std::string>{"\n"});

  auto b = parse_completion_request(R"({"prompt":[1,2,3]})");
  REQUIRE(b.ok());
  REQUIRE(b.value->prompts.size() == 1);
  CHECK(b.value->prompts[0].is_tokens);
  CHECK(b.value->prompts[0].tokens == std::vector<std::int32_t>{1, 2, 3});
  CHECK(!b.value->max_tokens.has_value());
  CHECK(!b.value->logprobs);

  auto c = parse_completion_request(R"({"prompt":["only one"]})");
  REQUIRE(c.ok());
  REQUIRE(c.value->prompts.size() == 1);
  CHECK(c.value->prompts[0].text == "only one");
  auto d = parse_completion_request(R"({"prompt":[[5,6]]})");
  REQUIRE(d.ok());
  REQUIRE(d.value->prompts.size() == 1);
  CHECK(d.value->prompts[0].tokens == std::vector<std::int32_t>{5, 6});

  auto e = parse_completion_request(R"({"prompt":"x","logprobs":0})");
  REQUIRE(e.ok());
  CHECK(e.value->logprobs);
  CHECK(e.value->top_logprobs == 0);
}

TEST_CASE("completions accept a batch of prompts, in order") {
  auto s = parse_completion_request(R"({"prompt":["a b", "c", "d e f"]})");
  REQUIRE(s.ok());
  REQUIRE(s.value->prompts.size() == 3);
  CHECK(s.value->prompts[0].text == "a b");
  CHECK(s.value->prompts[1].text == "c");
  CHECK(s.value->prompts[2].text == "d e f");
  for (const auto& p : s.value->prompts) CHECK(!p.is_tokens);

  auto t = parse_completion_request(R"({"prompt":[[1,2],[3],[4,5,6]]})");
  REQUIRE(t.ok());
  REQUIRE(t.value->prompts.size() == 3);
  CHECK(t.value->prompts[0].tokens == std::vector<std::int32_t>{1, 2});
  CHECK(t.value->prompts[1].tokens == std::vector<std::int32_t>{3});
  CHECK(t.value->prompts[2].tokens == std::vector<std::int32_t>{4, 5, 6});
  for (const auto& p : t.value->prompts) CHECK(p.is_tokens);

  std::string full = R"({"prompt":[)";
  for (int i = 0; i < max_num_prompts; ++i) full += std::string(i ? "," : "") + "\"p\"";
  auto m = parse_completion_request(full + "]}");
  REQUIRE(m.ok());
  CHECK(m.value->prompts.size() == static_cast<std::size_t>(max_num_prompts));
}

TEST_CASE("bad prompt batches name the prompt and say where") {
  auto message = [](const std::string& body) {
    auto r = parse_completion_request(body);
    REQUIRE(!r.ok());
    CHECK(r.error.http_status == 400);
    CHECK(r.error.param == "prompt");
    return r.error.message;
  };
  CHECK(message(R"({"prompt":[]})").find("empty") != std::string::npos);
  CHECK(message(R"({"prompt":[[1,2],[]]})").find("prompt[1]") != std::string::npos);
  CHECK(message(R"({"prompt":["a",""]})").find("prompt[1]") != std::string::npos);
  CHECK(message(R"({"prompt":[[1,2],[3,"x"]]})").find("prompt[1][1]") != std::string::npos);
  CHECK(message(R"({"prompt":[[1,2],[3,1.5]]})").find("prompt[1][1]") != std::string::npos);
  CHECK(message(R"({"prompt":[[1,2],[3,-4]]})").find("prompt[1][1]") != std::string::npos);
  CHECK(message(R"({"prompt":[[1,2],[3,4294967296]]})").find("prompt[1][1]") != std::string::npos);
  CHECK(message(R"({"prompt":[1,2.5]})").find("prompt[1]") != std::string::npos);
  CHECK(message(R"({"prompt":["a",[1]]})").find("prompt[1]") != std::string::npos);
  CHECK(message(R"({"prompt":[[1],"a"]})").find("prompt[1]") != std::string::npos);
  CHECK(message(R"({"prompt":[1,[2]]})").find("prompt[1]") != std::string::npos);
  CHECK(message(R"({"prompt":[{"a":1}]})").find("must be a string") != std::string::npos);
  CHECK(message(R"({"prompt":[[[1]]]})").find("prompt[0][0]") != std::string::npos);
  std::string over = R"({"prompt":[)";
  for (int i = 0; i <= max_num_prompts; ++i) over += std::string(i ? "," : "") + "[7]";
  CHECK(message(over + "]}").find(std::to_string(max_num_prompts)) != std::string::npos);
}

TEST_CASE("null means absent, and top_k -1 means disabled") {
  auto r = parse_completion_request(R"({"prompt":"x","max_tokens":null,"temperature":null,
                                        "stop":null,"seed":null,"logprobs":null,"top_k":-1})");
  REQUIRE(r.ok());
  CHECK(!r.value->max_tokens);
  CHECK(r.value->temperature == 1.0);
  CHECK(r.value->stop.empty());
  CHECK(!r.value->seed);
  CHECK(!r.value->logprobs);
  CHECK(r.value->top_k == 0);
}

// JSON leaves repeated keys to the reader; Python's json (OpenAI's and vLLM's servers) keeps the
// last. Lists used to append, so 5 x "stop":"x" slipped past the limit of 4 stop strings (found
// by fuzz_openai_request; fuzz/corpus/openai_request/regress-repeated-stop).
TEST_CASE("a repeated key takes its last value, lists included") {
  auto r = parse_completion_request(
      R"({"prompt":"a","prompt":["b","c"],"stop":"x","stop":"y","stop":"x","stop":"x","stop":"x",
          "logit_bias":{"1":1},"logit_bias":{"2":2},"stop_token_ids":[1],"stop_token_ids":[2]})");
  REQUIRE(r.ok());
  REQUIRE(r.value->prompts.size() == 2);
  CHECK(r.value->prompts[0].text == "b");
  CHECK(r.value->stop == std::vector<std::string>{"x"});
  CHECK(r.value->logit_bias == std::vector<std::pair<std::int32_t, float>>{{2, 2.0f}});
  CHECK(r.value->stop_token_ids == std::vector<std::int32_t>{2});
  auto c = parse_chat_request(R"({"messages":[{"role":"user","content":"a"}],
                                  "messages":[{"role":"user","content":"b"}],"stop":null})");
  REQUIRE(c.ok());
  REQUIRE(c.value->messages.size() == 1);
  CHECK(c.value->messages[0].content == "b");
  auto d = parse_detokenize_request(R"({"tokens":[1,2],"tokens":[3]})");
  REQUIRE(d.ok());
  CHECK(d.value->tokens == std::vector<std::int32_t>{3});
}

TEST_CASE("invalid JSON is a 400 without a param") {
  for (const char* body : {"", "{", "{\"prompt\": \"x\"", "[1,2]", "\"str\"", "{\"prompt\":\"x\"} x",
                           "{\"prompt\":\"x\",}", "nul"}) {
    INFO(body);
    auto r = parse_completion_request(body);
    REQUIRE(!r.ok());
    CHECK(r.error.http_status == 400);
    CHECK(r.error.type == "invalid_request_error");
  }
}

TEST_CASE("each invalid value names its parameter") {
  const std::string m = R"("messages":[{"role":"user","content":"hi"}])";
  CHECK(chat_error_param("{" + m + R"(,"temperature":3})") == "temperature");
  CHECK(chat_error_param("{" + m + R"(,"temperature":"hot"})") == "temperature");
  CHECK(chat_error_param("{" + m + R"(,"top_p":0})") == "top_p");
  CHECK(chat_error_param("{" + m + R"(,"top_k":-2})") == "top_k");
  CHECK(chat_error_param("{" + m + R"(,"min_p":1.5})") == "min_p");
  CHECK(chat_error_param("{" + m + R"(,"max_tokens":0})") == "max_tokens");
  CHECK(chat_error_param("{" + m + R"(,"max_tokens":1.5})") == "max_tokens");
  CHECK(chat_error_param("{" + m + R"(,"max_completion_tokens":-3})") == "max_completion_tokens");
  CHECK(chat_error_param("{" + m + R"(,"n":0})") == "n");
  CHECK(chat_error_param("{" + m + R"(,"n":1000})") == "n");
  CHECK(chat_error_param("{" + m + R"(,"presence_penalty":2.5})") == "presence_penalty");
  CHECK(chat_error_param("{" + m + R"(,"frequency_penalty":-3})") == "frequency_penalty");
  CHECK(chat_error_param("{" + m + R"(,"repetition_penalty":0})") == "repetition_penalty");
  CHECK(chat_error_param("{" + m + R"(,"seed":"x"})") == "seed");
  CHECK(chat_error_param("{" + m + R"(,"seed":1e400})") == "seed");
  CHECK(chat_error_param("{" + m + R"(,"stop":["a","b","c","d","e"]})") == "stop");
  CHECK(chat_error_param("{" + m + R"(,"stop":["a",3]})") == "stop[1]");
  CHECK(chat_error_param("{" + m + R"(,"stop":""})") == "stop");
  CHECK(chat_error_param("{" + m + R"(,"stop":7})") == "stop");
  CHECK(chat_error_param("{" + m + R"(,"stream":"yes"})") == "stream");
  CHECK(chat_error_param("{" + m + R"(,"stream_options":{"include_usage":1}})") ==
        "stream_options.include_usage");
  CHECK(chat_error_param("{" + m + R"(,"logprobs":1})") == "logprobs");
  CHECK(chat_error_param("{" + m + R"(,"logprobs":true,"top_logprobs":21})") == "top_logprobs");
  CHECK(chat_error_param("{" + m + R"(,"top_logprobs":2})") == "top_logprobs");
  CHECK(chat_error_param("{" + m + R"(,"logit_bias":{"abc":1}})") == "logit_bias");
  CHECK(chat_error_param("{" + m + R"(,"logit_bias":{"5":101}})") == "logit_bias[5]");
  CHECK(chat_error_param("{" + m + R"(,"logit_bias":[1]})") == "logit_bias");
  CHECK(chat_error_param("{" + m + R"(,"model":5})") == "model");
  CHECK(chat_error_param("{" + m + R"(,"ignore_eos":"no"})") == "ignore_eos");
}

TEST_CASE("bad messages name the message and field") {
  CHECK(chat_error_param(R"({"model":"m"})") == "messages");
  CHECK(chat_error_param(R"({"messages":[]})") == "messages");
  CHECK(chat_error_param(R"({"messages":"hi"})") == "messages");
  CHECK(chat_error_param(R"({"messages":[{"role":"user","content":"a"},{"role":"robot","content":"b"}]})") ==
        "messages[1].role");
  CHECK(chat_error_param(R"({"messages":[{"content":"a"}]})") == "messages[0].role");
  CHECK(chat_error_param(R"({"messages":[{"role":"user"}]})") == "messages[0].content");
  CHECK(chat_error_param(R"({"messages":[{"role":"user","content":5}]})") == "messages[0].content");
  CHECK(chat_error_param(R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]})") ==
        "messages[0].content[0].type");
  CHECK(chat_error_param(R"({"messages":[1]})") == "messages[0]");
}

TEST_CASE("bad prompts name the prompt") {
  CHECK(completion_error_param(R"({"model":"m"})") == "prompt");
  CHECK(completion_error_param(R"({"prompt":""})") == "prompt");
  CHECK(completion_error_param(R"({"prompt":[]})") == "prompt");
  CHECK(completion_error_param(R"({"prompt":5})") == "prompt");
  CHECK(completion_error_param(R"({"prompt":["a",2]})") == "prompt");
  CHECK(completion_error_param(R"({"prompt":[1,-2]})") == "prompt");
  CHECK(completion_error_param(R"({"prompt":[1,"a"]})") == "prompt");
  CHECK(completion_error_param(R"({"prompt":"x","logprobs":true})") == "logprobs");
  CHECK(completion_error_param(R"({"prompt":"x","logprobs":21})") == "logprobs");
  CHECK(completion_error_param(R"({"prompt":"x","echo":1})") == "echo");
}

TEST_CASE("tokenize and detokenize bodies") {
  auto t = parse_tokenize_request(R"({"model":"m","prompt":"hello","add_special_tokens":false})");
  REQUIRE(t.ok());
  CHECK(!t.value->is_chat);
  CHECK(t.value->prompt == "hello");
  CHECK(!t.value->add_special_tokens);
  auto c = parse_tokenize_request(R"({"messages":[{"role":"user","content":"hi"}]})");
  REQUIRE(c.ok());
  CHECK(c.value->is_chat);
  CHECK(!parse_tokenize_request(R"({"model":"m"})").ok());
  CHECK(parse_tokenize_request(R"({"prompt":3})").error.param == "prompt");

  auto d = parse_detokenize_request(R"({"tokens":[1,2,3]})");
  REQUIRE(d.ok());
  CHECK(d.value->tokens == std::vector<std::int32_t>{1, 2, 3});
  CHECK(parse_detokenize_request(R"({})").error.param == "tokens");
  CHECK(parse_detokenize_request(R"({"tokens":[1,"x"]})").error.param == "tokens[1]");
}

TEST_CASE("the error body has OpenAI's shape") {
  auto e = invalid_parameter("temperature", "'temperature' must be <= 2");
  CHECK(e.to_json() ==
        R"({"error":{"message":"'temperature' must be <= 2","type":"invalid_request_error",)"
        R"("param":"temperature","code":"invalid_value"}})");
  auto nf = route_not_found("GET", "/nope");
  CHECK(nf.http_status == 404);
  CHECK(nf.to_json().find(R"("param":null)") != std::string::npos);
  CHECK(method_not_allowed("GET", "/v1/completions").http_status == 405);
  CHECK(body_too_large(10).http_status == 413);
  CHECK(queue_full(4).http_status == 429);
  CHECK(unavailable("loading").http_status == 503);
  CHECK(model_not_found("gpt-9").param == "model");
}

TEST_CASE("speculative_decoding (troupe extension) opts a request out of drafts") {
  auto on = parse_completion_request(R"({"prompt":"x"})");
  REQUIRE(on.ok());
  CHECK(on.value->speculative_decoding);
  auto off = parse_chat_request(
      R"({"messages":[{"role":"user","content":"hi"}],"speculative_decoding":false})");
  REQUIRE(off.ok());
  CHECK_FALSE(off.value->speculative_decoding);
  CHECK(completion_error_param(R"({"prompt":"x","speculative_decoding":"no"})") ==
        "speculative_decoding");
}

TEST_CASE("best_of other than 1 is refused naming best_of, on both endpoints") {
  CHECK(completion_error_param(R"({"prompt":"a","best_of":2})") == "best_of");
  CHECK(completion_error_param(R"({"prompt":"a","best_of":0})") == "best_of");
  CHECK(chat_error_param(R"({"messages":[{"role":"user","content":"a"}],"best_of":3})") ==
        "best_of");
  CHECK(parse_completion_request(R"({"prompt":"a","best_of":1})").ok());
  CHECK(parse_completion_request(R"({"prompt":"a","best_of":null})").ok());
}
