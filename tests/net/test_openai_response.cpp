#include <catch2/catch.hpp>
#include <simdjson.h>

#include "net/openai_response.hpp"

using namespace troupe::net;

namespace {
std::vector<token_output> toks(std::initializer_list<const char*> texts) {
  std::vector<token_output> out;
  std::int32_t id = 100;
  for (auto t : texts) out.push_back({id++, t, t, -0.5f, {{t, -0.5f}, {"x", -2.0f}}});
  return out;
}
response_options opts(endpoint_kind k, bool stream) {
  // Built in one initializer: assigning short literals trips a GCC 12 -Wrestrict false positive.
  response_options o{.kind = k, .id = std::string("id-1"), .model = std::string("m"), .created = 5};
  o.stream = stream;
  o.num_prompt_tokens = 7;
  return o;
}
// Every SSE frame's JSON payload (skipping [DONE]); fails on a frame that is not valid JSON.
std::vector<std::string> payloads(const std::string& text) {
  std::vector<std::string> out;
  std::string_view sse = text;
  std::size_t pos = 0;
  while ((pos = sse.find("data: ", pos)) != std::string_view::npos) {
    auto end = sse.find("\n\n", pos);
    REQUIRE(end != std::string_view::npos);
    std::string p{sse.substr(pos + 6, end - pos - 6)};
    if (p != "[DONE]") {
      simdjson::dom::parser parser;
      auto doc = parser.parse(p);
      INFO(p);
      CHECK(!doc.error());
      out.push_back(p);
    }
    pos = end;
  }
  return out;
}
}  // namespace

TEST_CASE("non-streaming chat: stop string across tokens is cut, usage counts tokens") {
  auto o = opts(endpoint_kind::chat, false);
  o.stop = {"END"};
  openai_response r(o);
  CHECK(r.begin().empty());
  CHECK(r.add_tokens(0, toks({"Hello", " wor", "ld E", "N", "D!", "more"})).empty());
  CHECK(r.all_finished());
  auto body = r.complete_body();
  CHECK(body == R"({"id":"id-1","object":"chat.completion","created":5,"model":"m",)"
                R"("system_fingerprint":null,"choices":[)"
                R"({"index":0,"message":{"role":"assistant","content":"Hello world "},)"
                R"("logprobs":null,"finish_reason":"stop"}],)"
                R"("usage":{"prompt_tokens":7,"completion_tokens":5,"total_tokens":12,)"
                R"("prompt_tokens_details":{"cached_tokens":0}}})");
}

TEST_CASE("streaming completions: chunks, finish chunk, usage, [DONE]") {
  auto o = opts(endpoint_kind::completions, true);
  o.include_usage = true;
  openai_response r(o);
  std::string sse = r.begin();
  sse += r.add_tokens(0, toks({"a", "b"}));
  sse += r.finish_choice(0, "length");
  CHECK(r.all_finished());
  sse += r.end_stream();
  CHECK(std::string_view{sse}.ends_with("data: [DONE]\n\n"));
  auto p = payloads(sse);
  REQUIRE(p.size() == 3);
  CHECK(p[0].find(R"("text":"ab","logprobs":null,"finish_reason":null)") != std::string::npos);
  CHECK(p[1].find(R"("finish_reason":"length")") != std::string::npos);
  CHECK(p[2].find(R"("choices":[],"usage":{"prompt_tokens":7,"completion_tokens":2,)"
                  R"("total_tokens":9,"prompt_tokens_details":{"cached_tokens":0}})") !=
        std::string::npos);
}

TEST_CASE("system_fingerprint on every object, cached_tokens summed over a batch's prompts") {
  auto o = opts(endpoint_kind::completions, true);
  o.include_usage = true;
  o.num_prompts = 2;
  o.num_prompt_tokens = 40;
  o.system_fingerprint = "fp_0123456789abcdef";
  openai_response r(o);
  r.set_num_cached_prompt_tokens(0, 16);
  r.set_num_cached_prompt_tokens(1, 0);
  r.set_num_cached_prompt_tokens(1, 32);  // the latest value counts (every event carries it)
  std::string sse = r.add_tokens(0, toks({"a"}));
  sse += r.finish_choice(0, "length") + r.finish_choice(1, "length") + r.end_stream();
  auto p = payloads(sse);
  REQUIRE(p.size() >= 3);
  for (const auto& frame : p)
    CHECK(frame.find(R"("system_fingerprint":"fp_0123456789abcdef")") != std::string::npos);
  CHECK(p.back().find(R"("prompt_tokens_details":{"cached_tokens":48})") != std::string::npos);
}

