// The client-side SSE parser and stream chunk reader of troupe bench.
#include <catch2/catch.hpp>

#include "bench/sse_parser.hpp"

using namespace troupe::bench;

TEST_CASE("SSE events come out whole however the bytes are split", "[bench][sse]") {
  const std::string stream =
      ": comment\n"
      "data: {\"a\":1}\n\n"
      "event: x\r\ndata: first\r\ndata: second\r\n\r\n"
      "data:[DONE]\n\n";
  const std::vector<std::string> want = {"{\"a\":1}", "first\nsecond", "[DONE]"};
  sse_parser whole;
  CHECK(whole.feed(stream) == want);
  sse_parser bytewise;
  std::vector<std::string> got;
  for (char c : stream)
    for (auto& e : bytewise.feed(std::string_view(&c, 1))) got.push_back(e);
  CHECK(got == want);
  sse_parser partial;
  CHECK(partial.feed("data: half").empty());  // no blank line yet
  CHECK(partial.feed("\n\n") == std::vector<std::string>{"half"});
}

TEST_CASE("stream chunks: text, chat deltas, usage, errors, the end", "[bench][sse]") {
  CHECK(read_chunk("[DONE]", api_kind::completions).done);
  auto c = read_chunk(R"({"id":"x","choices":[{"index":0,"text":"Hello","finish_reason":null}]})",
                      api_kind::completions);
  CHECK(c.text_bytes == 5);
  CHECK(c.error.empty());
  CHECK(read_chunk(R"({"choices":[{"delta":{"role":"assistant"}}]})", api_kind::chat).text_bytes == 0);
  CHECK(read_chunk(R"({"choices":[{"delta":{"content":"Hi!"}}]})", api_kind::chat).text_bytes == 3);
  c = read_chunk(R"({"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":34,"total_tokens":46}})",
                 api_kind::chat);
  CHECK(c.prompt_tokens == 12);
  CHECK(c.completion_tokens == 34);
  CHECK(read_chunk(R"({"choices":[{"text":"a"}],"usage":null})", api_kind::completions)
            .completion_tokens == -1);
  c = read_chunk(R"({"error":{"message":"boom","type":"server_error"}})", api_kind::completions);
  CHECK(c.error.find("boom") != std::string::npos);
  CHECK_FALSE(read_chunk("not json", api_kind::completions).error.empty());
}
