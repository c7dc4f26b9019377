// Client side of OpenAI streaming: an incremental Server-Sent Events parser and the reading of
// one streamed chunk (completions or chat) into what the benchmark times.
//
// sse_parser: feed() any split of the byte stream; it returns the payload of each complete event
// (its `data:` lines joined with '\n'; other fields and comments ignored; CRLF, CR or LF line
// ends). An event is complete at its blank line. Not thread-safe; one per response.
// read_chunk: pure; any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::bench {

class sse_parser {
 public:
  std::vector<std::string> feed(std::string_view bytes);

 private:
  void end_line(std::vector<std::string>& out);
  std::string line_;
  std::string data_;
  bool has_data_ = false;
  bool after_cr_ = false;
};

enum class api_kind { completions, chat };

struct stream_chunk {
  bool done = false;                 // the `[DONE]` sentinel
  size_t text_bytes = 0;             // generated text in this chunk (choices[0] text / content)
  int64_t prompt_tokens = -1;        // from "usage" when present, else -1
  int64_t completion_tokens = -1;
  std::string error;                 // an {"error": ...} event, or an unparseable payload
};

stream_chunk read_chunk(std::string_view payload, api_kind kind);

}  // namespace troupe::bench