TEST_CASE("streaming chat opens each choice with the assistant role; n=2 choices are separate") {
  auto o = opts(endpoint_kind::chat, true);
  o.n = 2;
  openai_response r(o);
  auto p = payloads(r.begin());
  REQUIRE(p.size() == 2);
  CHECK(p[0].find(R"("index":0,"delta":{"role":"assistant","content":""})") != std::string::npos);
  CHECK(p[1].find(R"("index":1,"delta":{"role":"assistant","content":""})") != std::string::npos);
  auto a = payloads(r.add_tokens(1, toks({"x"})));
  REQUIRE(a.size() == 1);
  CHECK(a[0].find(R"("index":1,"delta":{"content":"x"})") != std::string::npos);
  r.finish_choice(1, "stop");
  CHECK(!r.all_finished());
  r.finish_choice(0, "length");
  CHECK(r.all_finished());
  CHECK(r.end_stream() == "data: [DONE]\n\n");
}

TEST_CASE("held-back text of a false stop start is released at the finish") {
  auto o = opts(endpoint_kind::completions, false);
  o.stop = {"STOP"};
  openai_response r(o);
  r.add_tokens(0, toks({"go ", "ST"}));
  r.finish_choice(0, "length");
  CHECK(r.complete_body().find(R"("text":"go ST")") != std::string::npos);
}

TEST_CASE("logprobs: chat and completions shapes") {
  auto c = opts(endpoint_kind::chat, false);
  c.logprobs = true;
  c.top_logprobs = 2;
  openai_response rc(c);
  rc.add_tokens(0, toks({"hi"}));
  rc.finish_choice(0, "stop");
  CHECK(rc.complete_body().find(
            R"("logprobs":{"content":[{"token":"hi","logprob":-0.5,"bytes":[104,105],)"
            R"("top_logprobs":[{"token":"hi","logprob":-0.5,"bytes":[104,105]},)"
            R"({"token":"x","logprob":-2,"bytes":[120]}]}]})") != std::string::npos);

  auto k = opts(endpoint_kind::completions, false);
  k.logprobs = true;
  k.echo = true;
  k.prompt_texts = {"P:"};
  openai_response rk(k);
  rk.add_tokens(0, toks({"a", "bc"}));
  rk.finish_choice(0, "length");
  auto body = rk.complete_body();
  CHECK(body.find(R"("text":"P:abc")") != std::string::npos);
  CHECK(body.find(R"("logprobs":{"tokens":["a","bc"],"token_logprobs":[-0.5,-0.5],)"
                  R"("top_logprobs":[{"a":-0.5,"x":-2},{"bc":-0.5,"x":-2}],"text_offset":[2,3]})") !=
        std::string::npos);
}

TEST_CASE("a prompt batch: choice index = prompt * n + choice, echo per prompt, usage summed") {
  auto o = opts(endpoint_kind::completions, false);
  o.n = 2;
  o.num_prompts = 2;
  o.echo = true;
  o.prompt_texts = {"A:", "B:"};
  o.num_prompt_tokens = 3 + 4;
  openai_response r(o);
  REQUIRE(o.num_choices() == 4);
  r.add_tokens(3, toks({"y"}));
  r.add_tokens(0, toks({"w", "v"}));
  for (std::int32_t c : {2, 1, 0, 3}) {
    CHECK(!r.all_finished());
    r.finish_choice(c, "length");
  }
  CHECK(r.all_finished());
  auto body = r.complete_body();
  CHECK(body.find(R"({"index":0,"text":"A:wv")") != std::string::npos);
  CHECK(body.find(R"({"index":1,"text":"A:")") != std::string::npos);
  CHECK(body.find(R"({"index":2,"text":"B:")") != std::string::npos);
  CHECK(body.find(R"({"index":3,"text":"B:y")") != std::string::npos);
  CHECK(body.find(R"("usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10,)") !=
        std::string::npos);

  auto so = o;
  so.stream = true;
  openai_response rs(so);
  auto p = payloads(rs.begin());
  REQUIRE(p.size() == 4);
  CHECK(p[1].find(R"("index":1,"text":"A:")") != std::string::npos);
  CHECK(p[2].find(R"("index":2,"text":"B:")") != std::string::npos);
  auto a = payloads(rs.add_tokens(3, toks({"z"})));
  REQUIRE(a.size() == 1);
  CHECK(a[0].find(R"("index":3,"text":"z")") != std::string::npos);
}

