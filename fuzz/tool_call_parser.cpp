// Fuzz target: net/tool_call_parser, which reads model output -- text nobody checked -- into
// content and tool calls.
//
// Contract: never crashes; the split does not depend on how the text is cut into pieces (a
// stream gives the same content and calls as the whole text); every call names a known tool and
// its arguments are a JSON object; streamed pieces (stream_arguments) start each call with a
// header naming a known tool, in call order. The first input byte picks the piece size.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <simdjson.h>

#include "fuzz/fuzz_check.hpp"
#include "net/tool_call_parser.hpp"

namespace {

using namespace troupe::net;

tool_call_options options(bool stream_arguments = false) {
  tool_call_options o;
  o.stream_arguments = stream_arguments;
  o.enabled = true;
  o.open = "<tool_call>";
  o.close = "</tool_call>";
  o.names = {"add", "get_weather"};
  return o;
}

tool_call_parser::output split(std::string_view text, std::size_t step) {
  tool_call_parser p(options());
  tool_call_parser::output all;
  auto take = [&](tool_call_parser::output o) {
    all.content += o.content;
    for (auto& c : o.calls) all.calls.push_back(std::move(c));
  };
  for (std::size_t i = 0; i < text.size(); i += step) take(p.feed(text.substr(i, step)));
  take(p.finish());
  FUZZ_CHECK(p.num_calls() == all.calls.size());
  return all;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t step = 1 + data[0] % 16;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const auto whole = split(text, text.size() + 1);
  const auto pieces = split(text, step);
  FUZZ_CHECK(whole.content == pieces.content);
  FUZZ_CHECK(whole.calls.size() == pieces.calls.size());
  for (std::size_t i = 0; i < whole.calls.size(); ++i) {
    const auto& c = whole.calls[i];
    FUZZ_CHECK(c.name == pieces.calls[i].name && c.arguments == pieces.calls[i].arguments);
    FUZZ_CHECK(c.name == "add" || c.name == "get_weather");
    simdjson::dom::parser parser;
    simdjson::dom::element args;
    FUZZ_CHECK(!parser.parse(c.arguments).get(args) && args.is_object());
  }
  // Streaming pieces (stream_arguments): each call's first delta names a known tool and comes
  // before its argument pieces; indexes count up from 0 without gaps.
  tool_call_parser streamed(options(true));
  std::size_t started = 0;
  auto check = [&](const tool_call_parser::output& o) {
    // Whole calls and pieces in one output, in the order of their calls (as openai_response
    // sends them).
    std::vector<tool_call_delta> events = o.deltas;
    for (const auto& c : o.calls) events.push_back({c.index, c.id, c.name, ""});
    std::stable_sort(events.begin(), events.end(),
                     [](const auto& a, const auto& b) { return a.index < b.index; });
    for (const auto& d : events) {
      if (!d.id.empty()) {
        FUZZ_CHECK(d.index == started++);
        FUZZ_CHECK(d.name == "add" || d.name == "get_weather");
      } else {
        FUZZ_CHECK(d.index + 1 == started);
      }
    }
  };
  for (std::size_t i = 0; i < text.size(); i += step) check(streamed.feed(text.substr(i, step)));
  check(streamed.finish());
  FUZZ_CHECK(streamed.num_calls() == started);
  return 0;
}