TEST_CASE("echo with logprobs: the prompt's entries come first, the first one null") {
  auto prompt_entries = [] {
    std::vector<token_output> e{{1, "", "P", 0.0f, {}, false}, {2, "", ":", -1.5f, {{":", -1.5f}}}};
    return e;
  };
  auto k = opts(endpoint_kind::completions, false);
  k.logprobs = true;
  k.top_logprobs = 1;
  k.echo = true;
  k.prompt_texts = {"P:"};
  openai_response r(k);
  CHECK(r.add_prompt_logprobs(0, prompt_entries()).empty());
  CHECK(r.add_prompt_logprobs(0, prompt_entries()).empty());  // once
  r.add_tokens(0, toks({"a"}));
  r.finish_choice(0, "length");
  auto body = r.complete_body();
  CHECK(body.find(R"("text":"P:a")") != std::string::npos);
  CHECK(body.find(R"("logprobs":{"tokens":["P",":","a"],"token_logprobs":[null,-1.5,-0.5],)"
                  R"("top_logprobs":[null,{":":-1.5},{"a":-0.5,"x":-2}],"text_offset":[0,1,2]})") !=
        std::string::npos);

  // Streaming: the echo chunk waits for the prompt logprobs and carries them.
  auto s = k;
  s.stream = true;
  s.n = 2;
  openai_response rs(s);
  CHECK(rs.begin().empty());
  auto echo = payloads(rs.add_prompt_logprobs(0, prompt_entries()));
  REQUIRE(echo.size() == 2);
  for (int c = 0; c < 2; ++c) {
    INFO(echo[c]);
    CHECK(echo[c].find(R"("index":)" + std::to_string(c) + R"(,"text":"P:","logprobs":{"tokens":["P",":"],)"
                       R"("token_logprobs":[null,-1.5],"top_logprobs":[null,{":":-1.5}],"text_offset":[0,1]})") !=
          std::string::npos);
  }
  auto a = payloads(rs.add_tokens(1, toks({"a"})));
  REQUIRE(a.size() == 1);
  CHECK(a[0].find(R"("text_offset":[2])") != std::string::npos);

  // Prompt logprobs that never come (the request ended first): the echo still goes out, once.
  openai_response rn(s);
  auto f = payloads(rn.finish_choice(1, "abort"));
  REQUIRE(f.size() == 3);
  CHECK(f[0].find(R"("index":0,"text":"P:","logprobs":null)") != std::string::npos);
  CHECK(f[1].find(R"("index":1,"text":"P:","logprobs":null)") != std::string::npos);
  CHECK(f[2].find(R"("finish_reason":"abort")") != std::string::npos);
  CHECK(rn.add_prompt_logprobs(0, prompt_entries()).empty());
}

namespace {
response_options with_tools(bool stream) {
  auto o = opts(endpoint_kind::chat, stream);
  o.tool_calls.enabled = true;
  o.tool_calls.open = "<tool_call>";
  o.tool_calls.close = "</tool_call>";
  o.tool_calls.names = {"add"};
  return o;
}
// A call split across tokens the way a tokenizer splits it.
std::vector<token_output> call_tokens(const char* args) {
  return toks({"<tool", "_call>\n{\"name\": \"a", "dd\", \"arguments\": ", args, "}\n</tool",
               "_call>"});
}
}  // namespace

TEST_CASE("chat with tools: tool_calls, content null, finish_reason tool_calls") {
  openai_response r(with_tools(false));
  r.add_tokens(0, call_tokens(R"({"a": 1, "b": 2})"));
  r.add_tokens(0, toks({"\n"}));
  r.add_tokens(0, call_tokens(R"({"a": 3, "b": 4})"));
  r.finish_choice(0, "stop");
  simdjson::dom::parser parser;
  auto body = r.complete_body();
  simdjson::dom::element doc = parser.parse(body);
  auto msg = doc["choices"].at(0)["message"];
  CHECK(msg["content"].is_null());
  REQUIRE(msg["tool_calls"].get_array().size() == 2);
  CHECK(std::string_view(msg["tool_calls"].at(1)["function"]["arguments"]) == R"({"a":3,"b":4})");
  CHECK(std::string_view(msg["tool_calls"].at(0)["type"]) == "function");
  CHECK(std::string_view(msg["tool_calls"].at(0)["id"]).substr(0, 5) == "call_");
  CHECK(std::string_view(doc["choices"].at(0)["finish_reason"]) == "tool_calls");
  CHECK(body.find("<tool_call>") == std::string::npos);

  // Cut short: the finish reason stays "length"; text without a call stays content, half a
  // call goes nowhere.
  openai_response cut(with_tools(false));
  cut.add_tokens(0, toks({"Hi", " <tool"}));
  cut.finish_choice(0, "length");
  doc = parser.parse(cut.complete_body());
  CHECK(std::string_view(doc["choices"].at(0)["message"]["content"]) == "Hi <tool");
  CHECK(doc["choices"].at(0)["message"]["tool_calls"].error() == simdjson::NO_SUCH_FIELD);
  CHECK(std::string_view(doc["choices"].at(0)["finish_reason"]) == "length");
  openai_response half(with_tools(false));
  half.add_tokens(0, call_tokens(R"({"a": 1, "b": 2})"));
  half.add_tokens(0, toks({"\n<tool_call>\n{\"name\": \"add\", \"arg"}));
  half.finish_choice(0, "length");
  doc = parser.parse(half.complete_body());
  CHECK(doc["choices"].at(0)["message"]["content"].is_null());
  CHECK(doc["choices"].at(0)["message"]["tool_calls"].get_array().size() == 1);
  CHECK(std::string_view(doc["choices"].at(0)["finish_reason"]) == "length");
}

TEST_CASE("streaming chat with tools: OpenAI's tool-call deltas, markup never in content") {
  openai_response r(with_tools(true));
  std::string sse = r.begin();
  sse += r.add_tokens(0, toks({"Sure."}));
  for (const auto& t : call_tokens(R"({"a": 1, "b": 2})")) sse += r.add_tokens(0, {t});
  sse += r.finish_choice(0, "stop");
  sse += r.end_stream();
  CHECK(sse.find("<tool") == std::string::npos);
  auto p = payloads(sse);
  REQUIRE(p.size() == 5);  // role, content, call header, call arguments, finish
  CHECK(p[1].find(R"("delta":{"content":"Sure."})") != std::string::npos);
  simdjson::dom::parser parser;
  simdjson::dom::element head = parser.parse(p[2]);
  auto call = head["choices"].at(0)["delta"]["tool_calls"].at(0);
  CHECK(int64_t(call["index"]) == 0);
  CHECK(std::string_view(call["id"]).substr(0, 5) == "call_");
  CHECK(std::string_view(call["type"]) == "function");
  CHECK(std::string_view(call["function"]["name"]) == "add");
  CHECK(std::string_view(call["function"]["arguments"]).empty());
  simdjson::dom::element args = parser.parse(p[3]);
  auto frag = args["choices"].at(0)["delta"]["tool_calls"].at(0);
  CHECK(int64_t(frag["index"]) == 0);
  CHECK(frag["id"].error() == simdjson::NO_SUCH_FIELD);
  CHECK(std::string_view(frag["function"]["arguments"]) == R"({"a":1,"b":2})");
  CHECK(p[4].find(R"("finish_reason":"tool_calls")") != std::string::npos);
}

TEST_CASE("streaming a constrained call: arguments go out in pieces that add up to the call") {
  auto o = with_tools(true);
  o.tool_calls.stream_arguments = true;
  openai_response r(o);
  std::string sse = r.begin();
  for (const auto& t : call_tokens(R"({"a": 1, "b": 22})")) sse += r.add_tokens(0, {t});
  sse += r.finish_choice(0, "stop");
  sse += r.end_stream();
  CHECK(sse.find("<tool") == std::string::npos);
  std::string args;
  int headers = 0;
  simdjson::dom::parser parser;
  for (const auto& p : payloads(sse)) {
    simdjson::dom::element doc = parser.parse(p);
    simdjson::dom::element call;
    if (doc["choices"].at(0)["delta"]["tool_calls"].at(0).get(call)) continue;
    CHECK(int64_t(call["index"]) == 0);
    if (!call["id"].error()) ++headers;
    args += std::string_view(call["function"]["arguments"]);
  }
  CHECK(headers == 1);
  CHECK(args == R"({"a": 1, "b": 22})");
  CHECK(sse.find(R"("finish_reason":"tool_calls")") != std::string::npos);
}
